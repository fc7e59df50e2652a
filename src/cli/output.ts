import { isTenancyError } from '../errors.js'

/** Where a command writes: machine output on stdout, human text on stderr. */
export interface CliIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
}

export const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  stderr: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
}

/** Exit codes: 0 success, 1 a check or migration failed, 2 usage, configuration or connection errors. */
export const exitCodes = { ok: 0, failed: 1, usage: 2 } as const

// Work that started and did not finish exits 1; refusals of bad input, 2.
const failureCodes = new Set(['MIGRATION_FAILED', 'REMOVE_INTERRUPTED', 'REMOVE_INCOMPLETE'])

export function formatError(error: unknown): { text: string; exitCode: number } {
  if (isTenancyError(error)) {
    return { text: `error ${error.code}: ${error.message}`, exitCode: failureCodes.has(error.code) ? exitCodes.failed : exitCodes.usage }
  }
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
  return { text: `unexpected error: ${message}\nThis is a bug in prisma-tenancy; please report it with the output above.`, exitCode: exitCodes.failed }
}

import { readFileSync } from 'node:fs'
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

const failureCodes = new Set(['MIGRATION_FAILED'])

/** The version in our package.json (src/cli and dist/cli are both two levels below it). */
export function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return manifest.version
}

/** A failure as `--json` prints it: `{ "error": { code, message, fix } }`. */
export interface JsonError {
  code: string
  message: string
  fix: string
}

/**
 * Our messages state the cause, then what to do, in the last sentence; an
 * error that carries an explicit fix (details.fix) says it there instead.
 */
function splitFix(message: string, explicit: unknown): { message: string; fix: string } {
  if (typeof explicit === 'string') return { message, fix: explicit }
  const sentences = message.trim().split(/(?<=[.!?])\s+(?=[A-Z`])/)
  if (sentences.length < 2) return { message, fix: '' }
  const fix = sentences.pop()!
  return { message: sentences.join(' '), fix }
}

export function formatError(error: unknown): { text: string; exitCode: number; error: JsonError } {
  if (isTenancyError(error)) {
    return {
      text: `error ${error.code}: ${error.message}`,
      exitCode: failureCodes.has(error.code) ? exitCodes.failed : exitCodes.usage,
      error: { code: error.code, ...splitFix(error.message, error.details.fix) },
    }
  }
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
  return {
    text: `unexpected error: ${message}\nThis is a bug in prisma-tenancy; please report it with the output above.`,
    exitCode: exitCodes.failed,
    error: { code: 'UNEXPECTED', message: error instanceof Error ? error.message : String(error), fix: 'This is a bug in prisma-tenancy; please report it with the output on stderr.' },
  }
}

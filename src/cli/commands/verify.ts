import { formatReport } from '../../verify/report.js'
import { verify, type VerifyOptions } from '../../verify/verify.js'
import type { CliIo } from '../output.js'
import { exitCodes } from '../output.js'

export interface VerifyCommandOptions extends VerifyOptions {
  json?: boolean | undefined
}

/**
 * Like every command: the report as JSON on stdout with --json, the readable
 * report on stderr always. Exit 0 when no check fails, 1 when one does;
 * configuration and connection errors surface as TenancyError (exit 2).
 */
export async function verifyCommand(options: VerifyCommandOptions, io: CliIo): Promise<number> {
  const report = await verify(options)
  if (options.json === true) io.stdout(JSON.stringify(report))
  io.stderr(formatReport(report))
  return report.ok ? exitCodes.ok : exitCodes.failed
}

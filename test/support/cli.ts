import { runCli, type CliIo } from '../../src/cli/index.js'

/** Runs the CLI in-process and captures what it writes where. */
export async function runCliCaptured(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const io: CliIo = { stdout: (text) => (stdout += `${text}\n`), stderr: (text) => (stderr += `${text}\n`) }
  const code = await runCli(argv, io)
  return { code, stdout, stderr }
}

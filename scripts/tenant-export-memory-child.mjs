// The measured process of scripts/tenant-export-memory.ts: runs the CLI's runCli (what
// dist/cli/main.js runs) on the arguments it is given and prints the process's peak RSS
// (getrusage's ru_maxrss: the true peak, startup and module loading included). Plain
// JavaScript, so that on the built package no TypeScript loader counts.
//   node scripts/tenant-export-memory-child.mjs <cli program module> <prisma-tenancy arguments...>
import { pathToFileURL } from 'node:url'

const [programPath, ...argv] = process.argv.slice(2)
const started = performance.now()
const { runCli } = await import(pathToFileURL(programPath).href)
let stdout = ''
let stderr = ''
const code = await runCli(argv, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += `${text}\n`) })
if (code !== 0) {
  process.stderr.write(stderr)
  process.exit(code)
}
const result = JSON.parse(stdout)
const rows = result.tables.reduce((sum, table) => sum + table.rows, 0)
const megabytes = (kilobytes) => Math.round((kilobytes / 1024) * 10) / 10
process.stdout.write(`${JSON.stringify({ rows, peakRssMB: megabytes(process.resourceUsage().maxRSS), seconds: Math.round((performance.now() - started) / 100) / 10 })}\n`)

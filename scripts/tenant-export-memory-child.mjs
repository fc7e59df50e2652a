// The measured process of scripts/tenant-export-memory.ts: exports tenant `big`
// and prints its own peak RSS. Plain JavaScript, so that on the built package
// (dist/, what the published CLI runs) no TypeScript loader counts.
//   node scripts/tenant-export-memory-child.mjs <export-tenant module> <database url> <file>
import { createWriteStream } from 'node:fs'
import { finished } from 'node:stream/promises'
import { pathToFileURL } from 'node:url'

const [modulePath, databaseUrl, file] = process.argv.slice(2)
const { exportTenant } = await import(pathToFileURL(modulePath).href)
const megabytes = (bytes) => Math.round((bytes / 1024 / 1024) * 10) / 10
const before = process.memoryUsage().rss
let peak = before
let heapPeak = 0
const sample = () => {
  const usage = process.memoryUsage()
  peak = Math.max(peak, usage.rss)
  heapPeak = Math.max(heapPeak, usage.heapUsed)
}
const sampler = setInterval(sample, 10)
const output = createWriteStream(file)
const started = performance.now()
const result = await exportTenant('big', { databaseUrl, output })
output.end()
await finished(output)
clearInterval(sampler)
sample()
const rows = result.tables.reduce((sum, table) => sum + table.rows, 0)
process.stdout.write(`${JSON.stringify({ rows, rssBeforeMB: megabytes(before), rssPeakMB: megabytes(peak), heapPeakMB: megabytes(heapPeak), seconds: Math.round((performance.now() - started) / 100) / 10 })}\n`)

import type { Machine } from './machine.js'
import type { Result, Unavailable } from './results.js'

export interface Report {
  machine: Machine
  results: Result[]
  /** Contenders that could not run, and why. */
  unavailable: Unavailable[]
}

function label(result: Result): string {
  if (result.is_baseline) return `${result.baseline}: baseline`
  return result.rls ? result.contender : `${result.contender} (NOT RLS)`
}

const number = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : '-')

/** A plain-text table, one block per workload and client count. */
export function formatReport(report: Report): string {
  const m = report.machine
  const lines = [
    `prisma-tenancy benchmark (${m.mode}) on ${m.cpus} × ${m.cpu_model}, ${m.memory_gb} GB, ${m.os}, Node ${m.node}, Prisma ${m.prisma}, PostgreSQL ${m.postgres} (${m.server}), load ${m.load_average}`,
    '',
  ]
  const header = ['workload', 'clients', 'contender', 'median ms', 'p99 ms', 'ops/s', 'ratio', 'ops/s ratio']
  const rows = report.results.map((r) => [
    r.workload,
    String(r.clients),
    label(r),
    number(r.median_ms, 3),
    number(r.p99_ms, 3),
    number(r.ops_per_s, 0),
    `${number(r.ratio, 2)}×`,
    `${number(r.throughput_ratio, 2)}×`,
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const format = (row: string[]) => row.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd()
  lines.push(format(header), widths.map((w) => '-'.repeat(w)).join('  '))
  let previous = ''
  report.results.forEach((result, i) => {
    const group = `${result.workload}/${result.clients}`
    if (previous !== '' && group !== previous) lines.push('')
    previous = group
    lines.push(format(rows[i]!))
  })
  for (const { contender, reason } of report.unavailable) lines.push(`not measured: ${contender}: ${reason}`)
  lines.push('', 'ratio = contender median / baseline median; ops/s ratio = contender throughput / baseline throughput; same workload, client count, run and rows.')
  return lines.join('\n')
}

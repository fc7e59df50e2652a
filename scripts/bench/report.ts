import type { Machine } from './machine.js'
import type { Result, Unavailable } from './results.js'
import { latencyFloors, throughputFloors } from './wire-floor.js'

export interface Report {
  machine: Machine
  results: Result[]
  /** Contenders that could not run, and why. */
  unavailable: Unavailable[]
}

/** The contender as the table and the chart name it. */
export function contenderLabel(result: Result): string {
  if (result.is_baseline) return `${result.baseline}: baseline`
  return result.rls ? result.contender : `${result.contender} (NOT RLS)`
}

const number = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : '-')
const signed = (value: number) => (Number.isFinite(value) && value >= 0 ? `+${number(value, 1)}` : number(value, 1))

/**
 * prisma-tenancy's CPU difference to plain Prisma in every group that has
 * both, whatever that group's baseline: in findUnique-wire the baseline is
 * the bare driver, and the difference between the two clients is the point.
 */
function tenancyCpuOverPlainPrisma(results: readonly Result[]): string[] {
  const cpu = (workload: string, clients: number, contender: string) =>
    results.find((r) => r.workload === workload && r.clients === clients && r.contender === contender)?.cpu_us_per_op
  return results.flatMap((r) => {
    if (r.contender !== 'prisma-tenancy') return []
    const plain = cpu(r.workload, r.clients, 'plain-prisma')
    return plain === undefined ? [] : [`${r.workload}/${r.clients} ${signed(r.cpu_us_per_op - plain)} µs`]
  })
}

/** A plain-text table, one block per workload and client count. */
export function formatReport(report: Report): string {
  const m = report.machine
  const lines = [
    `prisma-tenancy benchmark (${m.mode}) on ${m.cpus} × ${m.cpu_model}, ${m.memory_gb} GB, ${m.os}, Node ${m.node}, Prisma ${m.prisma}, PostgreSQL ${m.postgres} (${m.server}), load ${m.load_average}`,
    '',
  ]
  const header = ['workload', 'clients', 'contender', 'median ms', 'p99 ms', 'ops/s', 'ratio', 'ops/s ratio', 'CPU µs/op', 'CPU Δ µs']
  const rows = report.results.map((r) => [
    r.workload,
    String(r.clients),
    contenderLabel(r),
    number(r.median_ms, 3),
    number(r.p99_ms, 3),
    number(r.ops_per_s, 0),
    `${number(r.ratio, 2)}×`,
    `${number(r.throughput_ratio, 2)}×${r.throughput_ratio_ci95 === null ? '' : ` (${number(r.throughput_ratio_ci95[0], 2)}–${number(r.throughput_ratio_ci95[1], 2)})`}`,
    number(r.cpu_us_per_op, 1),
    r.is_baseline ? '' : signed(r.cpu_delta_us_per_op),
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
  const overPlain = tenancyCpuOverPlainPrisma(report.results)
  if (overPlain.length > 0) lines.push('', `prisma-tenancy's Node CPU per operation over plain Prisma's: ${overPlain.join(', ')}`)
  const latency = latencyFloors(report.results)
  if (latency.length > 0) {
    lines.push(
      '',
      "Wire floor at 1 client (plain Prisma's findUnique + what the wire form adds to the bare driver's, over plain Prisma's) and prisma-tenancy's findUnique over plain Prisma's in the same rounds:",
      ...latency.map((f) => `  findUnique/1 ${f.mode}: floor ${number(f.floor, 2)}×, measured ${number(f.measured, 2)}×`),
    )
  }
  const floors = throughputFloors(report.results)
  if (floors.length > 0) {
    lines.push(
      '',
      "Throughput floor (plain Prisma's time per operation + what the wire form adds to the bare driver's, over plain Prisma's) and prisma-tenancy's throughput over plain Prisma's in the same rounds:",
      ...floors.map((f) => `  ${f.workload}/${f.clients} ${f.mode}: floor ${number(f.floor, 2)}×, measured ${number(f.measured, 2)}×`),
    )
  }
  lines.push(
    '',
    'ratio = contender median / baseline median; ops/s ratio = contender throughput / baseline throughput, the median of round-by-round ratios, with its 95% confidence interval in brackets; same workload, client count, run and rows.',
    "CPU µs/op = this Node process's user + system CPU over the timed rounds / operations (PostgreSQL's CPU is not in it); CPU Δ = minus the baseline's.",
  )
  return lines.join('\n')
}

import { describe, expect, it } from 'vitest'
import { renderChart } from '../scripts/bench/chart.js'
import type { Machine } from '../scripts/bench/machine.js'
import { formatReport, type Report } from '../scripts/bench/report.js'
import { toResult, toResults } from '../scripts/bench/results.js'
import { medianInterval, type Summary } from '../scripts/bench/stats.js'
import { roundOrder } from '../scripts/bench/measure.js'
import { fastPathWire, latencyFloors, tenancyWire, throughputFloors, throughputWireBaseline, wireBaseline, wireFloor, wireWorkload } from '../scripts/bench/wire-floor.js'

const machine: Machine = {
  cpus: 2,
  cpu_model: 'AMD EPYC',
  memory_gb: 24,
  os: 'Linux 6.8 x64',
  node: 'v20.19.0',
  prisma: '7.10.0',
  postgres: '15.8',
  server: 'url',
  load_average: 3.5,
  mode: 'quick',
}

const summary = (median_ms: number, ops_per_s: number, cpu_us_per_op: number): Summary => ({ median_ms, p99_ms: median_ms * 2, ops_per_s, cpu_us_per_op, samples: 100 })
const side = (workload: string, clients: number, rows: [string, Summary][], baseline: string) =>
  toResults(workload, clients, new Map(rows), { name: baseline }, (name) => name !== 'plain-prisma' && name !== 'prisma-tenant-extension' && name !== wireBaseline)

/** A run in the shape `npm run bench` writes, with round figures. */
function sampleReport(): Report {
  const fewest = summary(55, 18, 40_000)
  return {
    machine,
    results: [
      ...side('findUnique', 1, [
        ['plain-prisma', summary(0.77, 1250, 310)],
        ['prisma-tenancy', summary(0.921, 1050, 365.5)],
        ['prisma-example-batch-set-config', summary(2.7, 360, 900)],
        ['@usebetterdev/tenant-prisma', summary(3.85, 250, 1200)],
        ['prisma-tenant-extension', summary(0.88, 1100, 330)],
      ], 'plain-prisma'),
      ...side('findUnique', 16, [
        ['plain-prisma', summary(2.1, 7000, 90)],
        ['prisma-tenancy', summary(2.6, 5900, 150)],
      ], 'plain-prisma'),
      ...side('findUnique-16-tenants', 16, [
        ['plain-prisma', summary(2.4, 6100, 120)],
        ['prisma-tenancy', summary(2.7, 5600, 160)],
      ], 'plain-prisma'),
      ...side(wireWorkload, 1, [
        [wireBaseline, summary(0.309, 3200, 60)],
        [tenancyWire, summary(0.422, 2350, 75)],
        ['plain-prisma', summary(0.77, 1290, 300)],
        ['prisma-tenancy', summary(0.921, 1080, 360)],
      ], wireBaseline),
      // Each migration reference divides by its own smallest tenant count.
      toResult('migrate deploy, 10 tenants', 1, 'prisma-tenancy', fewest, { label: 'prisma-tenancy at 10 tenants', summary: fewest }, true),
      toResult('migrate deploy, 10 tenants', 1, 'schema-per-tenant', summary(35, 28, 900), { label: 'schema-per-tenant at 10 tenants', summary: summary(35, 28, 900) }, false),
    ],
    unavailable: [],
  }
}

describe('bench chart', () => {
  it('draws the same SVG from the same results', async () => {
    const svg = renderChart(sampleReport())
    expect(renderChart(sampleReport())).toBe(svg)
    await expect(svg).toMatchFileSnapshot('./__snapshots__/bench-chart.svg')
  })

  it("puts the wire floor at plain Prisma plus what the setting and the policy add on the bare driver, on findUnique's 1-client block", () => {
    const report = sampleReport()
    expect(wireFloor(report.results)).toBeCloseTo((0.77 + 0.422 - 0.309) / 0.77, 6)
    const svg = renderChart(report)
    expect(svg.match(/wire floor 1\.15×/g)).toHaveLength(1)
  })

  it("gives each mode its own wire floor, from its own wire form, next to its findUnique in the same rounds", () => {
    const results = side(
      wireWorkload,
      1,
      [
        [wireBaseline, summary(0.3, 3300, 60)],
        [tenancyWire, summary(0.4, 2500, 75)],
        [fastPathWire, summary(0.35, 2850, 70)],
        ['plain-prisma', summary(0.8, 1250, 300)],
        ['prisma-tenancy', summary(0.95, 1050, 360)],
        ['prisma-tenancy (preparedTenantStatement)', summary(0.9, 1100, 350)],
      ],
      wireBaseline,
    )
    const floors = latencyFloors(results)
    expect(floors.map((f) => f.mode)).toEqual(['default', 'fast path'])
    expect(floors[0]!.floor).toBeCloseTo(0.9 / 0.8, 6)
    expect(floors[1]!.floor).toBeCloseTo(0.85 / 0.8, 6)
    expect(floors[1]!.measured).toBeCloseTo(0.9 / 0.8, 6)
    expect(wireFloor(results, 'fast path')).toBe(floors[1]!.floor)
    expect(formatReport({ machine, results, unavailable: [] })).toContain('findUnique/1 fast path: floor 1.06×, measured 1.13×')
  })

  it('draws no floor when the run has no findUnique-wire rows', () => {
    const report = sampleReport()
    report.results = report.results.filter((r) => r.workload !== wireWorkload)
    expect(wireFloor(report.results)).toBeUndefined()
    expect(renderChart(report)).not.toContain('wire floor')
  })

  it('leaves out blocks whose rows divide by different baselines, and keeps the value of a bar cut at 4×', () => {
    const svg = renderChart(sampleReport())
    expect(svg).not.toContain('migrate deploy')
    expect(svg).toContain('▸ 5.00×')
    expect(svg).toContain('findUnique-16-tenants, 16 clients')
    expect(svg).toContain('1.24×  ops/s 0.84×')
    expect(svg).toContain('prisma-tenancy&#39;s wire')
  })
})

describe('bench report', () => {
  it("gives every row its Node CPU per operation and its difference to the baseline's", () => {
    const rows = sampleReport().results.filter((r) => r.workload === 'findUnique' && r.clients === 1)
    expect(rows.map((r) => [r.contender, r.cpu_us_per_op, r.cpu_delta_us_per_op])).toEqual([
      ['plain-prisma', 310, 0],
      ['prisma-tenancy', 365.5, 55.5],
      ['prisma-example-batch-set-config', 900, 590],
      ['@usebetterdev/tenant-prisma', 1200, 890],
      ['prisma-tenant-extension', 330, 20],
    ])
  })

  it("states prisma-tenancy's CPU over plain Prisma's for every block with both, the wire block included", () => {
    const text = formatReport(sampleReport())
    expect(text).toContain('CPU µs/op')
    expect(text).toContain(
      "prisma-tenancy's Node CPU per operation over plain Prisma's: findUnique/1 +55.5 µs, findUnique/16 +60.0 µs, findUnique-16-tenants/16 +40.0 µs, findUnique-wire/1 +60.0 µs",
    )
  })
})

describe('bench ratios', () => {
  // Round by round the contender is at 0.9 of the baseline's throughput and 20 µs over its CPU, while the
  // machine's speed drifts; the medians of each contender's own rounds come from different moments.
  const baseline: Summary = { ...summary(1, 1000, 100), rounds: { ops_per_s: [1000, 2000, 3000], cpu_us_per_op: [100, 60, 40] } }
  const contender: Summary = { ...summary(1.1, 1800, 80), rounds: { ops_per_s: [900, 1800, 2700], cpu_us_per_op: [120, 80, 60] } }

  it("divides each interleaved round by the baseline's round of the same pass, then takes the median", () => {
    const result = toResult('update', 16, 'prisma-tenancy', contender, { label: 'plain-prisma', summary: baseline }, true)
    expect(result.throughput_ratio).toBe(0.9)
    expect(result.cpu_delta_us_per_op).toBe(20)
  })

  it('divides the two medians where the rounds cannot be paired', () => {
    const unpaired = { ...contender, rounds: { ops_per_s: [900, 1800], cpu_us_per_op: [120, 80] } }
    const result = toResult('update', 16, 'prisma-tenancy', unpaired, { label: 'plain-prisma', summary: baseline }, true)
    expect(result.throughput_ratio).toBe(1.8)
    expect(result.throughput_ratio_ci95).toBeNull()
    expect(result.cpu_delta_us_per_op).toBe(-20)
  })

  it('gives the paired throughput ratio a 95% interval from its rounds, and none to the baseline or to too few rounds', () => {
    // Ten rounds whose ratios to the baseline are 0.80, 0.82, ..., 0.98: the interval is the 2nd and 9th of them.
    const base: Summary = { ...summary(1, 1000, 100), rounds: { ops_per_s: Array(10).fill(1000), cpu_us_per_op: Array(10).fill(100) } }
    const mine: Summary = { ...summary(1, 900, 100), rounds: { ops_per_s: [980, 800, 960, 820, 940, 840, 920, 860, 900, 880], cpu_us_per_op: Array(10).fill(100) } }
    const result = toResult('findMany-50', 16, 'prisma-tenancy', mine, { label: 'plain-prisma', summary: base }, true)
    expect(result.throughput_ratio).toBe(0.89)
    expect(result.throughput_ratio_ci95).toEqual([0.82, 0.96])
    expect(toResult('findMany-50', 16, 'plain-prisma', base, { label: 'plain-prisma', summary: base }, false).throughput_ratio_ci95).toBeNull()
    expect(toResult('update', 16, 'prisma-tenancy', contender, { label: 'plain-prisma', summary: baseline }, true).throughput_ratio_ci95).toBeNull()
    expect(formatReport({ machine, results: [result], unavailable: [] })).toContain('0.89× (0.82–0.96)')
  })

  it('takes the order statistics of the binomial table for the median interval', () => {
    const ranks = (n: number) => medianInterval(Array.from({ length: n }, (_, i) => n - i))
    expect(ranks(5)).toBeUndefined()
    expect([6, 10, 20, 30, 40].map(ranks)).toEqual([[1, 6], [2, 9], [6, 15], [10, 21], [14, 27]])
  })
})

describe('round order', () => {
  const predecessors = (n: number, rounds: number) => {
    const counts = new Map<string, number>()
    for (let round = 0; round < rounds; round++) {
      const order = roundOrder(n, round)
      expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i))
      order.slice(1).forEach((contender, i) => {
        const pair = `${order[i]}>${contender}`
        counts.set(pair, (counts.get(pair) ?? 0) + 1)
      })
    }
    return counts
  }

  it.each([2, 4, 6, 8])('puts each of %i contenders right after every other once in as many rounds', (n) => {
    const counts = predecessors(n, n)
    expect(counts.size).toBe(n * (n - 1))
    expect(new Set(counts.values())).toEqual(new Set([1]))
  })

  it.each([3, 5, 7])('puts each of %i contenders right after every other twice in twice as many rounds', (n) => {
    const counts = predecessors(n, 2 * n)
    expect(counts.size).toBe(n * (n - 1))
    expect(new Set(counts.values())).toEqual(new Set([2]))
  })

  it('gives every contender every position equally often', () => {
    const positions = Array.from({ length: 6 }, () => Array(6).fill(0) as number[])
    for (let round = 0; round < 6; round++) roundOrder(6, round).forEach((contender, position) => (positions[contender]![position] = (positions[contender]![position] ?? 0) + 1))
    expect(positions).toEqual(Array.from({ length: 6 }, () => Array(6).fill(1)))
  })
})

describe('throughput floor', () => {
  // Times per operation: the bare driver 100 µs, prisma-tenancy's wire 120, the fast path's 110; plain Prisma 200, prisma-tenancy 230.
  const results = side(
    'findMany-50-wire',
    16,
    [
      [throughputWireBaseline, summary(1, 10_000, 50)],
      [tenancyWire, summary(1, 1e6 / 120, 60)],
      [fastPathWire, summary(1, 1e6 / 110, 60)],
      ['plain-prisma', summary(2, 5000, 200)],
      ['prisma-tenancy', summary(2, 1e6 / 230, 220)],
    ],
    throughputWireBaseline,
  )

  it("adds what each wire form costs the bare driver to plain Prisma's time per operation", () => {
    const floors = throughputFloors(results)
    expect(floors.map((f) => [f.workload, f.clients, f.mode])).toEqual([['findMany-50', 16, 'default']])
    expect(floors[0]!.floor).toBeCloseTo(200 / 220, 3)
    expect(floors[0]!.measured).toBeCloseTo(200 / 230, 3)
  })

  it('states the floor next to the measured throughput in the report', () => {
    expect(formatReport({ machine, results, unavailable: [] })).toContain('findMany-50/16 default: floor 0.91×, measured 0.87×')
  })
})

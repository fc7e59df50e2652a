import { performance } from 'node:perf_hooks'
import { cpuMicrosSince, median, summarize, type Summary } from './stats.js'

/**
 * One unit of work; `index` picks the tenant and row, so every contender gets
 * the same sequence. `client` is which of the concurrent loops runs it, for
 * workloads that give each client a tenant of its own.
 */
export type Operation = (index: number, client: number) => Promise<unknown>

interface Sample {
  latencies: number[]
  wallMs: number
  ops: number
  cpuUs: number
}

/**
 * `clients` concurrent loops, each awaiting one operation at a time, as many
 * request handlers would; the wall time gives throughput.
 */
async function runClients(operation: Operation, clients: number, opsPerClient: number, firstIndex: number): Promise<Sample> {
  const latencies: number[] = []
  // Only one contender runs at a time, so the process's CPU over the loop is that contender's.
  const cpu = process.cpuUsage()
  const started = performance.now()
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let k = 0; k < opsPerClient; k++) {
        const t0 = performance.now()
        await operation(firstIndex + client * opsPerClient + k, client)
        latencies.push(performance.now() - t0)
      }
    }),
  )
  const wallMs = performance.now() - started
  return { latencies, wallMs, ops: clients * opsPerClient, cpuUs: cpuMicrosSince(cpu) }
}

export interface Plan {
  clients: number
  /** Operations in the warm-up (not measured), spread over the clients. */
  warmupOps: number
  /** Operations per client in each measured round. */
  opsPerClient: number
  rounds: number
}

/**
 * The order of `n` contenders in round `round`: a Williams design, a Latin
 * square in which every contender also comes right after every other equally
 * often (once each over n rounds, twice over 2n when n is odd). A plain
 * rotation also gives every contender every position, but always puts the
 * same neighbour before it, so what one contender leaves behind (garbage for
 * the next collection, dirty pages for the writer, rows for autovacuum) would
 * land on the same other contender in every round.
 */
export function roundOrder(n: number, round: number): number[] {
  const cycle = n % 2 === 0 ? n : 2 * n
  const r = round % cycle
  // First row 0, 1, n-1, 2, n-2, ...; row r adds r to each (mod n); an odd n adds the mirror of those rows.
  const row = Array.from({ length: n }, (_, j) => ((j === 0 ? 0 : j % 2 === 1 ? (j + 1) / 2 : n - j / 2) + r) % n)
  return r < n ? row : row.reverse()
}

/**
 * Measures several contenders on the same operation, interleaved: each round
 * runs every contender once, in an order that changes from round to round
 * (roundOrder), so drift in machine load (other processes, autovacuum)
 * spreads over all contenders instead of landing on whichever ran last.
 */
export async function measureInterleaved(operations: ReadonlyMap<string, Operation>, plan: Plan): Promise<Map<string, Summary>> {
  const names = [...operations.keys()]
  const warmupPerClient = Math.max(1, Math.ceil(plan.warmupOps / plan.clients))
  for (const name of names) await runClients(operations.get(name)!, plan.clients, warmupPerClient, 0)
  const samples = new Map<string, Sample[]>(names.map((name) => [name, []]))
  for (let round = 0; round < plan.rounds; round++) {
    for (const index of roundOrder(names.length, round)) {
      const name = names[index]!
      const firstIndex = (round + 1) * plan.clients * plan.opsPerClient
      samples.get(name)!.push(await runClients(operations.get(name)!, plan.clients, plan.opsPerClient, firstIndex))
    }
  }
  return new Map(
    names.map((name) => {
      const rounds = samples.get(name)!
      const perSecond = rounds.map((s) => (s.ops * 1000) / s.wallMs)
      const cpuPerOp = rounds.map((s) => s.cpuUs / s.ops)
      return [
        name,
        {
          ...summarize(
            rounds.flatMap((s) => s.latencies),
            rounds.reduce((sum, s) => sum + s.wallMs, 0),
            rounds.reduce((sum, s) => sum + s.ops, 0),
            median(cpuPerOp),
          ),
          // Both per round, then the median round, not the sum: a garbage collection, a tier-up, a checkpoint of
          // the server or a stall of the virtual machine lands in one round of one contender and would
          // otherwise move its figures by more than the differences they show.
          ops_per_s: median(perSecond),
          rounds: { ops_per_s: perSecond, cpu_us_per_op: cpuPerOp },
        },
      ]
    }),
  )
}

/**
 * Times `work` once per round after `setup` (not timed) prepared it, for
 * workloads that take long each; a first, untimed round warms up.
 */
export async function measureRounds<T>(rounds: number, setup: () => Promise<T>, work: (prepared: T) => Promise<void>, teardown: (prepared: T) => Promise<void>): Promise<Summary> {
  const durations: number[] = []
  let cpuUs = 0
  for (let round = 0; round <= rounds; round++) {
    const prepared = await setup()
    try {
      const cpu = process.cpuUsage()
      const t0 = performance.now()
      await work(prepared)
      if (round > 0) {
        durations.push(performance.now() - t0)
        cpuUs += cpuMicrosSince(cpu)
      }
    } finally {
      await teardown(prepared)
    }
  }
  return summarize(durations, durations.reduce((a, b) => a + b, 0), durations.length, durations.length > 0 ? cpuUs / durations.length : Number.NaN)
}

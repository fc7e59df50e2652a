/** Latency figures of one contender on one workload, pooled over every measured round. */
export interface Summary {
  median_ms: number
  p99_ms: number
  ops_per_s: number
  /**
   * Node's own CPU (user + system, every thread of this process) per operation; the server's CPU is not in it.
   * For interleaved contenders, the median over the rounds of each round's CPU per operation.
   */
  cpu_us_per_op: number
  samples: number
  /**
   * Interleaved contenders: each measured round's throughput and CPU per operation, in round order, so
   * a ratio can pair a contender's round with the baseline's round of the same pass (toResult).
   */
  rounds?: { ops_per_s: readonly number[]; cpu_us_per_op: readonly number[] } | undefined
}

/** Nearest-rank percentile: a value that was actually observed, never an interpolation. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)))
  return sorted[rank - 1] ?? Number.NaN
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? (sorted[middle] ?? Number.NaN) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

/**
 * A distribution-free 95% confidence interval for the median of `values`:
 * sorted values k and n + 1 - k (1-based), with k the largest rank at which
 * fewer than k of n values fall below the median with probability 2.5% or less
 * (binomial, p = 1/2). It assumes nothing about the shape of the values, which
 * on a shared virtual machine have a long tail. Undefined below 6 values, where
 * no such pair reaches 95%.
 */
export function medianInterval(values: readonly number[]): [number, number] | undefined {
  const n = values.length
  let below = 0
  let term = 0.5 ** n
  let k = 0
  // P(X <= j) for X ~ Binomial(n, 1/2), summed up while it stays within 2.5%.
  for (let j = 0; j < n; j++) {
    if (below + term > 0.025) break
    below += term
    term = (term * (n - j)) / (j + 1)
    k = j + 1
  }
  if (k === 0) return undefined
  const sorted = [...values].sort((a, b) => a - b)
  return [sorted[k - 1]!, sorted[n - k]!]
}

/** `process.cpuUsage(since)` as one figure: what `cpu_us_per_op` adds up. */
export function cpuMicrosSince(since: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(since)
  return user + system
}

export function summarize(latenciesMs: readonly number[], wallMs: number, ops: number, cpuUsPerOp: number): Summary {
  const sorted = [...latenciesMs].sort((a, b) => a - b)
  return {
    median_ms: median(sorted),
    p99_ms: percentile(sorted, 99),
    ops_per_s: wallMs > 0 ? (ops * 1000) / wallMs : Number.NaN,
    cpu_us_per_op: cpuUsPerOp,
    samples: sorted.length,
  }
}

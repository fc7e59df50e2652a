import { median, medianInterval, type Summary } from './stats.js'

/** One line of the report, in the JSON shape `npm run bench -- --json` documents. */
export interface Result {
  workload: string
  clients: number
  contender: string
  median_ms: number
  p99_ms: number
  ops_per_s: number
  /** This contender's median over the baseline's median for the same workload and client count. */
  ratio: number
  /**
   * This contender's throughput over the baseline's: below 1 is slower. For interleaved contenders, the
   * median over the rounds of each round's ratio to the baseline's round of the same pass.
   */
  throughput_ratio: number
  /**
   * A 95% confidence interval for `throughput_ratio`, from its round-by-round ratios (stats.ts,
   * medianInterval); null where the rounds cannot be paired or are too few. On these shared
   * 2-core machines one round's ratio ranges over ±30%, so the interval says how far the figure is known.
   */
  throughput_ratio_ci95: [number, number] | null
  /** Node's CPU (user + system) over the timed loop, per operation, in microseconds; PostgreSQL's is not in it. */
  cpu_us_per_op: number
  /**
   * `cpu_us_per_op` minus the baseline's: what this contender costs the application's CPU on top of it;
   * for interleaved contenders, the median of the differences round by round.
   */
  cpu_delta_us_per_op: number
  /** What both ratios divide by. */
  baseline: string
  /** True on the baseline's own row. */
  is_baseline: boolean
  /** False where isolation is not enforced by PostgreSQL row-level security. */
  rls: boolean
}

export interface Unavailable {
  contender: string
  reason: string
}

export interface WorkloadOutcome {
  results: Result[]
  unavailable: Unavailable[]
}

const round = (value: number, digits: number) => Number(value.toFixed(digits))

/**
 * A contender's figure against the baseline's: round by round where both were
 * measured in the same interleaved rounds, then the median of those, else the
 * two medians. A round of every contender takes a second or two, and these
 * machines' speed drifts over minutes: within one pass both saw the same
 * machine, so the drift cancels out of the pair instead of landing on whichever
 * contender's median round it happened in.
 */
function paired(
  summary: Summary,
  baseline: Summary,
  figure: 'ops_per_s' | 'cpu_us_per_op',
  compare: (contender: number, baseline: number) => number,
): { value: number; rounds: number[] | undefined } {
  const mine = summary.rounds?.[figure]
  const theirs = baseline.rounds?.[figure]
  if (mine === undefined || theirs === undefined || mine.length !== theirs.length || mine.length === 0) {
    return { value: compare(summary[figure], baseline[figure]), rounds: undefined }
  }
  // Each round against the baseline's round of the same pass.
  const rounds = mine.map((value, index) => compare(value, theirs[index]!))
  return { value: median(rounds), rounds }
}

/** The 95% interval of a paired figure's median, from its rounds; null where it has none (unpaired, too few rounds). */
function interval(rounds: readonly number[] | undefined): [number, number] | null {
  const bounds = rounds === undefined ? undefined : medianInterval(rounds)
  return bounds === undefined ? null : [round(bounds[0], 3), round(bounds[1], 3)]
}

export function toResult(
  workload: string,
  clients: number,
  contender: string,
  summary: Summary,
  baseline: { label: string; summary: Summary | undefined },
  rls: boolean,
): Result {
  const throughput = baseline.summary === undefined ? undefined : paired(summary, baseline.summary, 'ops_per_s', (a, b) => a / b)
  return {
    workload,
    clients,
    contender,
    median_ms: round(summary.median_ms, 3),
    p99_ms: round(summary.p99_ms, 3),
    ops_per_s: round(summary.ops_per_s, 1),
    ratio: baseline.summary === undefined ? Number.NaN : round(summary.median_ms / baseline.summary.median_ms, 3),
    throughput_ratio: throughput === undefined ? Number.NaN : round(throughput.value, 3),
    throughput_ratio_ci95: throughput === undefined || summary === baseline.summary ? null : interval(throughput.rounds),
    cpu_us_per_op: round(summary.cpu_us_per_op, 1),
    cpu_delta_us_per_op: baseline.summary === undefined ? Number.NaN : round(paired(summary, baseline.summary, 'cpu_us_per_op', (a, b) => a - b).value, 1),
    baseline: baseline.label,
    is_baseline: summary === baseline.summary,
    rls,
  }
}

/** Results of contenders measured side by side, each divided by the one named `baseline.name`. */
export function toResults(
  workload: string,
  clients: number,
  summaries: ReadonlyMap<string, Summary>,
  baseline: { name: string; label?: string },
  rls: (contender: string) => boolean,
): Result[] {
  const base = { label: baseline.label ?? baseline.name, summary: summaries.get(baseline.name) }
  return [...summaries].map(([contender, summary]) => toResult(workload, clients, contender, summary, base, rls(contender)))
}

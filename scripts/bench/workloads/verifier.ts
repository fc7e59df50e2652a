import type { WorkloadOutcome } from '../results.js'

export interface VerifierSize {
  tables: number
  rounds: number
}

/** Workload 4: `verify` on a database with many tenant tables. Wired once the verifier is exported. */
export async function runVerifierWorkload(): Promise<WorkloadOutcome | { skipped: string }> {
  return { skipped: 'verifier not built' }
}

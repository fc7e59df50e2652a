import type { OperationsSize } from './workloads/operations.js'
import type { RowsSize } from './workloads/rows.js'
import type { MigrationSize } from './workloads/migration.js'
import type { VerifierSize } from './workloads/verifier.js'
import type { PartitionsSize } from './workloads/partitions.js'

export interface Sizes {
  operations: OperationsSize
  rows: RowsSize
  migration: MigrationSize
  verifier: VerifierSize
  partitions: PartitionsSize
}

/** The full run the README reports; 20–30 minutes on 2 cores. */
export const fullSizes: Sizes = {
  operations: { tenants: 10, projectsPerTenant: 4, tasksPerProject: 100, rounds: 20, concurrentRounds: 40, warmupOps: 1000, opsSingle: 140, opsConcurrent: 20, concurrency: 16, poolSize: 10 },
  rows: { tenants: 1000, rowsPerTenant: 1000, rounds: 7, warmupOps: 50, opsPerRound: 200 },
  migration: { tenantCounts: [10, 1000, 10_000], rounds: 5, schemaPerTenantMax: 10_000 },
  verifier: { tables: 500, rounds: 3 },
  partitions: { tenants: 1000, rowsPerTenant: 1000, rounds: 7, warmupOps: 50, opsPerRound: 200, removeRows: 10_000, removeRounds: 5 },
}

/** `--quick`: the same workloads, far fewer rows and rounds; about 12 minutes on 2 cores. */
export const quickSizes: Sizes = {
  // At 16 clients one round's throughput ratio ranges over ±30% on these machines: with 10 rounds the median moved by
  // ±0.1 between runs (findMany-50: 0.75-0.96), so 30, whose 95% interval is the 10th to the 21st round.
  // The operations at full warm-up and the full run's rounds at 1 client: with a 200-operation warm-up and
  // 6 rounds of 40, p99 at 1 client was 2-4 ms (the JIT still compiling) and ratios moved by 0.2 between runs;
  // with 10 rounds of 100 a p99 is the 10th slowest of 1,000 calls, and the fast path's p99 over plain Prisma's
  // was 2.56x, 1.94x and 2.46x in three quick runs (2026-12-04, 12-06) where the full run's 2,800 calls gave 1.07x
  // (with 20 rounds, 2026-12-06: 1.23x and 2.72x; a stall of the machine still lands in it, but as a smaller share of the calls).
  operations: { tenants: 10, projectsPerTenant: 2, tasksPerProject: 60, rounds: 20, concurrentRounds: 30, warmupOps: 1000, opsSingle: 100, opsConcurrent: 20, concurrency: 16, poolSize: 10 },
  rows: { tenants: 100, rowsPerTenant: 1000, rounds: 3, warmupOps: 20, opsPerRound: 100 },
  migration: { tenantCounts: [10, 1000, 10_000], rounds: 3, schemaPerTenantMax: 1000 },
  verifier: { tables: 100, rounds: 1 },
  // 100,000 rows over 100 tenants (not 1,000,000 over 1,000): seeding and 1,000 partitions take minutes on 2 cores.
  partitions: { tenants: 100, rowsPerTenant: 1000, rounds: 3, warmupOps: 20, opsPerRound: 100, removeRows: 10_000, removeRounds: 2 },
}

import { verify } from '../../../src/index.js'
import { createBenchDatabase, type BenchRoles } from '../database.js'
import { measureRounds } from '../measure.js'
import { projectCopyWith } from '../project-copy.js'
import { toResult, type WorkloadOutcome } from '../results.js'

export interface VerifierSize {
  tables: number
  rounds: number
}

const tableName = (i: number) => `bench_table_${String(i).padStart(4, '0')}`
const modelName = (i: number) => `BenchTable${String(i).padStart(4, '0')}`

function models(count: number): string {
  return Array.from(
    { length: count },
    (_, i) => `
model ${modelName(i)} {
  id       String @id @default(uuid())
  tenantId String @default(dbgenerated("current_setting('app.current_tenant'::text, true)")) @map("tenant_id")
  name     String

  @@unique([tenantId, id])
  @@map("${tableName(i)}")
}
`,
  ).join('')
}

function tablesSql(count: number): string {
  return Array.from(
    { length: count },
    (_, i) => `CREATE TABLE "${tableName(i)}" ("id" TEXT NOT NULL PRIMARY KEY, "tenant_id" TEXT NOT NULL DEFAULT current_setting('app.current_tenant'::text, true), "name" TEXT NOT NULL);
CREATE UNIQUE INDEX "${tableName(i)}_tenant_id_id_key" ON "${tableName(i)}" ("tenant_id", "id");
`,
  ).join('')
}

/**
 * Workload 4: `verify` (catalog checks and behavioural probes, as the
 * application role) on a database with `tables` more tenant tables, each
 * with the policies `prisma-tenancy generate` writes.
 */
export async function runVerifierWorkload(
  serverAdminUrl: string,
  roles: BenchRoles,
  size: VerifierSize,
  log: (line: string) => void,
  migrations?: string,
): Promise<WorkloadOutcome> {
  log(`  generating policies for ${size.tables} tenant tables`)
  const copy = await projectCopyWith({ models: models(size.tables), tablesSql: tablesSql(size.tables), migrations })
  try {
    const database = await createBenchDatabase(serverAdminUrl, roles, { migrations: copy.migrations })
    try {
      const workload = `verify, ${size.tables} tenant tables`
      log(`  ${workload}`)
      let verdict = ''
      const summary = await measureRounds(
        size.rounds,
        async () => undefined,
        async () => {
          const report = await verify({ databaseUrl: database.adminUrl, schema: copy.schema, role: roles.app.name })
          verdict = `${report.tenantTables.length} tenant tables, ${report.probedTables.length} probed, ${report.summary.failed} failed checks`
        },
        async () => undefined,
      )
      log(`  verify found ${verdict}`)
      return { results: [toResult(workload, 1, 'prisma-tenancy', summary, { label: 'prisma-tenancy', summary }, true)], unavailable: [] }
    } finally {
      await database.drop()
    }
  } finally {
    await copy.remove()
  }
}

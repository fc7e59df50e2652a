import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { grantAppRole } from '../../../src/database/admin.js'
import { resolveProject } from '../../../src/config/project-config.js'
import { createBenchDatabase, runSql, type BenchRoles } from '../database.js'
import { measureRounds } from '../measure.js'
import { toResult, type WorkloadOutcome } from '../results.js'

export interface VerifierSize {
  tables: number
  rounds: number
}

/** The verifier as the public entry exports it; looked up at run time so the benchmark runs before it exists. */
type Verify = (options: { databaseUrl: string; schema: string; role: string }) => Promise<unknown>

async function findVerifier(): Promise<Verify | undefined> {
  const api: Record<string, unknown> = await import('../../../src/index.js')
  return typeof api.verify === 'function' ? (api.verify as Verify) : undefined
}

const tableName = (i: number) => `bench_table_${String(i).padStart(4, '0')}`
const modelName = (i: number) => `BenchTable${String(i).padStart(4, '0')}`
const predicate = `"tenant_id" = (SELECT NULLIF(current_setting('app.current_tenant', true), ''))`

/** One more tenant model per table, appended to the project's schema, so the verifier classifies every table. */
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

function tableSql(i: number): string {
  const t = `"${tableName(i)}"`
  return `CREATE TABLE ${t} ("id" TEXT NOT NULL PRIMARY KEY, "tenant_id" TEXT NOT NULL DEFAULT current_setting('app.current_tenant'::text, true), "name" TEXT NOT NULL);
CREATE UNIQUE INDEX "${tableName(i)}_tenant_id_id_key" ON ${t} ("tenant_id", "id");
ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY;
ALTER TABLE ${t} FORCE ROW LEVEL SECURITY;
CREATE POLICY tenancy_isolation ON ${t} AS RESTRICTIVE FOR ALL TO PUBLIC USING (${predicate}) WITH CHECK (${predicate});
CREATE POLICY tenancy_access ON ${t} AS PERMISSIVE FOR ALL TO PUBLIC USING (${predicate}) WITH CHECK (${predicate});`
}

/** Workload 4: `verify` (catalog checks and behavioural probes) on a database with `tables` tenant tables. */
export async function runVerifierWorkload(
  serverAdminUrl: string,
  roles: BenchRoles,
  size: VerifierSize,
  log: (line: string) => void,
  migrations?: string,
): Promise<WorkloadOutcome | { skipped: string }> {
  const verify = await findVerifier()
  if (verify === undefined) return { skipped: 'verifier not built' }
  const folder = await mkdtemp(join(tmpdir(), 'prisma-tenancy-bench-schema-'))
  const database = await createBenchDatabase(serverAdminUrl, roles, { migrations })
  try {
    const project = await resolveProject()
    const schema = join(folder, 'schema.prisma')
    await writeFile(schema, `${await readFile(project.schemaPath, 'utf8')}\n${models(size.tables)}`)
    log(`  creating ${size.tables} tenant tables`)
    await runSql(database.adminUrl, async (client) => {
      for (let i = 0; i < size.tables; i++) await client.query(tableSql(i))
    })
    await grantAppRole(database.adminUrl, roles.app.name)
    const workload = `verify, ${size.tables} tenant tables`
    log(`  ${workload}`)
    const summary = await measureRounds(
      size.rounds,
      async () => undefined,
      async () => {
        await verify({ databaseUrl: database.adminUrl, schema, role: roles.app.name })
      },
      async () => undefined,
    )
    return { results: [toResult(workload, 1, 'prisma-tenancy', summary, { label: 'prisma-tenancy', summary }, true)], unavailable: [] }
  } finally {
    await database.drop()
    await rm(folder, { recursive: true, force: true })
  }
}

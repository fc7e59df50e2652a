import { performance } from 'node:perf_hooks'
import { migrateDeploy } from '../../../src/migrate/migrate.js'
import { createDatabase, dropDatabase } from '../../../src/database/admin.js'
import { uniqueDatabaseName } from '../../../src/testing/test-server.js'
import { createBenchDatabase, runSql, type BenchDatabase, type BenchRoles } from '../database.js'
import { registerTenants } from '../fixtures.js'
import { projectCopyWith } from '../project-copy.js'
import { measureRounds } from '../measure.js'
import { toResult, type Result, type WorkloadOutcome } from '../results.js'
import { cpuMicrosSince, summarize, type Summary } from '../stats.js'

export interface MigrationSize {
  tenantCounts: number[]
  rounds: number
  /** The largest tenant count the schema-per-tenant reference is built for (it takes a schema per tenant to set up). */
  schemaPerTenantMax: number
}

/** A typical schema change: a column on a tenant table and a new tenant table (whose policies `generate` writes). */
const newModel = `
model Label {
  id       String @id @default(uuid())
  tenantId String @default(dbgenerated("current_setting('app.current_tenant'::text, true)")) @map("tenant_id")
  name     String

  @@unique([tenantId, id])
}
`

const newTablesSql = `-- Benchmark: a schema change applied once for all tenants.
ALTER TABLE "tasks" ADD COLUMN "priority" INTEGER NOT NULL DEFAULT 0;

CREATE TABLE "Label" (
    "id" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL DEFAULT current_setting('app.current_tenant'::text, true),
    "name" TEXT NOT NULL,
    CONSTRAINT "Label_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "Label_tenant_id_id_key" ON "Label"("tenant_id", "id");
`

/**
 * Workload 3: \`migrate deploy\` of one new migration on a database with N
 * tenants registered. With one shared schema the migration runs once, so the
 * time should not depend on N. Each round deploys to a fresh clone of a
 * database prepared with N tenants; only the deploy is timed.
 */
export async function runMigrationWorkload(
  serverAdminUrl: string,
  roles: BenchRoles,
  size: MigrationSize,
  log: (line: string) => void,
  migrations?: string,
): Promise<WorkloadOutcome> {
  const copy = await projectCopyWith({ models: newModel, tablesSql: newTablesSql, migrations })
  try {
    const counts = [...size.tenantCounts].sort((a, b) => a - b)
    const templates = new Map<number, BenchDatabase>()
    const deploys = new Map<number, { ms: number; cpuUs: number }[]>(counts.map((n) => [n, []]))
    try {
      for (const tenants of counts) {
        log(`  registering ${tenants} tenants`)
        const template = await createBenchDatabase(serverAdminUrl, roles, { migrations })
        templates.set(tenants, template)
        await registerTenants(template.adminUrl, tenants)
      }
      const deploy = async (tenants: number) => {
        const clone = await createBenchDatabase(serverAdminUrl, roles, { template: templates.get(tenants)!.name })
        try {
          const cpu = process.cpuUsage()
          const t0 = performance.now()
          const { applied } = await migrateDeploy({ databaseUrl: clone.adminUrl, schema: copy.schema, migrations: copy.migrations })
          const measured = { ms: performance.now() - t0, cpuUs: cpuMicrosSince(cpu) }
          if (applied.join() !== copy.added.join()) throw new Error(`expected to apply ${copy.added.join(', ')}, applied ${applied.join(', ') || 'nothing'}`)
          return measured
        } finally {
          await clone.drop()
        }
      }
      // Prisma's WebAssembly engine gets faster over its first calls; none of those count.
      for (let i = 0; i < 3; i++) await deploy(counts[0]!)
      // Interleaved, rotating, as for contenders: machine drift spreads over every tenant count.
      for (let round = 0; round < size.rounds; round++) {
        for (let i = 0; i < counts.length; i++) {
          const tenants = counts[(i + round) % counts.length]!
          log(`  migrate deploy, ${tenants} tenants, round ${round + 1}`)
          deploys.get(tenants)!.push(await deploy(tenants))
        }
      }
    } finally {
      await Promise.allSettled([...templates.values()].map((template) => template.drop()))
    }
    const summaryOf = (n: number) => {
      const measured = deploys.get(n)!
      const times = measured.map((m) => m.ms)
      return summarize(times, times.reduce((a, b) => a + b, 0), times.length, times.length > 0 ? measured.reduce((sum, m) => sum + m.cpuUs, 0) / times.length : Number.NaN)
    }
    const fewest = summaryOf(counts[0]!)
    const results: Result[] = counts.map((n) =>
      toResult(`migrate deploy, ${n} tenants`, 1, 'prisma-tenancy', n === counts[0] ? fewest : summaryOf(n), { label: `prisma-tenancy at ${counts[0]} tenants`, summary: fewest }, true),
    )
    results.push(...(await schemaPerTenantReference(serverAdminUrl, counts.filter((n) => n <= size.schemaPerTenantMax), size.rounds, log)))
    // Side by side per tenant count in the report.
    const tenantsOf = (r: Result) => Number(/(\d+) tenants/.exec(r.workload)?.[1])
    return { results: results.sort((a, b) => tenantsOf(a) - tenantsOf(b)), unavailable: [] }
  } finally {
    await copy.remove()
  }
}

/** The same change for one tenant's schema: what schema-per-tenant has to run once per tenant. */
const perSchemaSql = (schema: string) => `BEGIN;
ALTER TABLE "${schema}"."tasks" ADD COLUMN "priority" INTEGER NOT NULL DEFAULT 0;
CREATE TABLE "${schema}"."Label" ("id" TEXT NOT NULL PRIMARY KEY, "name" TEXT NOT NULL);
COMMIT;`

const tenantSchema = (i: number) => `tenant_${i}`

/**
 * Reference, not a contender: schema-per-tenant, one schema with a tasks
 * table per tenant, the migration's SQL run once per schema, each in its own
 * transaction over one connection. That is its best case: tools that run
 * \`prisma migrate deploy\` per schema also pay the engine's start-up per tenant.
 */
async function schemaPerTenantReference(serverAdminUrl: string, counts: number[], rounds: number, log: (line: string) => void): Promise<Result[]> {
  const results: Result[] = []
  let fewest: Summary | undefined
  for (const tenants of counts) {
    const workload = `migrate deploy, ${tenants} tenants`
    log(`  ${workload}, schema-per-tenant reference`)
    const template = uniqueDatabaseName('tenancy_bench_schemas')
    const templateUrl = await createDatabase(serverAdminUrl, template)
    try {
      await runSql(templateUrl, async (client) => {
        // In batches: one transaction creating thousands of tables runs out of lock slots.
        for (let first = 0; first < tenants; first += 500) {
          await client.query(`DO $$ BEGIN FOR i IN ${first}..${Math.min(tenants, first + 500) - 1} LOOP
            EXECUTE format('CREATE SCHEMA %I', 'tenant_' || i);
            EXECUTE format('CREATE TABLE %I.tasks ("id" TEXT NOT NULL PRIMARY KEY, "project_id" TEXT NOT NULL, "title" TEXT NOT NULL, "done" BOOLEAN NOT NULL DEFAULT false)', 'tenant_' || i);
            EXECUTE format('INSERT INTO %I.tasks VALUES (gen_random_uuid()::text, gen_random_uuid()::text, ''Task'', false)', 'tenant_' || i);
          END LOOP; END $$`)
        }
      })
      const summary = await measureRounds(
        rounds,
        async () => {
          const name = uniqueDatabaseName('tenancy_bench_schemas')
          return { name, url: await createDatabase(serverAdminUrl, name, { template }) }
        },
        (clone) =>
          runSql(clone.url, async (client) => {
            for (let i = 0; i < tenants; i++) await client.query(perSchemaSql(tenantSchema(i)))
          }),
        (clone) => dropDatabase(serverAdminUrl, clone.name),
      )
      fewest ??= summary
      results.push(toResult(workload, 1, 'schema-per-tenant', summary, { label: `schema-per-tenant at ${counts[0]} tenants`, summary: fewest }, false))
    } finally {
      await dropDatabase(serverAdminUrl, template)
    }
  }
  return results
}

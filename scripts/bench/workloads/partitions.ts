import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { PrismaClient } from '../../../test/fixtures/partitioned/prisma/generated/client.js'
import { createDatabase, dropDatabase, grantAppRole, withClient, appRoleUrl } from '../../../src/database/admin.js'
import { withDatabase } from '../../../src/database/connection-url.js'
import { createTenant, generatePolicies, partitionTenant, removeTenant, tenancy, tenancyAdapter } from '../../../src/index.js'
import { migrateDeploy } from '../../../src/migrate/migrate.js'
import { PARTITIONED_MARKER } from '../../../src/policy/classify-models.js'
import { withLifecycleDatabase } from '../../../src/tenants/tenant-database.js'
import { createTenantPartitions } from '../../../src/tenants/tenant-partitions.js'
import { uniqueDatabaseName } from '../../../src/testing/test-server.js'
import type { BenchRoles } from '../database.js'
import { copyToOwnTable } from '../fixtures.js'
import { measureInterleaved, type Operation } from '../measure.js'
import { toResult, toResults, type Result, type WorkloadOutcome } from '../results.js'
import { summarize } from '../stats.js'

export interface PartitionsSize {
  tenants: number
  rowsPerTenant: number
  rounds: number
  warmupOps: number
  opsPerRound: number
  /** Rows of the tenant that is removed (and moved out of DEFAULT) each round. */
  removeRows: number
  removeRounds: number
}

const fixture = 'test/fixtures/partitioned/prisma'
const ownSchema = 'tenant_own'
const tenantId = (index: number) => `t${String(index).padStart(5, '0')}`

interface FixtureDatabase {
  url: string
  appUrl: string
  /** What the lifecycle functions take. */
  lifecycle: { databaseUrl: string; schema: string; migrations: string }
  drop(): Promise<void>
}

/** The partitioned fixture, generated for the app role and deployed; `partitioned: false` drops the marker first (the same table, plain). */
async function deployFixture(serverAdminUrl: string, roles: BenchRoles, partitioned: boolean): Promise<FixtureDatabase> {
  const folder = await mkdtemp(join(tmpdir(), 'prisma-tenancy-bench-partitions-'))
  await cp(fixture, folder, { recursive: true, filter: (source) => !source.includes('generated') })
  const schema = join(folder, 'schema.prisma')
  const migrations = join(folder, 'migrations')
  if (!partitioned) await writeFile(schema, (await readFile(schema, 'utf8')).replace(`/// ${PARTITIONED_MARKER}\n`, ''))
  await generatePolicies({ schema, migrations, appRole: roles.app.name, now: new Date('2099-12-31T00:00:01Z') })
  const name = uniqueDatabaseName('tenancy_bench')
  const url = await createDatabase(serverAdminUrl, name)
  await migrateDeploy({ cwd: folder, schema, migrations, databaseUrl: url })
  return {
    url,
    appUrl: appRoleUrl(withDatabase(serverAdminUrl, name), roles.app),
    lifecycle: { databaseUrl: url, schema, migrations },
    async drop() {
      await dropDatabase(serverAdminUrl, name)
      await rm(folder, { recursive: true, force: true })
    },
  }
}

/** `count` rows of one tenant (ids prefixed), inserted as the admin. */
async function seedTenant(url: string, tenant: string, count: number): Promise<void> {
  await withClient(url, (client) => client.query(`INSERT INTO events (id, tenant_id, title) SELECT $1 || '-' || g, $1, 'event ' || g FROM generate_series(1, $2::int) g`, [tenant, count]))
}

/** The same rows in both databases: tenants registered (with partitions where partitioned), rows inserted round-robin over tenants, as they arrive when tenants write side by side. */
async function seedShared(database: FixtureDatabase, size: PartitionsSize, partitioned: boolean): Promise<void> {
  await withClient(database.url, (client) => client.query(`INSERT INTO "Tenant" (id, name) SELECT 't' || lpad(g::text, 5, '0'), 'tenant' FROM generate_series(0, $1::int - 1) g`, [size.tenants]))
  if (partitioned) {
    await withLifecycleDatabase(database.lifecycle, async (lifecycle) => {
      for (let index = 0; index < size.tenants; index++) await createTenantPartitions(lifecycle, tenantId(index))
    })
  }
  await withClient(database.url, async (client) => {
    await client.query(`INSERT INTO events (id, tenant_id, title) SELECT 'e' || g, 't' || lpad((g % $1::int)::text, 5, '0'), 'event ' || g FROM generate_series(0, $2::int - 1) g`, [size.tenants, size.tenants * size.rowsPerTenant])
    await client.query('VACUUM ANALYZE events')
  })
}

const queries: [string, (db: ReturnType<typeof tenantClient>) => Promise<unknown>][] = [
  ['findMany-50', (db) => db.event.findMany({ orderBy: { id: 'asc' }, take: 50 })],
  ['count', (db) => db.event.count()],
]

function tenantClient(url: string, options: { schema?: string; tenantFilter?: boolean } = {}) {
  return new PrismaClient({ adapter: tenancyAdapter({ connectionString: url, max: 1 }, options.schema === undefined ? {} : { schema: options.schema }) }).$extends(tenancy({ tenantFilter: options.tenantFilter === true }))
}

/** One timing per operation, run back to back. Node CPU is not counted here: these runs are mostly the server's work. */
const summaryOf = (durations: number[]) => summarize(durations, durations.reduce((sum, value) => sum + value, 0), durations.length, Number.NaN)

/** Times two contenders once per round, interleaved (the order alternates), after an untimed setup each. */
async function alternate(rounds: number, contenders: [string, (round: number) => Promise<() => Promise<void>>][]): Promise<Map<string, number[]>> {
  const durations = new Map<string, number[]>(contenders.map(([name]) => [name, []]))
  for (let round = 0; round <= rounds; round++) {
    const ordered = round % 2 === 0 ? contenders : [...contenders].reverse()
    for (const [name, setup] of ordered) {
      const work = await setup(round)
      const started = performance.now()
      await work()
      // Round 0 warms up.
      if (round > 0) durations.get(name)!.push(performance.now() - started)
    }
  }
  return durations
}

/**
 * Workload: tables partitioned by tenant. One tenant's queries on a table
 * LIST-partitioned by tenant (its own partition, pruned at executor start by
 * the policy's setting) vs the same table unpartitioned vs the tenant's rows
 * in a table of their own, all through prisma-tenancy; then removing a tenant
 * by dropping its partition vs deleting its rows; then how much of moving a
 * tenant out of DEFAULT (`tenant partition`) blocks writers.
 */
export async function runPartitionsWorkload(serverAdminUrl: string, roles: BenchRoles, size: PartitionsSize, log: (line: string) => void): Promise<WorkloadOutcome> {
  const partitioned = await deployFixture(serverAdminUrl, roles, true)
  const plain = await deployFixture(serverAdminUrl, roles, false)
  const clients: ReturnType<typeof tenantClient>[] = []
  try {
    const total = size.tenants * size.rowsPerTenant
    log(`  seeding ${total} rows for ${size.tenants} tenants, partitioned and not`)
    await seedShared(partitioned, size, true)
    await seedShared(plain, size, false)
    const tenant = tenantId(Math.floor(size.tenants / 2))
    await copyToOwnTable(plain.url, ownSchema, 'events', tenant)
    await grantAppRole(plain.url, roles.app.name, ownSchema)
    const contenders = new Map([
      ['prisma-tenancy (own table)', tenantClient(plain.appUrl, { schema: ownSchema })],
      ['prisma-tenancy (partitioned)', tenantClient(partitioned.appUrl)],
      // The policy alone prunes only when the query starts, after every partition was planned; the filter prunes when planning.
      ['prisma-tenancy (partitioned, tenantFilter)', tenantClient(partitioned.appUrl, { tenantFilter: true })],
      ['prisma-tenancy (unpartitioned)', tenantClient(plain.appUrl)],
    ])
    clients.push(...contenders.values())
    for (const [name, client] of contenders) {
      const count = await client.forTenant(tenant).event.count()
      if (count !== size.rowsPerTenant) throw new Error(`${name} counted ${count} rows for ${tenant} instead of ${size.rowsPerTenant}`)
    }
    const results: Result[] = []
    const scale = `${total >= 1e6 ? `${total / 1e6}M` : `${total / 1e3}k`} rows/${size.tenants} tenants`
    for (const [name, query] of queries) {
      const workload = `${scale} partitioned vs unpartitioned vs own table: ${name}`
      log(`  ${workload}`)
      const operations = new Map<string, Operation>([...contenders].map(([contender, client]) => [contender, () => query(client.forTenant(tenant))]))
      const summaries = await measureInterleaved(operations, { clients: 1, rounds: size.rounds, warmupOps: size.warmupOps, opsPerClient: size.opsPerRound })
      results.push(...toResults(workload, 1, summaries, { name: 'prisma-tenancy (own table)' }, () => true))
    }

    const removal = `removing one tenant of ${size.removeRows} rows (${scale} around it)`
    log(`  ${removal}`)
    const victim = (round: number) => `victim${round}`
    const register = async (database: FixtureDatabase, round: number) => {
      await createTenant(victim(round), { ...database.lifecycle, data: { name: 'victim' } })
      await seedTenant(database.url, victim(round), size.removeRows)
      return () => removeTenant(victim(round), { ...database.lifecycle, yes: true }).then(() => undefined)
    }
    const removed = await alternate(size.removeRounds, [
      ['tenant remove by delete', (round) => register(plain, round)],
      ['tenant remove by partition drop', (round) => register(partitioned, round)],
    ])
    const byDelete = summaryOf(removed.get('tenant remove by delete')!)
    const base = { label: 'tenant remove by delete', summary: byDelete }
    results.push(toResult(removal, 1, 'tenant remove by delete', byDelete, base, true), toResult(removal, 1, 'tenant remove by partition drop', summaryOf(removed.get('tenant remove by partition drop')!), base, true))

    const move = `tenant partition: one tenant of ${size.removeRows} rows out of DEFAULT`
    log(`  ${move}`)
    // Rows of a tenant without a partition of its own share DEFAULT with the tenant moving out (ATTACH scans DEFAULT).
    await withClient(partitioned.url, (client) => client.query(`INSERT INTO "Tenant" (id, name) VALUES ('unpartitioned', 'unpartitioned')`))
    await seedTenant(partitioned.url, 'unpartitioned', size.removeRows)
    const whole: number[] = []
    const blocked: number[] = []
    for (let round = 0; round <= size.removeRounds; round++) {
      const id = `mover${round}`
      await withClient(partitioned.url, (client) => client.query(`INSERT INTO "Tenant" (id, name) VALUES ($1, 'mover')`, [id]))
      await seedTenant(partitioned.url, id, size.removeRows)
      const started = performance.now()
      const result = await partitionTenant(id, partitioned.lifecycle)
      if (round === 0) continue
      whole.push(performance.now() - started)
      blocked.push(result.tables.reduce((sum, table) => sum + table.writersBlockedMs, 0))
    }
    const wholeSummary = summaryOf(whole)
    const moveBase = { label: 'whole tenant partition run', summary: wholeSummary }
    results.push(toResult(move, 1, 'whole tenant partition run', wholeSummary, moveBase, true), toResult(move, 1, 'writers blocked', summaryOf(blocked), moveBase, true))
    return { results, unavailable: [] }
  } finally {
    await Promise.allSettled(clients.map((client) => client.$disconnect()))
    await partitioned.drop()
    await plain.drop()
  }
}

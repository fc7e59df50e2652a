import { PrismaPg } from '@prisma/adapter-pg'
import { grantAppRole, withClient } from '../../../src/database/admin.js'
import { PrismaClient } from '../../../prisma/generated/client.js'
import { startContenders, type Contender, type ContenderFactory, type TenantDb } from '../contenders.js'
import { createBenchDatabase, type BenchRoles } from '../database.js'
import { copyToOwnTable, seedSharedTable } from '../fixtures.js'
import { measureInterleaved, type Operation } from '../measure.js'
import { prismaTenancy, prismaTenancyOn } from '../prisma-tenancy.js'
import { toResult, toResults, type WorkloadOutcome } from '../results.js'

export interface RowsSize {
  tenants: number
  rowsPerTenant: number
  rounds: number
  warmupOps: number
  opsPerRound: number
}

const ownSchema = 'tenant_own'
const ownTableTenancy = 'prisma-tenancy (own table)'

/**
 * The baseline of this workload: the plain client on a table that holds only
 * this tenant's rows (schema-per-tenant), through the adapter's `schema` option.
 */
async function ownTableContender(url: string): Promise<Contender> {
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: 1 }, { schema: ownSchema }) })
  return {
    name: 'plain-prisma',
    rls: false,
    isolates: false,
    scope: (_tenantId, work) => work(prisma),
    transaction: (_tenantId, work) => prisma.$transaction((tx) => work(tx)),
    close: () => prisma.$disconnect(),
  }
}

/** How PostgreSQL runs one tenant's list on the shared table with the policies on: the index and policy are what keep it close to an own table. */
async function sharedTablePlan(appUrl: string, tenantId: string): Promise<string> {
  return withClient(appUrl, async (client) => {
    await client.query('BEGIN')
    try {
      await client.query(`SELECT set_config('app.current_tenant', $1, true)`, [tenantId])
      const { rows } = await client.query<{ 'QUERY PLAN': string }>('EXPLAIN (COSTS OFF) SELECT * FROM tasks WHERE done = false ORDER BY id LIMIT 50')
      return rows.map((row) => row['QUERY PLAN'].trim()).join(' | ')
    } finally {
      await client.query('ROLLBACK')
    }
  })
}

const queries: [string, (db: TenantDb) => Promise<unknown>][] = [
  ['findMany-50', (db) => db.task.findMany({ where: { done: false }, orderBy: { id: 'asc' }, take: 50 })],
  ['count', (db) => db.task.count()],
]

/**
 * Workload 2: one tenant's queries on a table shared by every tenant (policies
 * on, the contenders that scope by tenant) against the same tenant's rows in
 * a table of its own (plain client, baseline), at one client.
 */
export async function runRowsWorkload(
  serverAdminUrl: string,
  roles: BenchRoles,
  factories: readonly ContenderFactory[],
  size: RowsSize,
  log: (line: string) => void,
  migrations?: string,
): Promise<WorkloadOutcome> {
  const database = await createBenchDatabase(serverAdminUrl, roles, { migrations })
  let contenders: Contender[] = []
  try {
    const total = size.tenants * size.rowsPerTenant
    log(`  seeding ${total} rows for ${size.tenants} tenants`)
    const tenantIds = await seedSharedTable(database.adminUrl, size)
    const tenantId = tenantIds[Math.floor(tenantIds.length / 2)]!
    await copyToOwnTable(database.adminUrl, ownSchema, 'tasks', tenantId)
    await grantAppRole(database.adminUrl, roles.unrestricted.name, ownSchema)
    await grantAppRole(database.adminUrl, roles.app.name, ownSchema)
    log(`  plan on the shared table, as the application role: ${await sharedTablePlan(database.appUrl, tenantId)}`)
    const check = async (contender: Contender) => {
      const count = await contender.scope(tenantId, (db) => db.task.count())
      return count === size.rowsPerTenant ? null : `counted ${count} rows for the tenant instead of ${size.rowsPerTenant}`
    }
    const peers = factories.filter((f) => f.name !== 'plain-prisma')
    const urls = { appUrl: database.appUrl, unrestrictedUrl: database.unrestrictedUrl, poolSize: 1 }
    const { started, unavailable } = await startContenders(
      [
        { name: 'plain-prisma', rls: false, isolates: false, create: () => ownTableContender(database.unrestrictedUrl) },
        ...peers,
        ...(peers.some((f) => f.name === prismaTenancy.name) ? [prismaTenancyOn(ownTableTenancy, { schema: ownSchema })] : []),
      ],
      urls,
      check,
    )
    contenders = started
    for (const { contender: name, reason } of unavailable) log(`  ${name}: not measured, ${reason}`)
    const rls = new Map(factories.map((f) => [f.name, f.rls]))
    const results = []
    const scale = `${total >= 1e6 ? `${total / 1e6}M` : `${total / 1e3}k`} rows/${size.tenants} tenants`
    for (const [name, query] of queries) {
      const workload = `${scale} vs own table: ${name}`
      log(`  ${workload}`)
      const operations = new Map<string, Operation>(contenders.map((c) => [c.name, () => c.scope(tenantId, query)]))
      const summaries = await measureInterleaved(operations, { clients: 1, rounds: size.rounds, warmupOps: size.warmupOps, opsPerClient: size.opsPerRound })
      const own = summaries.get(ownTableTenancy)
      summaries.delete(ownTableTenancy)
      results.push(...toResults(workload, 1, summaries, { name: 'plain-prisma', label: 'plain-prisma (own table)' }, (c) => rls.get(c) ?? false))
      const shared = summaries.get(prismaTenancy.name)
      if (own !== undefined && shared !== undefined) {
        // The same client on both layouts: what is left is the cost of the shared table and its policy.
        const same = `${scale} vs own table, both prisma-tenancy: ${name}`
        const base = { label: ownTableTenancy, summary: own }
        results.push(toResult(same, 1, ownTableTenancy, own, base, true), toResult(same, 1, prismaTenancy.name, shared, base, true))
      }
    }
    return { results, unavailable }
  } finally {
    await Promise.allSettled(contenders.map((c) => c.close()))
    await database.drop()
  }
}

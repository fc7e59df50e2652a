import { PrismaPg } from '@prisma/adapter-pg'
import { appRoleUrl, withClient } from '../../../src/database/admin.js'
import { tenancy, tenancyAdapter } from '../../../src/index.js'
import { citusAvailable, citusInstallScript, startCitusCluster } from '../../../src/testing/citus-cluster.js'
import { PrismaClient } from '../../../test/fixtures/citus/prisma/generated/client.js'
import { citusAppRole, deployCitusProject } from '../../../test/support/citus-project.js'
import { measureInterleaved, type Operation } from '../measure.js'
import { toResults, type WorkloadOutcome } from '../results.js'
import type { RowsSize } from './rows.js'

const contender = 'prisma-tenancy (citus)'
const baseline = 'plain-prisma (citus, explicit filter, BYPASSRLS)'
const bypass = { name: 'bench_citus_bypass', password: 'bench_citus_bypass' }
const projectsPerTenant = 100

/**
 * Citus, on its own coordinator and two workers: one tenant's routed
 * findUnique and findMany through prisma-tenancy (Citus mode: SET LOCAL and
 * the routing filter, row-level security on the workers) against the same
 * queries through plain Prisma with the tenant filter written out, as a
 * BYPASSRLS role (no policy), at one client. Skipped, with the reason, where
 * Citus is not installed.
 */
export async function runCitusWorkload(size: RowsSize, log: (line: string) => void): Promise<WorkloadOutcome> {
  const available = await citusAvailable()
  if (!available.available) return { results: [], unavailable: [{ contender, reason: `${available.reason} (bash ${citusInstallScript})` }] }
  log('  starting a Citus coordinator and two workers')
  const cluster = await startCitusCluster()
  const clients: Array<{ $disconnect(): Promise<void> }> = []
  try {
    const { url } = await deployCitusProject(cluster, 'bench_citus')
    const tenants = Math.min(size.tenants, 100)
    log(`  seeding ${tenants * projectsPerTenant} projects for ${tenants} tenants`)
    await withClient(url, async (client) => {
      await client.query(`CREATE ROLE ${bypass.name} LOGIN BYPASSRLS PASSWORD '${bypass.password}'`)
      await client.query(`GRANT SELECT ON "Project" TO ${bypass.name}`)
      await client.query(`INSERT INTO "Tenant" (id, name) SELECT 't' || n, 'tenant ' || n FROM generate_series(1, $1::int) n`, [tenants])
      await client.query(`INSERT INTO "Project" (id, tenant_id, name) SELECT 'p' || p, 't' || t, 'project ' || p FROM generate_series(1, $1::int) t, generate_series(1, $2::int) p`, [tenants, projectsPerTenant])
      await client.query('ANALYZE "Project"')
    })
    const tenant = `t${Math.ceil(tenants / 2)}`
    const app = new PrismaClient({ adapter: tenancyAdapter(appRoleUrl(url, citusAppRole)) }).$extends(tenancy())
    const plain = new PrismaClient({ adapter: new PrismaPg({ connectionString: appRoleUrl(url, bypass) }) })
    clients.push(app, plain)
    const scoped = app.forTenant(tenant)
    const id = (index: number) => `p${(index % projectsPerTenant) + 1}`
    const queries: Array<[string, Operation, Operation]> = [
      ['findUnique', (i) => scoped.project.findUnique({ where: { tenantId_id: { tenantId: tenant, id: id(i) } } }), (i) => plain.project.findUnique({ where: { tenantId_id: { tenantId: tenant, id: id(i) } } })],
      ['findMany-50', () => scoped.project.findMany({ orderBy: { id: 'asc' }, take: 50 }), () => plain.project.findMany({ where: { tenantId: tenant }, orderBy: { id: 'asc' }, take: 50 })],
    ]
    // Both see the same rows, or the comparison is void.
    const [mine, theirs] = await Promise.all([scoped.project.count(), plain.project.count({ where: { tenantId: tenant } })])
    if (mine !== projectsPerTenant || theirs !== projectsPerTenant) throw new Error(`counted ${mine} and ${theirs} projects for ${tenant}, not ${projectsPerTenant}`)
    const results = []
    for (const [name, tenancyOperation, plainOperation] of queries) {
      const workload = `citus (coordinator + 2 workers): routed ${name}`
      log(`  ${workload}`)
      const operations = new Map<string, Operation>([
        [baseline, plainOperation],
        [contender, tenancyOperation],
      ])
      const summaries = await measureInterleaved(operations, { clients: 1, rounds: size.rounds, warmupOps: size.warmupOps, opsPerClient: size.opsPerRound })
      results.push(...toResults(workload, 1, summaries, { name: baseline }, (c) => c === contender))
    }
    return { results, unavailable: [] }
  } finally {
    await Promise.allSettled(clients.map((client) => client.$disconnect()))
    await cluster.stop()
  }
}

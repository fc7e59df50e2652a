import { existsSync } from 'node:fs'
import { readReplicas } from '@prisma/extension-read-replicas'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { PrismaClient } from '../prisma/generated/client.js'
import { withClient } from '../src/database/admin.js'
import { runWithTenant, tenancy, tenancyAdapter, unscopedAdapter } from '../src/index.js'
import { createTestDatabase, recordWire, replicaAvailable, startStreamingReplica, type StreamingReplica, type TestDatabase, type WireRecorder } from '../src/testing/index.js'
import { refusal } from './support/refusal.js'

const server = inject('prismaTenancy')
const available = await replicaAvailable(server.adminUrl)
if (!available.available) console.warn(`test/replica.test.ts skipped (${server.kind} server): ${available.reason}`)

/** The composition the README documents: every replica client is a tenancy client too, and readReplicas goes on top. */
function composedClients(db: TestDatabase, replica: StreamingReplica) {
  const primaryAdapter = tenancyAdapter(db.appUrl)
  const replicaAdapter = tenancyAdapter(replica.url(db.appUrl))
  const wire = { primary: recordWire(primaryAdapter.pool), replica: recordWire(replicaAdapter.pool) }
  const replicaClient = new PrismaClient({ adapter: replicaAdapter }).$extends(tenancy())
  const prisma = new PrismaClient({ adapter: primaryAdapter }).$extends(tenancy()).$extends(readReplicas({ replicas: [replicaClient] }))
  return { prisma, replicaClient, wire }
}

const readsOf = (wire: WireRecorder) => wire.dataStatements().filter((text) => /^SELECT/i.test(text))

describe.skipIf(!available.available)('reads routed to a streaming replica by @prisma/extension-read-replicas, as the application role', () => {
  let db: TestDatabase
  let replica: StreamingReplica
  let clients: ReturnType<typeof composedClients>
  let admin: PrismaClient
  const ids = { acme: [] as string[], globex: [] as string[] }

  beforeAll(async () => {
    db = await createTestDatabase(server)
    admin = new PrismaClient({ adapter: unscopedAdapter(db.adminUrl) })
    await admin.tenant.createMany({ data: [{ id: 'acme', name: 'Acme' }, { id: 'globex', name: 'Globex' }] })
    replica = await startStreamingReplica(server.adminUrl)
    clients = composedClients(db, replica)
    const { prisma } = clients
    for (const name of ['Rocket', 'Anvil']) ids.acme.push((await prisma.forTenant('acme').project.create({ data: { name } })).id)
    ids.globex.push((await prisma.forTenant('globex').project.create({ data: { name: 'Doomsday' } })).id)
    await replica.waitForReplay()
    clients.wire.primary.clear()
    clients.wire.replica.clear()
  })
  afterAll(async () => {
    await Promise.allSettled([clients?.prisma.$disconnect(), admin?.$disconnect()])
    await replica?.stop()
    await db?.drop()
  })

  it("serves a forTenant read from the replica with only that tenant's rows", async () => {
    const { prisma, wire } = clients
    const projects = await prisma.forTenant('acme').project.findMany({ orderBy: { name: 'asc' } })
    expect(projects.map((project) => [project.name, project.tenantId])).toEqual([['Anvil', 'acme'], ['Rocket', 'acme']])
    expect(await prisma.forTenant('acme').project.findUnique({ where: { id: ids.globex[0]! } })).toBeNull()
    expect(await prisma.forTenant('globex').project.count()).toBe(1)
    expect(readsOf(wire.replica)).toHaveLength(3)
    expect(readsOf(wire.primary)).toEqual([])
  })

  it("serves a read inside runWithTenant from the replica, as that tenant", async () => {
    const { prisma, wire } = clients
    wire.replica.clear()
    const projects = await runWithTenant('globex', () => prisma.project.findMany())
    expect(projects.map((project) => project.tenantId)).toEqual(['globex'])
    expect(readsOf(wire.replica)).toHaveLength(1)
  })

  it('keeps same-tick findUnique calls of different tenants apart on the replica', async () => {
    const { prisma } = clients
    const [own, foreign, other] = await Promise.all([
      prisma.forTenant('acme').project.findUnique({ where: { id: ids.acme[0]! } }),
      prisma.forTenant('acme').project.findUnique({ where: { id: ids.globex[0]! } }),
      prisma.forTenant('globex').project.findUnique({ where: { id: ids.globex[0]! } }),
    ])
    expect([own?.tenantId, foreign, other?.tenantId]).toEqual(['acme', null, 'globex'])
  })

  it('answers from a server in recovery on the replica port: $replica() is a tenancy client', async () => {
    const { prisma } = clients
    const rows = await prisma.$replica().forTenant('acme').$queryRaw<Array<{ recovery: boolean; port: number; tenant: string }>>`SELECT pg_is_in_recovery() AS recovery, inet_server_port() AS port, current_setting('app.current_tenant') AS tenant`
    expect(rows).toEqual([{ recovery: true, port: replica.port, tenant: 'acme' }])
  })

  it('fails closed on the replica too: an unbound read is refused before any SQL is sent', async () => {
    const { prisma, replicaClient, wire } = clients
    wire.replica.clear()
    expect((await refusal(() => prisma.project.findMany())).code).toBe('TENANT_MISSING')
    expect((await refusal(() => replicaClient.project.findMany())).code).toBe('TENANT_MISSING')
    // $replica() and $primary() hand out the unbound clients: the binding does not follow them.
    expect((await refusal(() => prisma.forTenant('acme').$replica().project.findMany())).code).toBe('TENANT_MISSING')
    expect((await refusal(() => prisma.forTenant('acme').$primary().project.findMany())).code).toBe('TENANT_MISSING')
    expect(wire.replica.statements()).toEqual([])
  })

  it('has row-level security, FORCE and the policies on the replica, and filters a plain connection there', async () => {
    const catalog = `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, (SELECT count(*)::int FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY c.relname`
    const onPrimary = await withClient(db.adminUrl, async (client) => (await client.query(catalog)).rows)
    const onReplica = await withClient(replica.url(db.adminUrl), async (client) => (await client.query(catalog)).rows)
    expect(onReplica).toEqual(onPrimary)
    expect(onReplica).toContainEqual({ relname: 'Project', relrowsecurity: true, relforcerowsecurity: true, policies: expect.any(Number) })
    const seen = await withClient(replica.url(db.appUrl), async (client) => {
      const none = (await client.query<{ count: number }>('SELECT count(*)::int AS count FROM "Project"')).rows[0]?.count
      await client.query("SELECT set_config('app.current_tenant', 'globex', false)")
      const globex = (await client.query<{ tenant_id: string }>('SELECT tenant_id FROM "Project"')).rows.map((row) => row.tenant_id)
      return { none, globex }
    })
    expect(seen).toEqual({ none: 0, globex: ['globex'] })
  })

  it("writes through the composed client on the primary, as the caller's tenant", async () => {
    const { prisma, wire } = clients
    wire.primary.clear()
    wire.replica.clear()
    const created = await prisma.forTenant('globex').project.create({ data: { name: 'Laser' } })
    expect(created.tenantId).toBe('globex')
    expect(await admin.project.findUniqueOrThrow({ where: { id: created.id }, select: { tenantId: true } })).toEqual({ tenantId: 'globex' })
    expect(wire.primary.dataStatements().some((text) => /^INSERT/i.test(text))).toBe(true)
    expect(wire.replica.statements()).toEqual([])
    expect((await refusal(() => prisma.forTenant('acme').project.create({ data: { name: 'Sneaky', tenantId: 'globex' } }))).code).toBe('TENANT_MISMATCH')
    await replica.waitForReplay()
    expect((await prisma.forTenant('globex').project.findMany({ orderBy: { name: 'asc' } })).map((project) => project.name)).toEqual(['Doomsday', 'Laser'])
  })

  it('reads from the primary through $primary() and in interactive transactions', async () => {
    const { prisma, wire } = clients
    wire.primary.clear()
    wire.replica.clear()
    const rows = await prisma.$primary().forTenant('acme').$queryRaw<Array<{ recovery: boolean }>>`SELECT pg_is_in_recovery() AS recovery`
    expect(rows).toEqual([{ recovery: false }])
    expect(await prisma.$primary().forTenant('acme').project.count()).toBe(2)
    const inTransaction = await prisma.forTenant('acme').$transaction((tx) => tx.project.findMany())
    expect(inTransaction.map((project) => project.tenantId)).toEqual(['acme', 'acme'])
    expect(readsOf(wire.replica)).toEqual([])
    expect(readsOf(wire.primary).length).toBeGreaterThanOrEqual(3)
  })

  it('names the pg_hba.conf line to add for a server that refuses replication connections, and starts nothing', async () => {
    // The replica itself is such a server: its access rules have no replication line.
    const refused = await replicaAvailable(replica.adminUrl)
    expect(refused).toEqual({ available: false, reason: expect.stringContaining('Add the line `host replication postgres 127.0.0.1/32 trust`') })
    expect((await refusal(() => startStreamingReplica(replica.adminUrl))).code).toBe('DATABASE_SETUP_FAILED')
  })

  it('stops the replica and deletes its data directory', async () => {
    await clients.prisma.$disconnect()
    await replica.stop()
    expect(existsSync(replica.dataDir)).toBe(false)
    await expect(withClient(replica.adminUrl, (client) => client.query('SELECT 1'))).rejects.toMatchObject({ code: 'DATABASE_UNREACHABLE' })
  })
})

import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PrismaClient } from './fixtures/partitioned/prisma/generated/client.js'
import { withClient } from '../src/database/admin.js'
import { isTenancyError } from '../src/errors.js'
import { generatePolicies, tenancy, tenancyAdapter } from '../src/index.js'
import { migrateDeploy } from '../src/migrate/migrate.js'
import { recordWire, useTestDatabase } from '../src/testing/index.js'
import { createTenant } from '../src/tenants/create-tenant.js'
import { partitionTenant } from '../src/tenants/partition-tenant.js'
import { removeTenant } from '../src/tenants/remove-tenant.js'
import { verify } from '../src/verify/verify.js'
import { runCliCaptured } from './support/cli.js'
import { copyExampleProject } from './support/example-project.js'
import { deployPartitionedProject, partitionedFixture } from './support/partitioned-project.js'
import { inRolledBackTenant } from './support/tenants.js'

const db = await useTestDatabase()

/** The tenant's row count and an md5 over its rows, per table, read as the superuser. */
async function checksums(url: string, tenant: string): Promise<Record<string, { rows: number; md5: string | null }>> {
  return withClient(url, async (client) => {
    const result: Record<string, { rows: number; md5: string | null }> = {}
    for (const table of ['events', 'notes']) {
      const { rows } = await client.query<{ rows: number; md5: string | null }>(`SELECT count(*)::int AS rows, md5(string_agg(t::text, '|' ORDER BY t::text)) AS md5 FROM ${table} t WHERE tenant_id = $1`, [tenant])
      result[table] = rows[0]!
    }
    return result
  })
}

async function seed(url: string, tenant: string, events: number): Promise<void> {
  await withClient(url, async (client) => {
    await client.query(`INSERT INTO events (id, tenant_id, title) SELECT $1 || '-e' || g, $1, 'event ' || g FROM generate_series(1, $2::int) g`, [tenant, events])
    await client.query(`INSERT INTO notes (id, tenant_id, event_id, body) SELECT $1 || '-n' || g, $1, $1 || '-e' || g, 'note ' || g FROM generate_series(1, $2::int) g`, [tenant, events])
  })
}

async function partitionsOf(url: string, table: string): Promise<string[]> {
  return withClient(url, async (client) => (await client.query<{ name: string }>(`SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass ORDER BY 1`, [table])).rows.map((row) => row.name))
}

describe('generate for a model marked @tenancy.partitioned', () => {
  it('converts the table to LIST partitions by tenant with a protected DEFAULT partition (file snapshot)', async () => {
    const project = await copyExampleProject(partitionedFixture)
    const result = await generatePolicies({ schema: project.schema, migrations: project.migrations, appRole: 'tenancy_app', now: new Date('2026-12-02T12:00:00Z') })
    const script = await readFile(join(project.migrations, result.created!, 'migration.sql'), 'utf8')
    await expect(script).toMatchFileSnapshot('./__snapshots__/partitions-generate.sql')
    const again = await generatePolicies({ schema: project.schema, migrations: project.migrations, appRole: 'tenancy_app' })
    expect(again.created).toBeNull()
    expect(again.upToDate).toBe(true)
  })

  it('refuses a partitioned model whose primary key lacks the tenant field, naming the fix, and writes nothing', async () => {
    const project = await copyExampleProject(partitionedFixture)
    const schema = (await readFile(project.schema, 'utf8')).replace('  id       String @default(uuid())', '  id       String @id @default(uuid())').replace('  @@id([tenantId, id])\n', '  @@unique([tenantId, id])\n')
    await writeFile(project.schema, schema)
    const error = await generatePolicies({ schema: project.schema, migrations: project.migrations }).catch((cause: unknown) => cause)
    expect(isTenancyError(error, 'PARTITION_KEY_INVALID'), String(error)).toBe(true)
    expect((error as Error).message).toContain('In model Event, make the primary key @@id([tenantId, id]) (drop @id from the field id).')
    expect(await readdir(project.migrations)).toEqual(['20261201000000_init', 'migration_lock.toml'])
  })
})

describe('a deployed partitioned table', () => {
  let project: Awaited<ReturnType<typeof deployPartitionedProject>>
  let prisma: ReturnType<typeof clientFor>
  const clientFor = (url: string) => new PrismaClient({ adapter: tenancyAdapter(url) }).$extends(tenancy())

  beforeAll(async () => {
    project = await deployPartitionedProject(db, 'parts', (drop) => afterAll(drop))
    for (const tenant of ['acme', 'globex', 'initech']) await createTenant(tenant, { ...project.lifecycle, data: { name: tenant } })
    for (const tenant of ['acme', 'globex', 'initech']) await seed(project.url, tenant, 50)
    prisma = clientFor(project.appUrl)
  })
  afterAll(() => prisma?.$disconnect())

  it('tenant create gives each tenant its own partition, protected like the parent, and a rerun does nothing', async () => {
    expect(await partitionsOf(project.url, 'events')).toEqual(['events_p_acme', 'events_p_default', 'events_p_globex', 'events_p_initech'])
    expect(await createTenant('acme', { ...project.lifecycle, data: { name: 'acme' } })).toEqual({ tenant: 'acme', actions: [] })
    const rows = await withClient(project.url, async (client) => (await client.query<{ count: number }>(`SELECT count(*)::int AS count FROM events_p_acme`)).rows)
    expect(rows).toEqual([{ count: 50 }])
    const report = await verify({ databaseUrl: project.url, role: db.appRole.name, schema: project.schema })
    // (A warning remains: events.seq is a SERIAL, whose sequence counts all tenants' rows.)
    expect(report.results.filter((result) => result.status === 'fail')).toEqual([])
    expect(report.results.find((result) => result.check === 'partition-unprotected' && result.table === 'public.events')?.status).toBe('pass')
  })

  it('verify reports a tenant partition whose policies were dropped, or whose row-level security was disabled (partition-unprotected)', async () => {
    const broken = await deployPartitionedProject(db, 'broken')
    for (const tenant of ['acme', 'globex']) await createTenant(tenant, { ...broken.lifecycle, data: { name: tenant } })
    await withClient(broken.url, (client) => client.query('DROP POLICY tenancy_isolation ON events_p_acme; DROP POLICY tenancy_access ON events_p_acme; ALTER TABLE events_p_globex DISABLE ROW LEVEL SECURITY'))
    const report = await verify({ databaseUrl: broken.url, role: db.appRole.name, schema: broken.schema })
    const failed = report.results.filter((result) => result.check === 'partition-unprotected' && result.status === 'fail')
    expect(failed.map((result) => result.table)).toEqual(['public.events'])
    expect(failed[0]?.message).toContain('public.events_p_acme, public.events_p_globex')
  })

  it('a later generate that changes the policies (another setting) rewrites them on every tenant partition too', async () => {
    const changed = await deployPartitionedProject(db, 'resetting')
    await createTenant('acme', { ...changed.lifecycle, data: { name: 'acme' } })
    const result = await generatePolicies({ schema: changed.schema, migrations: changed.migrations, setting: 'app.other_tenant', appRole: db.appRole.name, now: new Date('2026-12-02T13:00:00Z') })
    expect(result.created).not.toBeNull()
    await migrateDeploy({ cwd: changed.dir, schema: changed.schema, migrations: changed.migrations, databaseUrl: changed.url })
    const policies = await withClient(changed.url, async (client) => (await client.query<{ table: string; qual: string }>(`SELECT tablename AS table, qual FROM pg_policies WHERE tablename LIKE 'events%' ORDER BY 1, policyname`)).rows)
    expect(policies.map((policy) => policy.table)).toEqual(['events', 'events', 'events_p_acme', 'events_p_acme', 'events_p_default', 'events_p_default'])
    expect(policies.every((policy) => policy.qual.includes('app.other_tenant'))).toBe(true)
  })

  it('isolates tenants through the extension: each sees and writes only its own rows', async () => {
    const acme = prisma.forTenant('acme')
    expect(await acme.event.count()).toBe(50)
    expect(new Set((await acme.event.findMany({ select: { tenantId: true } })).map((event) => event.tenantId))).toEqual(new Set(['acme']))
    await expect(acme.event.create({ data: { id: 'sneaky', tenantId: 'globex', title: 'x' } })).rejects.toThrow()
    expect(await prisma.forTenant('globex').event.count({ where: { id: 'sneaky' } })).toBe(0)
  })

  it('the app role cannot read a partition directly, and a partition queried by a role that may still sees only the tenant in the setting', async () => {
    const direct = await inRolledBackTenant(project.appUrl, 'acme', (client) => client.query('SELECT count(*) FROM events_p_globex').then(() => 'read', (error: { code?: string }) => error.code))
    expect(direct).toBe('42501')
    // A role granted the partition itself (as a careless GRANT ON ALL TABLES would): the partition's own policies apply.
    await withClient(project.url, (client) => client.query(`GRANT SELECT ON events_p_globex TO ${db.appRole.name}`))
    try {
      const counts = await inRolledBackTenant(project.appUrl, 'acme', async (client) => (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM events_p_globex')).rows[0]?.n)
      expect(counts).toBe(0)
    } finally {
      await withClient(project.url, (client) => client.query(`REVOKE SELECT ON events_p_globex FROM ${db.appRole.name}`))
    }
  })

  it("prunes to the tenant's partition through the extension: on the policy alone at executor start, and at plan time with the tenant filter", async () => {
    const acme = prisma.forTenant('acme')
    const plan = async (sql: string) => (await acme.$queryRawUnsafe<{ 'QUERY PLAN': string }[]>(`EXPLAIN (COSTS OFF) ${sql}`)).map((row) => row['QUERY PLAN']).join('\n')
    const policyOnly = await plan('SELECT * FROM events')
    expect(policyOnly).toMatch(/Subplans Removed: 3/)
    expect(policyOnly).toContain('events_p_acme')
    const filtered = await plan(`SELECT * FROM events WHERE tenant_id = 'acme'`)
    expect(filtered).toContain('events_p_acme')
    expect(filtered).not.toMatch(/events_p_(globex|initech|default)/)
  })

  it("keeps planner estimates per tenant with the tenant filter: a title only another tenant has is estimated from the tenant's own partition", async () => {
    await withClient(project.url, (client) => client.query(`INSERT INTO events (id, tenant_id, title) SELECT 'globex-x' || g, 'globex', 'only globex' FROM generate_series(1, 40) g; ANALYZE events`))
    try {
      const estimate = async (tenant: string, sql: string) => {
        const rows = await prisma.forTenant(tenant).$queryRawUnsafe<{ 'QUERY PLAN': string }[]>(`EXPLAIN ${sql}`)
        return Number(/rows=(\d+)/.exec(rows[0]!['QUERY PLAN'])?.[1])
      }
      const filtered = (tenant: string) => `SELECT * FROM events WHERE tenant_id = '${tenant}' AND title = 'only globex'`
      expect(await estimate('globex', filtered('globex'))).toBeGreaterThanOrEqual(30)
      expect(await estimate('acme', filtered('acme'))).toBe(1)
    } finally {
      await withClient(project.url, (client) => client.query(`DELETE FROM events WHERE id LIKE 'globex-x%'; ANALYZE events`))
    }
  })

  it("with tenancy({ tenantFilter: true }) every model query names the tenant, so PostgreSQL prunes when planning, and isolation holds", async () => {
    const adapter = tenancyAdapter(project.appUrl)
    const wire = recordWire(adapter.pool)
    const filtered = new PrismaClient({ adapter }).$extends(tenancy({ tenantFilter: true }))
    try {
      const acme = filtered.forTenant('acme')
      expect(await acme.event.count()).toBe(50)
      expect(await acme.event.findMany({ where: { tenantId: 'globex' } })).toEqual([])
      const created = await acme.event.create({ data: { id: 'filtered', title: 'x' } })
      expect(created.tenantId).toBe('acme')
      await acme.event.delete({ where: { tenantId_id: { tenantId: 'acme', id: 'filtered' } } })
      const reads = wire.dataStatements().filter((statement) => statement.startsWith('SELECT'))
      expect(reads.length).toBeGreaterThan(0)
      expect(reads.every((statement) => /"tenant_id" = \$\d/.test(statement))).toBe(true)
      // The same filter with the id as a literal, which is what the planner sees for a parameter it is given: only the tenant's partition is planned.
      const plan = await acme.$queryRawUnsafe<{ 'QUERY PLAN': string }[]>(`EXPLAIN (COSTS OFF) SELECT count(*) FROM events WHERE tenant_id = $1`, 'acme')
      expect(plan.map((row) => row['QUERY PLAN']).join('\n')).not.toMatch(/events_p_(globex|initech|default)|Subplans Removed/)
    } finally {
      await filtered.$disconnect()
    }
  })

  it("tenant remove drops the tenant's partition, deletes its other rows, and leaves every other tenant's rows as they were", async () => {
    const before = { acme: await checksums(project.url, 'acme'), globex: await checksums(project.url, 'globex') }
    const result = await removeTenant('initech', { ...project.lifecycle, yes: true })
    expect(result.tables).toEqual([
      { table: 'public.notes', deleted: 50 },
      { table: 'public.events', deleted: 50, droppedPartition: 'public.events_p_initech' },
    ])
    expect(result.remaining).toEqual({ 'public.events': 0, 'public.notes': 0 })
    expect(await partitionsOf(project.url, 'events')).toEqual(['events_p_acme', 'events_p_default', 'events_p_globex'])
    expect({ acme: await checksums(project.url, 'acme'), globex: await checksums(project.url, 'globex') }).toEqual(before)
    expect(before.acme.events!.rows).toBe(50)
  })

  describe('a tenant whose rows sit in the DEFAULT partition (registered before the table was partitioned)', () => {
    beforeAll(async () => {
      await withClient(project.url, (client) => client.query(`INSERT INTO "Tenant" (id, name) VALUES ('umbrella', 'Umbrella')`))
      await seed(project.url, 'umbrella', 40)
    })

    it('tenant create refuses its partition, naming tenant partition, and changes nothing', async () => {
      const error = await createTenant('umbrella', { ...project.lifecycle, data: { name: 'Umbrella' } }).catch((cause: unknown) => cause)
      expect(isTenancyError(error, 'PARTITION_ROWS_IN_DEFAULT')).toBe(true)
      expect((error as Error).message).toContain('prisma-tenancy tenant partition umbrella')
      expect(await partitionsOf(project.url, 'events')).not.toContain('events_p_umbrella')
    })

    it('tenant partition moves its rows into a partition of its own, keeping every row (referencing rows too), and a rerun does nothing', async () => {
      const others = { acme: await checksums(project.url, 'acme'), globex: await checksums(project.url, 'globex') }
      const before = await checksums(project.url, 'umbrella')
      const result = await partitionTenant('umbrella', project.lifecycle)
      expect(result.tables).toEqual([{ table: 'public.events', partition: 'public.events_p_umbrella', action: 'moved', moved: 40, writersBlockedMs: expect.any(Number) }])
      expect(await checksums(project.url, 'umbrella')).toEqual(before)
      expect(before.notes!.rows).toBe(40)
      expect({ acme: await checksums(project.url, 'acme'), globex: await checksums(project.url, 'globex') }).toEqual(others)
      const placed = await withClient(project.url, async (client) => ({
        own: (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM events_p_umbrella')).rows[0]?.n,
        inDefault: (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM events_p_default WHERE tenant_id = 'umbrella'`)).rows[0]?.n,
        foreignKeyValid: (await client.query<{ valid: boolean }>(`SELECT convalidated AS valid FROM pg_constraint WHERE conname = 'notes_tenant_id_event_id_fkey' AND conrelid = 'notes'::regclass`)).rows[0]?.valid,
        boundCheck: (await client.query(`SELECT 1 FROM pg_constraint WHERE conrelid = 'events_p_umbrella'::regclass AND contype = 'c'`)).rowCount,
      }))
      expect(placed).toEqual({ own: 40, inDefault: 0, foreignKeyValid: true, boundCheck: 0 })
      expect((await partitionTenant('umbrella', project.lifecycle)).tables).toEqual([{ table: 'public.events', partition: 'public.events_p_umbrella', action: 'exists', moved: 0, writersBlockedMs: 0 }])
      const verified = await verify({ databaseUrl: project.url, role: db.appRole.name, schema: project.schema })
      expect(verified.results.filter((entry) => entry.status === 'fail')).toEqual([])
      expect(await prisma.forTenant('umbrella').event.count()).toBe(40)
    })

    it('tenant partition as an admin that is BYPASSRLS but no superuser sets the referencing foreign keys aside and validates them again', async () => {
      const moving = await deployPartitionedProject(db, 'owner')
      const owner = `parts_owner_${db.name.slice(-8)}`
      await withClient(moving.url, async (client) => {
        // A password: the embedded server asks for one (the machine's server trusts any).
        await client.query(`CREATE ROLE ${owner} LOGIN BYPASSRLS PASSWORD '${owner}'`)
        for (const name of ['"Tenant"', 'events', 'events_p_default', 'notes', 'events_seq_seq']) await client.query(`ALTER TABLE ${name} OWNER TO ${owner}`)
        await client.query(`GRANT CREATE ON SCHEMA public TO ${owner}`)
        await client.query(`INSERT INTO "Tenant" (id, name) VALUES ('umbrella', 'Umbrella')`)
      })
      try {
        await seed(moving.url, 'umbrella', 30)
        const before = await checksums(moving.url, 'umbrella')
        const ownerUrl = new URL(moving.url)
        ownerUrl.username = owner
        ownerUrl.password = owner
        const result = await partitionTenant('umbrella', { ...moving.lifecycle, databaseUrl: ownerUrl.toString() })
        expect(result.tables).toMatchObject([{ action: 'moved', moved: 30 }])
        expect(await checksums(moving.url, 'umbrella')).toEqual(before)
        const valid = await withClient(moving.url, async (client) => (await client.query(`SELECT convalidated AS valid FROM pg_constraint WHERE conname = 'notes_tenant_id_event_id_fkey' AND conrelid = 'notes'::regclass`)).rows)
        expect(valid).toEqual([{ valid: true }])
      } finally {
        await withClient(moving.url, (client) => client.query(`DROP OWNED BY ${owner}`))
        await withClient(db.adminUrl, (client) => client.query(`DROP ROLE IF EXISTS ${owner}`)).catch(() => undefined)
      }
    })

    it('the CLI runs tenant partition with --json, and refuses an unknown tenant (exit 2) changing nothing', async () => {
      const moved = await runCliCaptured(['tenant', 'partition', 'umbrella', '--json', '--database-url', project.url, '--schema', project.schema])
      expect(moved.code).toBe(0)
      expect(JSON.parse(moved.stdout)).toMatchObject({ tenant: 'umbrella', tables: [{ action: 'exists' }] })
      const unknown = await runCliCaptured(['tenant', 'partition', 'nobody', '--database-url', project.url, '--schema', project.schema])
      expect(unknown.code).toBe(2)
      expect(unknown.stderr).toContain('error TENANT_UNKNOWN')
      const invalid = await runCliCaptured(['tenant', 'partition', "bad'id", '--database-url', project.url, '--schema', project.schema])
      expect(invalid.code).toBe(2)
      expect(invalid.stderr).toContain('error TENANT_INVALID')
      expect(await partitionsOf(project.url, 'events')).toEqual(['events_p_acme', 'events_p_default', 'events_p_globex', 'events_p_umbrella'])
    })
  })
})

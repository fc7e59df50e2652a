import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PrismaClient } from '../prisma/generated/client.js'
import { runWithTenant, tenancy, tenancyAdapter, unscopedAdapter } from '../src/index.js'
import { useTestDatabase } from '../src/testing/index.js'
import { findPgBouncer, startPgBouncer, type PgBouncer } from './support/pgbouncer.js'
import { allowTemporaryTables } from './support/temporary-tables.js'

const binary = findPgBouncer()
if (binary === undefined) {
  console.warn('test/pgbouncer.test.ts skipped: the pgbouncer executable is not installed (Debian: apt-get install -y pgbouncer).')
}

const db = await useTestDatabase()
await allowTemporaryTables(db.adminUrl)

describe.skipIf(binary === undefined)('through PgBouncer in transaction mode (2 server connections)', () => {
  let bouncer: PgBouncer
  let prisma: ReturnType<typeof tenantClient>
  let admin: PrismaClient
  const tenants = ['acme', 'globex', 'initech', 'umbrella']

  function tenantClient(url: string) {
    return new PrismaClient({ adapter: tenancyAdapter(url) }).$extends(tenancy())
  }

  async function tenantSettingsOnServerConnections(): Promise<Array<string | null | undefined>> {
    // Two plain clients in open transactions pin both of PgBouncer's server connections at once.
    const clients = [new pg.Client({ connectionString: bouncer.route(db.appUrl) }), new pg.Client({ connectionString: bouncer.route(db.appUrl) })]
    try {
      await Promise.all(clients.map((client) => client.connect()))
      await Promise.all(clients.map((client) => client.query('BEGIN')))
      const settings = await Promise.all(
        clients.map(async (client) => {
          const result = await client.query<{ tenant: string | null; pid: number }>("SELECT current_setting('app.current_tenant', true) AS tenant, pg_backend_pid() AS pid")
          return result.rows[0]
        }),
      )
      expect(new Set(settings.map((row) => row?.pid)).size).toBe(2)
      await Promise.all(clients.map((client) => client.query('COMMIT')))
      return settings.map((row) => row?.tenant)
    } finally {
      await Promise.all(clients.map((client) => client.end().catch(() => undefined)))
    }
  }

  beforeAll(async () => {
    bouncer = await startPgBouncer(binary ?? 'pgbouncer', db.appUrl, [db.appRole])
    prisma = tenantClient(bouncer.route(db.appUrl))
    admin = new PrismaClient({ adapter: unscopedAdapter(db.adminUrl) })
    await admin.tenant.createMany({ data: tenants.map((id) => ({ id, name: id })) })
  })

  afterAll(async () => {
    await Promise.all([prisma?.$disconnect(), admin?.$disconnect()])
    await bouncer?.stop()
  })

  it('keeps every tenant to its own rows in plain operations, batch and interactive transactions', async () => {
    await Promise.all(
      tenants.map(async (tenant) => {
        const client = prisma.forTenant(tenant)
        await client.project.create({ data: { name: `${tenant} project`, tasks: { create: [{ title: `${tenant} task` }] } } })
        await client.$transaction([client.task.create({ data: { title: `${tenant} batch`, projectId: (await client.project.findFirstOrThrow()).id } })])
        await client.$transaction(async (tx) => {
          const project = await tx.project.findFirstOrThrow()
          await tx.task.create({ data: { title: `${tenant} interactive`, projectId: project.id } })
        })
      }),
    )
    for (const tenant of tenants) {
      const tasks = await prisma.forTenant(tenant).task.findMany({ orderBy: { title: 'asc' } })
      expect(tasks.map((task) => task.title)).toEqual([`${tenant} batch`, `${tenant} interactive`, `${tenant} task`])
      expect(await prisma.forTenant(tenant).project.count()).toBe(1)
    }
    const other = await admin.project.findFirstOrThrow({ where: { tenantId: 'globex' } })
    expect(await prisma.forTenant('acme').project.findUnique({ where: { id: other.id } })).toBeNull()
    expect((await prisma.forTenant('acme').project.updateMany({ where: { id: other.id }, data: { name: 'pwned' } })).count).toBe(0)
  })

  it("leaves no tenant setting on PgBouncer's server connections after interleaved work of many tenants", async () => {
    const seen = await Promise.all(
      Array.from({ length: 40 }, async (_, index) => {
        const tenant = tenants[index % tenants.length] ?? 'acme'
        const read = (client: { $queryRawUnsafe<T>(query: string): PromiseLike<T> }) =>
          client.$queryRawUnsafe<Array<{ tenant: string }>>("SELECT current_setting('app.current_tenant', true) AS tenant").then((rows) => rows[0]?.tenant)
        if (index % 3 === 0) return [tenant, await prisma.forTenant(tenant).$transaction(async (tx) => read(tx))]
        if (index % 3 === 1) return [tenant, await runWithTenant(tenant, () => read(prisma))]
        return [tenant, await read(prisma.forTenant(tenant))]
      }),
    )
    for (const [expected, actual] of seen) expect(actual).toBe(expected)
    const settings = await tenantSettingsOnServerConnections()
    expect(settings.filter((setting) => setting !== null && setting !== '')).toEqual([])
  })
})

describe.skipIf(binary === undefined)('raw SQL through PgBouncer in transaction mode', () => {
  const started: Array<{ stop(): Promise<void> }> = []
  const clients: Array<{ $disconnect(): Promise<void> }> = []
  let admin: PrismaClient

  async function through(poolSize: number, settings: string[] = []) {
    const bouncer = await startPgBouncer(binary ?? 'pgbouncer', db.appUrl, [db.appRole], poolSize, settings)
    started.push(bouncer)
    const client = new PrismaClient({ adapter: tenancyAdapter({ connectionString: bouncer.route(db.appUrl), max: 2 }) }).$extends(tenancy())
    clients.push(client)
    return client
  }

  beforeAll(async () => {
    admin = new PrismaClient({ adapter: unscopedAdapter(db.adminUrl) })
    await admin.tenant.createMany({ data: ['t_alpha', 't_beta'].map((id) => ({ id, name: id })), skipDuplicates: true })
  })
  afterAll(async () => {
    await Promise.all([...clients.map((client) => client.$disconnect()), admin?.$disconnect()])
    for (const bouncer of started) await bouncer.stop()
  })

  it("refuses a hidden BEGIN, and another tenant's acknowledged write survives a hidden ROLLBACK", async () => {
    const prisma = await through(1)
    for (const begin of ['/* */ BEGIN', '; BEGIN']) {
      await expect(prisma.forTenant('t_beta').$executeRawUnsafe(begin)).rejects.toMatchObject({ code: 'RAW_TRANSACTION_CONTROL' })
      const row = await prisma.forTenant('t_alpha').project.create({ data: { name: 'acknowledged through pgbouncer' } })
      await prisma.forTenant('t_beta').$executeRawUnsafe('; ROLLBACK').catch(() => undefined)
      expect(await admin.project.count({ where: { id: row.id } })).toBe(1)
    }
  })

  it("keeps a temp table from the next tenant on one server connection: the driver's DISCARD ALL reaches it", async () => {
    const prisma = await through(1)
    await prisma.forTenant('t_alpha').$executeRawUnsafe('CREATE TEMP TABLE report_one AS SELECT name FROM "Project"')
    await expect(prisma.forTenant('t_beta').$queryRawUnsafe('SELECT * FROM report_one')).rejects.toThrow(/report_one/)
  })

  it('keeps temp tables from other tenants on several server connections with server_reset_query_always = 1', async () => {
    // With several server connections the driver's DISCARD ALL runs on whichever one PgBouncer
    // picks, not necessarily the one the raw SQL ran on; PgBouncer's own reset after every
    // transaction (server_reset_query_always) is what guarantees it there.
    const prisma = await through(2, ['server_reset_query = DISCARD ALL', 'server_reset_query_always = 1'])
    const reads = await Promise.allSettled(
      Array.from({ length: 10 }, async (_, index) => {
        await prisma.forTenant('t_alpha').$executeRawUnsafe(`CREATE TEMP TABLE report_${index} AS SELECT name FROM "Project"`)
        return prisma.forTenant('t_beta').$queryRawUnsafe(`SELECT * FROM report_${index}`)
      }),
    )
    expect(reads.filter((read) => read.status === 'fulfilled')).toEqual([])
  })
})

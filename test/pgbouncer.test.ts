import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PrismaClient } from '../prisma/generated/client.js'
import { runWithTenant, tenancy, tenancyAdapter, unscopedAdapter } from '../src/index.js'
import { useTestDatabase } from '../src/testing/index.js'
import { findPgBouncer, startPgBouncer, type PgBouncer } from './support/pgbouncer.js'

const binary = findPgBouncer()
if (binary === undefined) {
  console.warn('test/pgbouncer.test.ts skipped: the pgbouncer executable is not installed (Debian: apt-get install -y pgbouncer).')
}

const db = await useTestDatabase()

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

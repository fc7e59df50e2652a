import pg from 'pg'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { PrismaClient } from '../prisma/generated/client.js'
import { tenancy, tenancyAdapter, unscopedAdapter } from '../src/index.js'
import { recordWire, statementsWithoutTenant, useTestDatabase } from '../src/testing/index.js'
import { findPgBouncer, startPgBouncer, type PgBouncer } from './support/pgbouncer.js'
import { refusal } from './support/refusal.js'

const db = await useTestDatabase()
const admin = new PrismaClient({ adapter: unscopedAdapter(db.adminUrl) })
const open: Array<{ $disconnect(): Promise<void> }> = [admin]
const tenants = ['p_acme', 'p_globex']

/** A tenant client on the fast path over `max` connections, with its wire recorded and its Parse messages of the named statement counted per connection. */
function preparedClient(url: string, max = 1) {
  const adapter = tenancyAdapter({ connectionString: url, max }, { preparedTenantStatement: true })
  const namedParses: number[] = []
  adapter.pool.on('connect', (client) => {
    const index = namedParses.push(0) - 1
    const connection = (client as unknown as { connection: { parse(message: { name?: string }): void } }).connection
    const parse = connection.parse.bind(connection)
    connection.parse = (message) => {
      if (message.name) namedParses[index] = (namedParses[index] ?? 0) + 1
      parse(message)
    }
  })
  const wire = recordWire(adapter.pool)
  const client = new PrismaClient({ adapter }).$extends(tenancy())
  open.push(client)
  return { client, wire, namedParses }
}

type Client = ReturnType<typeof preparedClient>['client']

/** Each tenant's project names, read through `client` as that tenant: only its own, and never none (no tenant set would read none). */
async function expectOwnProjects(client: Client): Promise<void> {
  for (const tenant of tenants) {
    expect((await client.forTenant(tenant).project.findMany({ orderBy: { name: 'asc' } })).map((project) => project.name)).toEqual([`${tenant} project`])
  }
}

beforeAll(async () => {
  await admin.tenant.createMany({ data: tenants.map((id) => ({ id, name: id })) })
  await admin.project.createMany({ data: tenants.map((tenant) => ({ tenantId: tenant, name: `${tenant} project` })) })
})
afterAll(async () => {
  await Promise.all(open.map((client) => client.$disconnect()))
})

describe('the prepared set_config fast path on a direct connection', () => {
  it('parses set_config once per connection, then only binds it, and every statement runs with its tenant', async () => {
    const { client, wire, namedParses } = preparedClient(db.appUrl, 2)
    for (let round = 0; round < 5; round += 1) {
      await expectOwnProjects(client)
      const acme = client.forTenant('p_acme')
      await acme.$transaction(async (tx) => tx.project.count())
      await acme.$transaction([acme.project.count(), acme.project.findFirst()])
    }
    // Concurrent requests of both tenants over the same two connections, each alone, in a batch or in a transaction.
    const seen = await Promise.all(
      Array.from({ length: 40 }, async (_, index) => {
        const tenant = tenants[index % tenants.length] ?? 'p_acme'
        const scoped = client.forTenant(tenant)
        const read = index % 3 === 0 ? scoped.project.findMany() : index % 3 === 1 ? scoped.$transaction(async (tx) => tx.project.findMany()) : scoped.$transaction([scoped.project.findMany()]).then(([rows]) => rows)
        return [tenant, (await read).map((project) => project.tenantId)]
      }),
    )
    for (const [tenant, owners] of seen) expect(owners).toEqual([tenant])
    expect(namedParses).toEqual([1, 1])
    expect(wire.roundTrips.length).toBeGreaterThan(20)
    expect(statementsWithoutTenant(wire.roundTrips)).toEqual([])
  })

  it('sets the tenant again after raw SQL deallocated the prepared statement, in and outside a transaction', async () => {
    const { client, wire } = preparedClient(db.appUrl)
    const acme = client.forTenant('p_acme')
    await expectOwnProjects(client)
    const inside = await acme.$transaction(async (tx) => {
      await tx.$executeRawUnsafe('DEALLOCATE prisma_tenancy_set_tenant')
      return (await tx.project.findMany()).map((project) => project.name)
    })
    expect(inside).toEqual(['p_acme project'])
    await expectOwnProjects(client)
    await acme.$executeRawUnsafe('DEALLOCATE ALL')
    await expectOwnProjects(client)
    expect(statementsWithoutTenant(wire.roundTrips)).toEqual([])
  })

  it('refuses options that are not what they should be with CONFIG_INVALID', async () => {
    expect((await refusal(() => tenancyAdapter(db.appUrl, { preparedTenantStatement: 'yes' as never }))).code).toBe('CONFIG_INVALID')
    expect((await refusal(() => tenancyAdapter(db.appUrl, { citus: 1 as never }))).code).toBe('CONFIG_INVALID')
  })
})

const binary = findPgBouncer()
if (binary === undefined) {
  console.warn('test/prepared-tenant-statement.test.ts: PgBouncer cases skipped: the pgbouncer executable is not installed (Debian: apt-get install -y pgbouncer).')
}

describe.skipIf(binary === undefined)('the prepared set_config fast path behind PgBouncer 1.18 in transaction mode, which keeps no prepared statements per client', () => {
  const started: PgBouncer[] = []
  const warnings: string[] = []
  const onWarning = (warning: Error & { code?: string }) => {
    if (warning.code === 'PRISMA_TENANCY_PREPARED_STATEMENT_LOST') warnings.push(warning.message)
  }

  async function through(settings: string[] = []): Promise<string> {
    const bouncer = await startPgBouncer(binary ?? 'pgbouncer', db.appUrl, [db.appRole], 1, settings)
    started.push(bouncer)
    return bouncer.route(db.appUrl)
  }
  // PgBouncer resets each server connection after every transaction: the statement is gone whenever the client comes back.
  const resetAfterEveryTransaction = ['server_reset_query = DISCARD ALL', 'server_reset_query_always = 1']

  beforeAll(() => {
    process.on('warning', onWarning)
  })
  beforeEach(() => {
    warnings.length = 0
  })
  afterAll(async () => {
    process.off('warning', onWarning)
    for (const bouncer of started) await bouncer.stop()
  })

  it('falls back to unnamed set_config when another client already parsed the name on the shared server connection (42P05)', async () => {
    const url = await through()
    const first = preparedClient(url)
    const second = preparedClient(url)
    await expectOwnProjects(first.client)
    await expectOwnProjects(second.client)
    await expectOwnProjects(first.client)
    expect(statementsWithoutTenant([...first.wire.roundTrips, ...second.wire.roundTrips])).toEqual([])
    expect(second.namedParses).toEqual([1])
    expect(warnings).toHaveLength(1)
  })

  it('sends a statement again with unnamed set_config when its server connection lost the name (26000), outside and at the start of a transaction', async () => {
    const url = await through(resetAfterEveryTransaction)
    const implicit = preparedClient(url)
    await expectOwnProjects(implicit.client)
    await expectOwnProjects(implicit.client)

    expect(warnings).toHaveLength(1)

    const opening = preparedClient(url)
    expect(await opening.client.forTenant('p_globex').project.count()).toBe(1)
    const names = await opening.client.forTenant('p_globex').$transaction(async (tx) => (await tx.project.findMany()).map((project) => project.name), { isolationLevel: 'Serializable' })
    expect(names).toEqual(['p_globex project'])
    await expectOwnProjects(opening.client)
    expect(statementsWithoutTenant([...implicit.wire.roundTrips, ...opening.wire.roundTrips])).toEqual([])
    expect(warnings).toHaveLength(2)
  })

  it('withholds the result of a statement whose name another client re-prepared with other SQL on the shared server connection, with PREPARED_STATEMENT_LOST', async () => {
    const url = await through()
    const { client } = preparedClient(url)
    const acme = client.forTenant('p_acme')
    expect(await acme.project.count()).toBe(1)
    const other = new pg.Client({ connectionString: url })
    await other.connect()
    await other.query('DEALLOCATE prisma_tenancy_set_tenant')
    await other.query('PREPARE prisma_tenancy_set_tenant(text, text) AS SELECT $1, $2')
    await other.end()
    expect((await refusal(() => acme.project.findMany())).code).toBe('PREPARED_STATEMENT_LOST')
    await expectOwnProjects(client)
  })

  it('fails a statement that lost the name in a transaction where statements ran already with PREPARED_STATEMENT_LOST, and the next transaction runs', async () => {
    const url = await through(resetAfterEveryTransaction)
    const { client, wire } = preparedClient(url)
    const acme = client.forTenant('p_acme')
    // Parses the name; PgBouncer's reset after this transaction removes it again.
    expect(await acme.project.count()).toBe(1)
    // The savepoint of the nested transaction runs before the first statement that needs the tenant.
    const lost = await refusal(() => acme.$transaction(async (tx) => tx.$transaction(async (inner) => inner.project.findMany())))
    expect(lost.code).toBe('PREPARED_STATEMENT_LOST')
    expect(lost.message).toContain('preparedTenantStatement')
    expect(await acme.$transaction(async (tx) => (await tx.project.findMany()).map((project) => project.name))).toEqual(['p_acme project'])
    expect(statementsWithoutTenant(wire.roundTrips)).toEqual([])
  })
})

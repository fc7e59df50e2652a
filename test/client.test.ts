import { PrismaPg } from '@prisma/adapter-pg'
import pg from 'pg'
import { beforeAll, describe, expect, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import { PrismaClient } from '../prisma/generated/client.js'
import { currentTenantId, runWithTenant, tenancy, tenancyAdapter } from '../src/index.js'
import { transactionControl } from '../src/client/tenant-pg-client.js'
import { useTenancy } from '../src/testing/index.js'
import { refusal } from './support/refusal.js'

const { database: db, adapter, wire, client: prisma, admin } = await useTenancy({
  client: (tenancyPg) => new PrismaClient({ adapter: tenancyPg }).$extends(tenancy()),
  admin: (unscoped) => new PrismaClient({ adapter: unscoped }),
})
const acme = prisma.forTenant('acme')
const globex = prisma.forTenant('globex')

let acmeProjects: string[] = []
let globexProject = ''

beforeAll(async () => {
  await admin.tenant.createMany({ data: [{ id: 'acme', name: 'Acme' }, { id: 'globex', name: 'Globex' }, ...tenantIds(10).map((id) => ({ id, name: id }))] })
  for (const name of ['Rocket', 'Magnet', 'Anvil']) {
    const project = await acme.project.create({ data: { name, tasks: { create: [{ title: `Build ${name}` }] } } })
    acmeProjects.push(project.id)
  }
  globexProject = (await globex.project.create({ data: { name: 'Doomsday', tasks: { create: [{ title: 'Plan' }] } } })).id
})

function tenantIds(count: number): string[] {
  return Array.from({ length: count }, (_, index) => `tenant-${index}`)
}

interface RawClient {
  $queryRawUnsafe<T>(query: string, ...values: unknown[]): PromiseLike<T>
}

/** The tenant setting as the database sees it inside the client's operation. */
async function currentTenant(client: RawClient): Promise<string | null | undefined> {
  const rows = await client.$queryRawUnsafe<Array<{ tenant: string | null }>>("SELECT current_setting('app.current_tenant', true) AS tenant")
  return rows[0]?.tenant
}

describe('a client bound with forTenant', () => {
  it('has the type of the client it came from, and is reused for the same tenant', () => {
    expectTypeOf(acme).toEqualTypeOf(prisma)
    expectTypeOf(acme.project.findFirstOrThrow).returns.resolves.toHaveProperty('tenantId').toEqualTypeOf<string>()
    expect(prisma.forTenant('acme')).toBe(acme)
    expect(prisma.forTenant('globex')).not.toBe(acme)
  })

  it("reads only its tenant's rows", async () => {
    const projects = await acme.project.findMany({ include: { tasks: true } })
    expect(projects.map((project) => project.tenantId)).toEqual(['acme', 'acme', 'acme'])
    expect(projects.flatMap((project) => project.tasks.map((task) => task.tenantId))).toEqual(['acme', 'acme', 'acme'])
    expect(await globex.project.count()).toBe(1)
  })

  it("finds nothing when asking for another tenant's row by id", async () => {
    expect(await acme.project.findUnique({ where: { id: globexProject } })).toBeNull()
    expect(await acme.project.findFirst({ where: { name: 'Doomsday' } })).toBeNull()
  })

  it("cannot update or delete another tenant's rows", async () => {
    expect((await acme.project.updateMany({ where: { id: globexProject }, data: { name: 'pwned' } })).count).toBe(0)
    expect((await acme.task.deleteMany({ where: { projectId: globexProject } })).count).toBe(0)
    expect(await acme.$executeRaw`UPDATE "Project" SET name = 'pwned' WHERE id = ${globexProject}`).toBe(0)
    const untouched = await admin.project.findUniqueOrThrow({ where: { id: globexProject }, include: { tasks: true } })
    expect(untouched.name).toBe('Doomsday')
    expect(untouched.tasks).toHaveLength(1)
  })

  it("follows relations with Prisma's fluent calls as its tenant", async () => {
    const tasks = await acme.project.findUniqueOrThrow({ where: { id: acmeProjects[0] } }).tasks()
    expect(tasks.map((task) => task.tenantId)).toEqual(['acme'])
    expect(await globex.project.findUnique({ where: { id: acmeProjects[0] } }).tasks()).toBeNull()
  })

  it('creates rows for its tenant without a tenantId, through the column default', async () => {
    const project = await globex.project.create({ data: { name: 'Freeze ray' } })
    expect(project.tenantId).toBe('globex')
    await globex.project.delete({ where: { id: project.id } })
  })

  it("is refused by the database when creating a row with another tenant's id: TENANT_MISMATCH with the cause attached", async () => {
    const error = await refusal(() => acme.project.create({ data: { name: 'Sneaky', tenantId: 'globex' } }))
    expect(error.code).toBe('TENANT_MISMATCH')
    expect(String((error.cause as Error).message)).toContain('row-level security')
    expect(await admin.project.count({ where: { name: 'Sneaky' } })).toBe(0)
  })

  it('runs raw queries, safe and unsafe, as its tenant', async () => {
    expect(await currentTenant(acme)).toBe('acme')
    expect(await acme.$queryRawUnsafe<Array<{ n: bigint }>>('SELECT count(*) AS n FROM "Project"')).toEqual([{ n: 3n }])
    expect(await globex.$executeRawUnsafe('UPDATE "Project" SET name = name WHERE name <> $1', 'none')).toBe(1)
  })

  it('runs a batch $transaction as one transaction that sets the tenant once', async () => {
    wire.clear()
    const [count, first, second] = await prisma.$transaction([
      acme.project.count(),
      acme.$queryRaw<Array<{ tx: bigint; tenant: string }>>`SELECT txid_current() AS tx, current_setting('app.current_tenant') AS tenant`,
      acme.$queryRaw<Array<{ tx: bigint; tenant: string }>>`SELECT txid_current() AS tx, current_setting('app.current_tenant') AS tenant`,
    ])
    expect(count).toBe(3)
    expect(first[0]?.tenant).toBe('acme')
    expect(second[0]).toEqual(first[0])
    // Raw SQL may change the setting, so the driver sets it again after each raw statement (#12).
    wire.clear()
    await prisma.$transaction([acme.project.count(), acme.task.count(), acme.project.findMany()])
    expect(wire.statements().filter((text) => text.startsWith('SELECT set_config('))).toHaveLength(1)
  })

  it('refuses a batch $transaction in which one operation has no tenant, and commits none of it', async () => {
    wire.clear()
    const error = await refusal(() => prisma.$transaction([acme.project.create({ data: { name: 'Half a batch' } }), prisma.project.create({ data: { name: 'Other half' } })]))
    expect(error.code).toBe('TENANT_MISSING')
    // An operation split off the batch would still be running when the refusal arrives: give it time to land.
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(wire.statements()).toEqual([])
    expect(await admin.project.count({ where: { name: { in: ['Half a batch', 'Other half'] } } })).toBe(0)
  })

  it('refuses a batch $transaction that mixes tenants before sending any SQL', async () => {
    wire.clear()
    const error = await refusal(() => prisma.$transaction([acme.project.count(), globex.project.count()]))
    expect(error.code).toBe('TENANT_MISMATCH')
    expect(wire.statements()).toEqual([])
  })

  it('runs every query of an interactive transaction as its tenant, in that one transaction', async () => {
    const seen = await acme.$transaction(async (tx) => {
      const projects = await tx.project.findMany()
      const [first] = await tx.$queryRaw<Array<{ tx: bigint; tenant: string }>>`SELECT txid_current() AS tx, current_setting('app.current_tenant') AS tenant`
      const [again] = await tx.$queryRaw<Array<{ tx: bigint; tenant: string }>>`SELECT txid_current() AS tx, current_setting('app.current_tenant') AS tenant`
      return { projects: projects.length, first, again }
    })
    expect(seen.projects).toBe(3)
    expect(seen.first?.tenant).toBe('acme')
    expect(seen.again).toEqual(seen.first)
  })

  it('batches concurrent findUnique calls inside an interactive transaction, as its tenant', async () => {
    const found = await acme.$transaction(async (tx) =>
      Promise.all([...acmeProjects, globexProject].map((id) => tx.project.findUnique({ where: { id } }))),
    )
    expect(found.map((project) => project?.id ?? null)).toEqual([...acmeProjects, null])
  })

  it('rolls back everything a failing interactive transaction wrote', async () => {
    const failure = new Error('abort the transaction')
    await expect(
      acme.$transaction(async (tx) => {
        await tx.project.create({ data: { name: 'Rolled back', tasks: { create: [{ title: 'Gone' }] } } })
        await tx.$executeRaw`UPDATE "Project" SET name = 'Renamed' WHERE name = 'Rocket'`
        throw failure
      }),
    ).rejects.toBe(failure)
    expect(await admin.project.count({ where: { name: { in: ['Rolled back', 'Renamed'] } } })).toBe(0)
    expect(await admin.task.count({ where: { title: 'Gone' } })).toBe(0)
  })

  it('applies the isolation level of an interactive transaction together with its deferred BEGIN', async () => {
    const level = await acme.$transaction(
      async (tx) => (await tx.$queryRawUnsafe<Array<{ level: string }>>("SELECT current_setting('transaction_isolation') AS level"))[0]?.level,
      { isolationLevel: 'Serializable' },
    )
    expect(level).toBe('serializable')
  })

  it("runs nested transactions as savepoints of the outer one, with the tenant still set", async () => {
    const seen = await acme.$transaction(async (tx) => {
      const first = await tx.$transaction(async (inner) => currentTenant(inner))
      await tx.project.create({ data: { name: 'Outer write' } })
      const failure = await tx
        .$transaction(async (inner) => {
          await inner.project.create({ data: { name: 'Inner write' } })
          throw new Error('roll back to the savepoint')
        })
        .catch((error: Error) => error.message)
      const names = (await tx.project.findMany({ where: { name: { in: ['Outer write', 'Inner write'] } } })).map((project) => project.name)
      return { first, failure, names, last: await currentTenant(tx) }
    })
    expect(seen).toEqual({ first: 'acme', failure: 'roll back to the savepoint', names: ['Outer write'], last: 'acme' })
    await acme.project.deleteMany({ where: { name: 'Outer write' } })
  })

  it('is not overridden by an enclosing runWithTenant: the explicit binding wins', async () => {
    await runWithTenant('globex', async () => {
      expect(await currentTenant(acme)).toBe('acme')
      expect(await acme.project.count()).toBe(3)
      expect(await acme.$transaction(async (tx) => currentTenant(tx))).toBe('acme')
    })
  })
})

describe('runWithTenant', () => {
  it('scopes operations of the unbound client, including ones returned unawaited', async () => {
    expect(await runWithTenant('globex', () => prisma.project.count())).toBe(1)
    expect(await runWithTenant('acme', async () => [await currentTenant(prisma), await prisma.project.count()])).toEqual(['acme', 3])
  })

  it('scopes interactive transactions of the unbound client', async () => {
    const names = await runWithTenant('globex', () => prisma.$transaction(async (tx) => (await tx.project.findMany()).map((project) => project.name)))
    expect(names).toEqual(['Doomsday'])
  })
})

describe('failing closed', () => {
  it('throws TENANT_MISSING for an operation with no tenant, before any SQL is sent', async () => {
    wire.clear()
    const attempts: Array<() => unknown> = [
      () => prisma.project.findMany(),
      () => prisma.project.findUnique({ where: { id: globexProject } }),
      () => prisma.project.create({ data: { name: 'Orphan' } }),
      () => prisma.$queryRaw`SELECT 1`,
      () => prisma.$executeRawUnsafe('DELETE FROM "Project"'),
      () => prisma.$transaction([prisma.project.count()]),
      () => prisma.$transaction(async (tx) => tx.project.count()),
    ]
    for (const attempt of attempts) expect((await refusal(attempt)).code).toBe('TENANT_MISSING')
    expect(wire.statements()).toEqual([])
  })

  it('refuses invalid tenant ids with TENANT_INVALID before any SQL is sent', async () => {
    wire.clear()
    const invalid = ["acme'", "acme'; DROP TABLE tasks; --", 'a;b', 'a\0b', ' acme', 'ac me', 'acme\n', '\t', '', 'a'.repeat(64), 'acmé']
    for (const id of invalid) {
      expect((await refusal(() => prisma.forTenant(id))).code).toBe('TENANT_INVALID')
      expect((await refusal(() => runWithTenant(id, () => prisma.project.findMany()))).code).toBe('TENANT_INVALID')
    }
    expect(wire.statements()).toEqual([])
    expect(await currentTenant(prisma.forTenant('a'.repeat(63)))).toBe('a'.repeat(63))
  })

  it('validates tenant ids with a schema of the application: z.uuid()', async () => {
    const uuidAdapter = tenancyAdapter(db.appUrl)
    const uuidClient = new PrismaClient({ adapter: uuidAdapter }).$extends(tenancy({ tenantId: z.uuid() }))
    try {
      expect((await refusal(() => uuidClient.forTenant('acme'))).code).toBe('TENANT_INVALID')
      const id = '0b6f8f0e-3f4c-4d6a-9a57-8f1f0d6f2c11'
      expect(await uuidClient.forTenant(id).project.count()).toBe(0)
      expect(await currentTenant(uuidClient.forTenant(id))).toBe(id)
    } finally {
      await uuidClient.$disconnect()
    }
  })

  it('sets the setting named in tenancy({ setting }) and refuses a name that is not a custom setting', async () => {
    const custom = new PrismaClient({ adapter: tenancyAdapter(db.appUrl) }).$extends(tenancy({ setting: 'app.tenant' }))
    try {
      const rows = await custom.forTenant('acme').$queryRawUnsafe<Array<{ tenant: string }>>("SELECT current_setting('app.tenant') AS tenant")
      expect(rows).toEqual([{ tenant: 'acme' }])
    } finally {
      await custom.$disconnect()
    }
    for (const setting of ['current_tenant', "app.tenant'; --", 'app.a.b']) expect((await refusal(() => tenancy({ setting }))).code).toBe('CONFIG_INVALID')
  })

  it("keeps the application's own query hooks and result fields working, applied before or after tenancy(), and shows its hooks the bound tenant", async () => {
    const seen: string[] = []
    const hooks = { query: { $allOperations: ({ operation, args, query }: { operation: string; args: unknown; query: (args: unknown) => Promise<unknown> }) => (seen.push(`${operation} as ${currentTenantId()}`), query(args)) } }
    const shout = { result: { project: { shout: { needs: { name: true }, compute: (project: { name: string }) => project.name.toUpperCase() } } } }
    const before = new PrismaClient({ adapter: tenancyAdapter(db.appUrl) }).$extends(hooks).$extends(shout).$extends(tenancy())
    const after = new PrismaClient({ adapter: tenancyAdapter(db.appUrl) }).$extends(tenancy()).$extends(hooks).$extends(shout)
    try {
      for (const client of [before, after]) {
        seen.length = 0
        const viaBound = await client.forTenant('globex').project.findFirstOrThrow()
        const viaContext = await runWithTenant('globex', () => client.project.findFirstOrThrow())
        expect([viaBound.shout, viaContext.shout]).toEqual(['DOOMSDAY', 'DOOMSDAY'])
        expect(seen).toEqual(['findFirstOrThrow as globex', 'findFirstOrThrow as globex'])
      }
    } finally {
      await Promise.all([before.$disconnect(), after.$disconnect()])
    }
  })

  it('cannot be applied twice to one client', async () => {
    expect((await refusal(() => prisma.$extends(tenancy()))).code).toBe('CONFIG_INVALID')
  })

  it('has the driver refuse tenant-less queries on a tenancy pool, sending nothing', async () => {
    wire.clear()
    const error = await refusal(() => adapter.pool.query('SELECT 1'))
    expect(error.code).toBe('TENANT_MISSING')
    const client = await adapter.pool.connect()
    try {
      expect((await refusal(() => client.query('SELECT count(*) FROM "Project"'))).code).toBe('TENANT_MISSING')
    } finally {
      client.release()
    }
    expect(wire.statements()).toEqual([])
  })

  it('cannot be applied to a client on a stock PrismaPg adapter: ADAPTER_REQUIRED', async () => {
    const stock = new PrismaClient({ adapter: new PrismaPg(db.appUrl) })
    try {
      expect((await refusal(() => stock.$extends(tenancy()))).code).toBe('ADAPTER_REQUIRED')
      expect((await refusal(() => admin.$extends(tenancy()))).code).toBe('ADAPTER_REQUIRED')
      // Without the extension, the application role sees no tenant's rows at all.
      expect(await stock.project.count()).toBe(0)
    } finally {
      await stock.$disconnect()
    }
  })

  it('leaves cross-tenant work to the separate unscoped client on its own role', async () => {
    expect(await admin.project.count()).toBe(4)
    expect(new Set((await admin.project.findMany()).map((project) => project.tenantId))).toEqual(new Set(['acme', 'globex']))
  })
})

describe("Prisma's findUnique batching", () => {
  it("still merges one tenant's concurrent findUnique calls into one SQL query returning every row", async () => {
    wire.clear()
    const projects = await Promise.all(acmeProjects.map((id) => acme.project.findUnique({ where: { id } })))
    expect(projects.map((project) => project?.id)).toEqual(acmeProjects)
    expect(wire.dataStatements()).toHaveLength(1)
    expect(wire.roundTrips.length).toBe(1)
  })

  it("never merges two tenants' findUnique calls made in the same tick", async () => {
    const [ownAcme, ownGlobex] = await Promise.all([acme.project.findUnique({ where: { id: acmeProjects[0] } }), globex.project.findUnique({ where: { id: globexProject } })])
    expect([ownAcme?.tenantId, ownGlobex?.tenantId]).toEqual(['acme', 'globex'])
    const [crossAcme, crossGlobex] = await Promise.all([acme.project.findUnique({ where: { id: globexProject } }), globex.project.findUnique({ where: { id: acmeProjects[0] } })])
    expect([crossAcme, crossGlobex]).toEqual([null, null])
    const viaContext = await Promise.all([
      runWithTenant('acme', () => prisma.project.findUnique({ where: { id: acmeProjects[1] } })),
      runWithTenant('globex', () => prisma.project.findUnique({ where: { id: globexProject } })),
    ])
    expect(viaContext.map((project) => project?.tenantId)).toEqual(['acme', 'globex'])
  })
})

describe('the wire', () => {
  it('sends set_config and the query of an operation outside a transaction in one round trip', async () => {
    wire.clear()
    await acme.project.findMany()
    expect(wire.statements()).toHaveLength(2)
    expect(wire.statements()[0]).toBe('SELECT set_config($1, $2, true)')
    expect(wire.roundTrips.length).toBe(1)
  })

  it('sends BEGIN with the first query of a transaction: two queries and COMMIT take three round trips', async () => {
    wire.clear()
    await acme.$transaction(async (tx) => {
      await tx.project.count()
      await tx.task.count()
    })
    expect(wire.statements().slice(0, 2)).toEqual(['BEGIN', 'SELECT set_config($1, $2, true)'])
    expect(wire.statements().at(-1)).toBe('COMMIT')
    expect(wire.roundTrips.length).toBe(3)
  })

  it('sends nothing for a transaction that ends before its first query', async () => {
    wire.clear()
    expect(await acme.$transaction(async () => 'nothing to do')).toBe('nothing to do')
    expect(wire.statements()).toEqual([])
  })
})

/** BEGIN as the tenancy adapter's transaction object sends it: marked as its own control, not recognised by its text. */
const begin = { text: 'BEGIN', [transactionControl]: 'begin' } as pg.QueryConfig
const rollback = { text: 'ROLLBACK', [transactionControl]: 'rollback' } as pg.QueryConfig

/** Runs `work` on a tenancy pool of one connection, so every checkout hands back the same connection. */
async function withOneConnection(work: (pool: pg.Pool) => Promise<void>): Promise<void> {
  const single = tenancyAdapter({ connectionString: db.appUrl, max: 1 })
  try {
    await work(single.pool)
  } finally {
    await single.pool.end()
  }
}

describe('pooled connections', () => {
  it('roll back a tenant transaction that was released to the pool without COMMIT', async () => {
    await withOneConnection(async (pool) => {
      const leaked = await pool.connect()
      await runWithTenant('acme', async () => {
        await leaked.query(begin)
        await leaked.query(`INSERT INTO "Project" (id, name) VALUES ('left-open', 'Left open')`)
      })
      leaked.release()
      const next = await pool.connect()
      try {
        expect(next).toBe(leaked)
        const plainQuery = pg.Client.prototype.query as (this: pg.ClientBase, text: string) => Promise<pg.QueryResult<{ tenant: string | null; tx: string | null }>>
        const { rows } = await plainQuery.call(next, "SELECT current_setting('app.current_tenant', true) AS tenant, txid_current_if_assigned()::text AS tx")
        expect(rows).toEqual([{ tenant: '', tx: null }])
      } finally {
        next.release()
      }
      expect(await admin.project.count({ where: { id: 'left-open' } })).toBe(0)
    })
  })

  it('set the tenant again for the next user of a connection released mid-transaction, even the same tenant', async () => {
    await withOneConnection(async (pool) => {
      const leaked = await pool.connect()
      await runWithTenant('acme', async () => {
        await leaked.query(begin)
        await leaked.query('SELECT count(*) FROM "Project"')
      })
      leaked.release()
      const next = await pool.connect()
      try {
        const { rows } = await runWithTenant('acme', () => next.query("SELECT current_setting('app.current_tenant', true) AS tenant"))
        expect(rows).toEqual([{ tenant: 'acme' }])
      } finally {
        next.release()
      }
    })
  })

  it('refuse a statement of another tenant inside a tenant transaction: TENANT_MISMATCH', async () => {
    const error = await refusal(() =>
      runWithTenant('acme', () =>
        prisma.$transaction(async (tx) => {
          await tx.project.count()
          return runWithTenant('globex', () => tx.project.count())
        }),
      ),
    )
    expect(error.code).toBe('TENANT_MISMATCH')
  })

  it('keep a held-back BEGIN while an earlier statement completes', async () => {
    await withOneConnection(async (pool) => {
      const client = await pool.connect()
      try {
        await runWithTenant('acme', async () => {
          const earlier = client.query('SELECT pg_sleep(0.05)')
          await client.query(begin)
          await earlier
          await client.query(`INSERT INTO "Project" (id, name) VALUES ('rolled-back', 'Rolled back')`)
          await client.query(rollback)
        })
      } finally {
        client.release()
      }
      expect(await admin.project.count({ where: { id: 'rolled-back' } })).toBe(0)
    })
  })

  it('carry no tenant setting after interleaved work of many tenants over a pool of two', async () => {
    const small = tenancyAdapter({ connectionString: db.appUrl, max: 2 })
    const client = new PrismaClient({ adapter: small }).$extends(tenancy())
    try {
      const tenants = tenantIds(10)
      const seen = await Promise.all(
        Array.from({ length: 60 }, async (_, index) => {
          const tenant = tenants[index % tenants.length] ?? 'acme'
          const scoped = client.forTenant(tenant)
          switch (index % 4) {
            case 0:
              return [tenant, await currentTenant(scoped)]
            case 1:
              return [tenant, await scoped.$transaction(async (tx) => currentTenant(tx))]
            case 2:
              return [tenant, await runWithTenant(tenant, () => currentTenant(client))]
            default: {
              const failed = await scoped.$transaction(async (tx) => {
                await tx.project.create({ data: { name: 'temporary' } })
                throw new Error(tenant)
              }).catch((error: Error) => error.message)
              return [tenant, failed]
            }
          }
        }),
      )
      for (const [expected, actual] of seen) expect(actual).toBe(expected)

      const connections = await Promise.all([small.pool.connect(), small.pool.connect()])
      try {
        expect(small.pool.totalCount).toBe(2)
        // Read the setting below the tenancy driver, which would refuse a tenant-less query.
        const plainQuery = pg.Client.prototype.query as (this: pg.ClientBase, text: string) => Promise<pg.QueryResult<{ tenant: string | null }>>
        const settings = await Promise.all(
          connections.map(async (connection) => (await plainQuery.call(connection, "SELECT current_setting('app.current_tenant', true) AS tenant")).rows[0]?.tenant),
        )
        expect(settings.filter((setting) => setting !== null && setting !== '')).toEqual([])
      } finally {
        for (const connection of connections) connection.release()
      }
      expect(await admin.project.count({ where: { name: 'temporary' } })).toBe(0)
    } finally {
      await client.$disconnect()
    }
  })
})

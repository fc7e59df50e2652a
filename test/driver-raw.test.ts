import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PrismaClient } from '../prisma/generated/client.js'
import { runWithTenant, tenancy, tenancyAdapter, unscopedAdapter, type TenancyOptions } from '../src/index.js'
import { recordWire, useTestDatabase } from '../src/testing/index.js'
import { refusal } from './support/refusal.js'
import { allowTemporaryTables } from './support/temporary-tables.js'

const db = await useTestDatabase()
await allowTemporaryTables(db.adminUrl)
const admin = new PrismaClient({ adapter: unscopedAdapter(db.adminUrl) })
const open: Array<{ $disconnect(): Promise<void> }> = [admin]

/** A tenant client over a pool of `max` connections, as the application role. */
function tenantClient(max: number, options: TenancyOptions = {}) {
  const adapter = tenancyAdapter({ connectionString: db.appUrl, max })
  const client = new PrismaClient({ adapter }).$extends(tenancy(options))
  open.push(client)
  return { client, adapter, wire: recordWire(adapter.pool) }
}

async function failure(attempt: () => unknown): Promise<unknown> {
  try {
    await attempt()
  } catch (error) {
    return error
  }
  throw new Error('expected the operation to fail')
}

beforeAll(async () => {
  await admin.tenant.createMany({ data: ['t_alpha', 't_beta'].map((id) => ({ id, name: id })) })
})
afterAll(async () => {
  await Promise.all(open.map((client) => client.$disconnect()))
})

// Statements the first-keyword pre-check refuses, and ones only the server's transaction status reveals.
const hiddenBegins = ['/* */ BEGIN', '-- c\nBEGIN', 'START/**/TRANSACTION', 'begin', '/* a /* nested */ b */ BEGIN', '; BEGIN', ';;/**/START TRANSACTION']
const hiddenRollbacks = ['/* */ ROLLBACK', '; ROLLBACK', '; COMMIT', ';END']

describe('raw transaction control (#18.1)', () => {
  it("refuses a hidden BEGIN, however written, and another tenant's acknowledged write survives a hidden ROLLBACK", async () => {
    const { client } = tenantClient(2)
    const alpha = client.forTenant('t_alpha')
    const beta = client.forTenant('t_beta')
    for (const [index, begin] of hiddenBegins.entries()) {
      expect((await refusal(() => beta.$executeRawUnsafe(begin))).code).toBe('RAW_TRANSACTION_CONTROL')
      const row = await alpha.project.create({ data: { name: `acknowledged ${index}` } })
      const rollback = hiddenRollbacks[index % hiddenRollbacks.length] ?? 'ROLLBACK'
      await beta.$executeRawUnsafe(rollback).catch(() => undefined)
      expect(await admin.project.count({ where: { id: row.id } })).toBe(1)
    }
  })

  it('rolls back a transaction a raw statement opened before anything else runs on that connection', async () => {
    const { client, wire } = tenantClient(1)
    wire.clear()
    const [refused, next] = await Promise.allSettled([client.forTenant('t_beta').$executeRawUnsafe('; BEGIN'), client.forTenant('t_alpha').project.count()])
    expect(refused.status).toBe('rejected')
    expect(next.status).toBe('fulfilled')
    const [opened] = wire.roundTrips.filter((trip) => trip.statements.includes('; BEGIN'))
    const sameConnection = wire.roundTrips.filter((trip) => trip.connection === opened?.connection).map((trip) => trip.statements)
    // (pg-pool then drops a connection whose query failed; the other tenant's count may run on a new one.)
    expect(sameConnection.slice(0, 2)).toEqual([['SELECT set_config($1, $2, true)', '; BEGIN'], ['ROLLBACK']])
  })

  it('commits every acknowledged write while two hidden BEGINs are tried at once', async () => {
    const { client } = tenantClient(2)
    const beta = client.forTenant('t_beta')
    const alpha = client.forTenant('t_alpha')
    const attempts = await Promise.allSettled([beta.$executeRawUnsafe('; BEGIN'), beta.$executeRawUnsafe('/**/BEGIN')])
    expect(attempts.map((attempt) => attempt.status)).toEqual(['rejected', 'rejected'])
    const written = await Promise.all(Array.from({ length: 20 }, (_, index) => alpha.project.create({ data: { name: `concurrent ${index}` } })))
    await Promise.allSettled([beta.$executeRawUnsafe('; ROLLBACK'), beta.$executeRawUnsafe('; ROLLBACK')])
    expect(await admin.project.count({ where: { id: { in: written.map((row) => row.id) } } })).toBe(20)
  })

  it("does not let a SAVEPOINT chain read or update another tenant's rows", async () => {
    const { client } = tenantClient(1)
    const alpha = client.forTenant('t_alpha')
    const beta = client.forTenant('t_beta')
    const target = await alpha.project.create({ data: { name: 'alpha secret' } })
    await beta.$executeRawUnsafe('; BEGIN').catch(() => undefined)
    await alpha.project.findMany()
    for (const chain of [
      'SAVEPOINT s; CREATE TEMP TABLE loot AS SELECT name FROM "Project"',
      `SAVEPOINT s; UPDATE "Project" SET name = 'PWNED by beta'`,
    ]) {
      expect(['RAW_TRANSACTION_CONTROL', 'RAW_MULTIPLE_STATEMENTS']).toContain((await refusal(() => beta.$executeRawUnsafe(chain))).code)
    }
    // Past the pre-check, the server refuses it: no transaction is open.
    expect(String(await failure(() => beta.$executeRawUnsafe('; SAVEPOINT s')))).toContain('SAVEPOINT can only be used in transaction blocks')
    expect(await beta.$executeRawUnsafe(`UPDATE "Project" SET name = 'PWNED by beta' WHERE id = $1`, target.id)).toBe(0)
    expect((await failure(() => beta.$queryRawUnsafe('SELECT * FROM loot'))) instanceof Error).toBe(true)
    expect((await admin.project.findUniqueOrThrow({ where: { id: target.id } })).name).toBe('alpha secret')
  })

  it('leaves no transaction behind after a CALL of a procedure that commits, or a DO block that does', async () => {
    const superuser = new pg.Client({ connectionString: db.adminUrl })
    await superuser.connect()
    try {
      await superuser.query('CREATE OR REPLACE PROCEDURE tenancy_commits() LANGUAGE plpgsql AS $$ BEGIN COMMIT; START TRANSACTION; END $$')
    } finally {
      await superuser.end()
    }
    const { client } = tenantClient(1)
    const beta = client.forTenant('t_beta')
    const alpha = client.forTenant('t_alpha')
    for (const statement of ['CALL tenancy_commits()', 'DO $$ BEGIN COMMIT; START TRANSACTION; END $$']) {
      expect(await failure(() => beta.$executeRawUnsafe(statement))).toBeInstanceOf(Error)
      expect(await failure(() => beta.$transaction(async (tx) => tx.$executeRawUnsafe(statement)))).toBeInstanceOf(Error)
      const row = await alpha.project.create({ data: { name: `after ${statement}` } })
      await beta.$executeRawUnsafe('; ROLLBACK').catch(() => undefined)
      expect(await admin.project.count({ where: { id: row.id } })).toBe(1)
    }
  })

  it('refuses several statements in one raw call, in and out of a transaction: RAW_MULTIPLE_STATEMENTS', async () => {
    const { client } = tenantClient(1)
    const beta = client.forTenant('t_beta')
    expect((await refusal(() => beta.$executeRawUnsafe('SELECT 1; SELECT 2'))).code).toBe('RAW_MULTIPLE_STATEMENTS')
    expect((await refusal(() => beta.$transaction(async (tx) => tx.$executeRawUnsafe('SELECT 1; SELECT 2')))).code).toBe('RAW_MULTIPLE_STATEMENTS')
  })

  it('refuses a raw statement that ends the transaction it runs in, and every statement of that transaction after it', async () => {
    const { client } = tenantClient(1)
    const beta = client.forTenant('t_beta')
    const seen: string[] = []
    const error = await refusal(() =>
      beta.$transaction(async (tx) => {
        await tx.project.create({ data: { name: 'before the hidden commit' } })
        const hidden = await refusal(() => tx.$executeRawUnsafe('; COMMIT'))
        seen.push(hidden.code)
        await tx.project.create({ data: { name: 'after the hidden commit' } })
      }),
    )
    expect(seen).toEqual(['RAW_TRANSACTION_CONTROL'])
    expect(error.code).toBe('RAW_TRANSACTION_CONTROL')
    expect(await admin.project.count({ where: { name: 'after the hidden commit' } })).toBe(0)
    expect(await beta.project.count({ where: { name: 'after the hidden commit' } })).toBe(0)
  })

  it("still runs Prisma's own transactions, savepoints and isolation levels as control", async () => {
    const { client, wire } = tenantClient(1)
    const beta = client.forTenant('t_beta')
    wire.clear()
    const names = await beta.$transaction(
      async (tx) => {
        await tx.project.create({ data: { name: 'outer' } })
        await tx.$transaction(async (inner) => inner.project.create({ data: { name: 'inner' } })).catch(() => undefined)
        await tx
          .$transaction(async (inner) => {
            await inner.project.create({ data: { name: 'rolled back' } })
            throw new Error('to the savepoint')
          })
          .catch(() => undefined)
        return (await tx.project.findMany({ where: { name: { in: ['outer', 'inner', 'rolled back'] } }, orderBy: { name: 'asc' } })).map((project) => project.name)
      },
      { isolationLevel: 'RepeatableRead' },
    )
    expect(names).toEqual(['inner', 'outer'])
    const statements = wire.statements()
    expect(statements.slice(0, 3)).toEqual(['BEGIN', 'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ', 'SELECT set_config($1, $2, true)'])
    expect(statements.at(-1)).toBe('COMMIT')
    expect(statements.filter((text) => text === 'SELECT set_config($1, $2, true)')).toHaveLength(1)
  })
})

describe('raw SQL that switches the tenant inside a transaction (#12)', () => {
  it.each([["SELECT set_config('app.current_tenant', 't_alpha', true)"], ["SET LOCAL app.current_tenant = 't_alpha'"]])(
    'sets the tenant again after %s, so later statements never see the other tenant',
    async (switchTenant) => {
      const { client } = tenantClient(1)
      await client.forTenant('t_alpha').project.create({ data: { name: 'alpha only' } })
      const seen = await client.forTenant('t_beta').$transaction(async (tx) => {
        await tx.$executeRawUnsafe(switchTenant)
        const projects = await tx.project.findMany()
        const [setting] = await tx.$queryRawUnsafe<Array<{ tenant: string }>>("SELECT current_setting('app.current_tenant') AS tenant")
        await tx.$executeRawUnsafe(switchTenant)
        const updated = await tx.project.updateMany({ data: { name: 'renamed by beta' } })
        return { tenants: [...new Set(projects.map((project) => project.tenantId))], setting: setting?.tenant, updated: updated.count }
      })
      expect(seen.tenants.filter((tenant) => tenant !== 't_beta')).toEqual([])
      expect(seen.setting).toBe('t_beta')
      expect(await admin.project.count({ where: { tenantId: 't_alpha', name: 'renamed by beta' } })).toBe(0)
    },
  )
})

describe('session state across tenants on a pooled connection (#18.2)', () => {
  it("does not let the next tenant read a temp table another tenant's raw SQL created", async () => {
    const { client } = tenantClient(1)
    await client.forTenant('t_alpha').project.create({ data: { name: 'alpha report row' } })
    await client.forTenant('t_alpha').$executeRawUnsafe('CREATE TEMP TABLE report AS SELECT name FROM "Project"')
    expect(await failure(() => client.forTenant('t_beta').$queryRawUnsafe('SELECT * FROM report'))).toBeInstanceOf(Error)
  })

  it('resets session settings, prepared statements, WITH HOLD cursors, LISTEN and advisory locks before the next use', async () => {
    const { client } = tenantClient(1)
    const beta = client.forTenant('t_beta')
    const alpha = client.forTenant('t_alpha')
    await beta.$queryRawUnsafe("SELECT set_config('search_path', 'pg_temp, public', false)")
    await beta.$executeRawUnsafe('SET statement_timeout = 12345')
    await beta.$executeRawUnsafe('PREPARE sneaky AS SELECT 1')
    await beta.$executeRawUnsafe('LISTEN sneaky')
    await beta.$queryRawUnsafe('SELECT pg_advisory_lock(4242)::text')
    await beta.$transaction(async (tx) => tx.$executeRawUnsafe('DECLARE held CURSOR WITH HOLD FOR SELECT 1'))
    const state = await alpha.$transaction(async (tx) =>
      tx.$queryRawUnsafe<Array<Record<string, unknown>>>(
        `SELECT current_setting('search_path') AS search_path, current_setting('statement_timeout') AS timeout,
          (SELECT count(*)::int FROM pg_prepared_statements) AS prepared, (SELECT count(*)::int FROM pg_listening_channels()) AS channels,
          (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks, (SELECT count(*)::int FROM pg_cursors WHERE is_holdable) AS cursors`,
      ),
    )
    expect(state).toEqual([{ search_path: '"$user", public', timeout: '0', prepared: 0, channels: 0, locks: 0, cursors: 0 }])
  })

  it('sends no reset for a connection that ran only model queries', async () => {
    const { client, wire } = tenantClient(1)
    const alpha = client.forTenant('t_alpha')
    wire.clear()
    await alpha.project.findMany()
    await alpha.$transaction(async (tx) => tx.project.count())
    await alpha.project.count()
    expect(wire.statements().filter((text) => text === 'DISCARD ALL')).toEqual([])
  })
})

describe('a lazy query (#18.3)', () => {
  it('runs as the tenant in force when it was created, not the one awaiting it', async () => {
    const { client } = tenantClient(2)
    await client.forTenant('t_beta').project.create({ data: { name: 'beta lazy' } })
    const box = await runWithTenant('t_beta', () => ({ q: client.project.findMany() }))
    const rows = await runWithTenant('t_alpha', () => box.q)
    expect(new Set(rows.map((row) => row.tenantId))).toEqual(new Set(['t_beta']))
    const orphan = { q: client.project.count() }
    expect((await refusal(() => runWithTenant('t_alpha', () => orphan.q))).code).toBe('TENANT_MISSING')
  })
})

describe('tenancy({ raw }) (#18.5)', () => {
  it("refuses every raw call with 'refuse', sending nothing, and keeps the model API", async () => {
    const { client, wire } = tenantClient(1, { raw: 'refuse' })
    const alpha = client.forTenant('t_alpha')
    wire.clear()
    for (const attempt of [() => alpha.$queryRaw`SELECT 1`, () => alpha.$executeRawUnsafe('SELECT 1'), () => alpha.$transaction(async (tx) => tx.$queryRawUnsafe('SELECT 1'))]) {
      expect((await refusal(attempt)).code).toBe('RAW_SQL_REFUSED')
    }
    expect(wire.statements().filter((text) => text === 'SELECT 1')).toEqual([])
    expect(await alpha.project.count()).toBeGreaterThanOrEqual(0)
  })

  it("refuses only EXPLAIN with 'no-explain'", async () => {
    const { client } = tenantClient(1, { raw: 'no-explain' })
    const alpha = client.forTenant('t_alpha')
    expect((await refusal(() => alpha.$queryRawUnsafe('/* plan */ explain SELECT * FROM "Project"'))).code).toBe('RAW_SQL_REFUSED')
    expect(await alpha.$queryRawUnsafe('SELECT 1 AS one')).toEqual([{ one: 1 }])
    const { client: allowing } = tenantClient(1)
    expect(await allowing.forTenant('t_alpha').$queryRawUnsafe('EXPLAIN SELECT 1')).toHaveLength(1)
    expect((await refusal(() => tenancy({ raw: 'sometimes' as never }))).code).toBe('CONFIG_INVALID')
  })
})

describe('roles (#12, #11)', () => {
  const suffix = randomBytes(4).toString('hex')
  const bypass = `tenancy_bypass_${suffix}`
  const member = `tenancy_member_${suffix}`
  const owner = `tenancy_owner_${suffix}`
  const superuser = new pg.Client({ connectionString: db.adminUrl })

  beforeAll(async () => {
    await superuser.connect()
    await superuser.query(`CREATE ROLE ${bypass} NOLOGIN BYPASSRLS`)
    await superuser.query(`CREATE ROLE ${member} LOGIN PASSWORD 'member' IN ROLE ${bypass}`)
    await superuser.query(`GRANT CONNECT ON DATABASE "${db.name}" TO ${member}`)
    await superuser.query(`CREATE ROLE ${owner} LOGIN PASSWORD 'owner'`)
    await superuser.query(`GRANT CONNECT ON DATABASE "${db.name}" TO ${owner}`)
    await superuser.query(`CREATE TABLE owned_${suffix} (tenant_id text)`)
    await superuser.query(`ALTER TABLE owned_${suffix} ENABLE ROW LEVEL SECURITY`)
    await superuser.query(`ALTER TABLE owned_${suffix} OWNER TO ${owner}`)
  })
  afterAll(async () => {
    await superuser.query(`REVOKE CONNECT ON DATABASE "${db.name}" FROM ${member}`).catch(() => undefined)
    await superuser.query(`DROP TABLE IF EXISTS owned_${suffix}`)
    await superuser.query(`REVOKE CONNECT ON DATABASE "${db.name}" FROM ${owner}`).catch(() => undefined)
    await superuser.query(`DROP ROLE IF EXISTS ${owner}`)
    await superuser.query(`DROP ROLE IF EXISTS ${member}`)
    await superuser.query(`DROP ROLE IF EXISTS ${bypass}`)
    await superuser.end()
  })

  it('refuses a tenancy adapter connected as a superuser, a member of a BYPASSRLS role or the owner of a table with RLS: UNSAFE_ROLE, before any query', async () => {
    const as = (name: string, password: string) => {
      const url = new URL(db.appUrl)
      url.username = name
      url.password = password
      return url.toString()
    }
    for (const url of [db.adminUrl, as(member, 'member'), as(owner, 'owner')]) {
      const adapter = tenancyAdapter({ connectionString: url, max: 1 })
      const wire = recordWire(adapter.pool)
      const client = new PrismaClient({ adapter }).$extends(tenancy())
      try {
        const error = await refusal(() => client.forTenant('t_alpha').project.count())
        expect(error.code).toBe('UNSAFE_ROLE')
        expect(error.message).toContain('prisma-tenancy verify --role')
        expect(wire.statements()).toEqual([])
      } finally {
        await client.$disconnect()
      }
    }
  })

  it('refuses tenancyAdapter(undefined) and an empty URL at construction: DATABASE_URL_MISSING', async () => {
    for (const url of [undefined, '']) expect((await refusal(() => tenancyAdapter(url as never))).code).toBe('DATABASE_URL_MISSING')
  })

  it('refuses an unscoped adapter whose role row-level security filters: UNSCOPED_ROLE_FILTERED, never an empty result', async () => {
    const filtered = new PrismaClient({ adapter: unscopedAdapter(db.appUrl) })
    try {
      const error = (await failure(() => filtered.project.count())) as { code?: string; message: string }
      expect(error.code).toBe('UNSCOPED_ROLE_FILTERED')
      expect(error.message).toContain('BYPASSRLS')
    } finally {
      await filtered.$disconnect().catch(() => undefined)
    }
    expect(await admin.tenant.count()).toBeGreaterThanOrEqual(2)
  })

  it("names no column default in TENANT_MISMATCH that the schema does not have", async () => {
    const { client } = tenantClient(1)
    const error = await refusal(() => client.forTenant('t_alpha').project.create({ data: { name: 'sneaky', tenantId: 't_beta' } }))
    expect(error.code).toBe('TENANT_MISMATCH')
    expect(error.message).not.toContain('the column defaults to the current tenant')
  })
})

import pg from 'pg'
import { beforeAll, describe, expect, it } from 'vitest'
import { withClient } from '../src/database/admin.js'
import { useTestDatabase } from '../src/testing/index.js'

const db = await useTestDatabase()

type Tenant = string | null

/** Runs work as the application role in a transaction with the tenant set (null: never set), then rolls back. */
async function asTenant<T>(tenant: Tenant, work: (client: pg.Client) => Promise<T>): Promise<T> {
  return withClient(db.appUrl, async (client) => {
    await client.query('BEGIN')
    try {
      if (tenant !== null) await client.query("SELECT set_config('app.current_tenant', $1, true)", [tenant])
      return await work(client)
    } finally {
      await client.query('ROLLBACK')
    }
  })
}

async function errorCode(promise: Promise<unknown>): Promise<string | undefined> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught as { code?: string },
  )
  return error?.code
}

/** Each tenant table of the example schema, with how to insert a row for a tenant (its parents exist for both tenants). */
const tenantTables = [
  { table: '"Project"', key: 'id', insert: `INSERT INTO "Project" (id, tenant_id, name) VALUES ('new-' || $1, $1, 'new')` },
  { table: '"tasks"', key: 'id', insert: `INSERT INTO "tasks" (id, tenant_id, project_id, title) VALUES ('new-' || $1, $1, 'project-' || $1, 'new')` },
  { table: '"Comment"', key: 'id', insert: `INSERT INTO "Comment" (id, tenant_id, task_id, body) VALUES ('new-' || $1, $1, 'task-' || $1, 'new')` },
  {
    table: '"project_members"',
    key: 'user_email',
    insert: `INSERT INTO "project_members" (tenant_id, project_id, user_email) VALUES ($1, 'project-' || $1, 'new-' || $1)`,
  },
] as const

beforeAll(async () => {
  // A superuser bypasses row-level security: fixtures for both tenants in one go.
  await withClient(db.adminUrl, async (client) => {
    for (const tenant of ['a', 'b']) {
      await client.query(`INSERT INTO "Tenant" (id, name) VALUES ($1, $1)`, [tenant])
      await client.query(`INSERT INTO "Project" (id, tenant_id, name) VALUES ('project-' || $1, $1, 'p')`, [tenant])
      await client.query(`INSERT INTO "tasks" (id, tenant_id, project_id, title) VALUES ('task-' || $1, $1, 'project-' || $1, 't')`, [tenant])
      await client.query(`INSERT INTO "Comment" (id, tenant_id, task_id, body) VALUES ('comment-' || $1, $1, 'task-' || $1, 'c')`, [tenant])
      await client.query(`INSERT INTO "project_members" (tenant_id, project_id, user_email) VALUES ($1, 'project-' || $1, $1 || '@example.com')`, [tenant])
    }
  })
})

describe.each(tenantTables)('the generated policies on $table, as the application role', ({ table, key, insert }) => {
  it("shows a tenant only its own rows", async () => {
    const rows = await asTenant('b', async (client) => (await client.query<{ tenant_id: string }>(`SELECT tenant_id FROM ${table}`)).rows)
    expect(rows).toEqual([{ tenant_id: 'b' }])
  })

  it("does not let a tenant update or delete another tenant's rows", async () => {
    const counts = await asTenant('b', async (client) => [
      (await client.query(`UPDATE ${table} SET ${key} = ${key} WHERE tenant_id = 'a'`)).rowCount,
      (await client.query(`DELETE FROM ${table} WHERE tenant_id = 'a'`)).rowCount,
    ])
    expect(counts).toEqual([0, 0])
    const stillThere = await withClient(db.adminUrl, async (client) => (await client.query(`SELECT 1 FROM ${table} WHERE tenant_id = 'a'`)).rowCount)
    expect(stillThere).toBe(1)
  })

  it("refuses an insert with another tenant's id", async () => {
    expect(await errorCode(asTenant('b', (client) => client.query(insert, ['a'])))).toBe('42501')
  })

  it('accepts an insert for the current tenant', async () => {
    const inserted = await asTenant('b', async (client) => (await client.query(insert, ['b'])).rowCount)
    expect(inserted).toBe(1)
  })

  it("refuses moving a row into another tenant", async () => {
    expect(await errorCode(asTenant('b', (client) => client.query(`UPDATE ${table} SET tenant_id = 'a'`)))).toBe('42501')
  })

  it('shows no rows when no tenant is set, and when the setting is empty', async () => {
    const unset = await asTenant(null, async (client) => (await client.query(`SELECT 1 FROM ${table}`)).rowCount)
    const empty = await asTenant('', async (client) => (await client.query(`SELECT 1 FROM ${table}`)).rowCount)
    expect([unset, empty]).toEqual([0, 0])
  })

  it('refuses inserts when no tenant is set', async () => {
    expect(await errorCode(asTenant(null, (client) => client.query(insert, ['a'])))).toBe('42501')
  })
})

describe('the generated policies, as the application role', () => {
  it('fills tenant_id from the current tenant when an insert leaves it out', async () => {
    const row = await asTenant('b', async (client) => {
      const result = await client.query<{ tenant_id: string }>(`INSERT INTO "Project" (id, name) VALUES ('defaulted', 'd') RETURNING tenant_id`)
      return result.rows[0]
    })
    expect(row).toEqual({ tenant_id: 'b' })
  })

  it('refuses an insert that leaves tenant_id out when no tenant is set', async () => {
    expect(await errorCode(asTenant(null, (client) => client.query(`INSERT INTO "Project" (id, name) VALUES ('orphan', 'o')`)))).toBe('42501')
  })

  it('refuses an insert that leaves tenant_id out after the setting was emptied', async () => {
    expect(await errorCode(asTenant('', (client) => client.query(`INSERT INTO "Project" (id, name) VALUES ('orphan', 'o')`)))).toBe('42501')
  })

  it('leaves shared tables without row-level security', async () => {
    const tenants = await asTenant(null, async (client) => (await client.query(`SELECT id FROM "Tenant" ORDER BY id`)).rows)
    expect(tenants).toEqual([{ id: 'a' }, { id: 'b' }])
  })
})

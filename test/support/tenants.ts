import type pg from 'pg'
import { withClient } from '../../src/database/admin.js'
import type { TestDatabase } from '../../src/testing/index.js'
import { groupRoleName, tenantRoleName } from '../../src/tenants/tenant-roles.js'

/** Per tenant table, the tenant's row count and an md5 over its rows in a stable order. */
export async function tenantTableChecksums(url: string, tenant: string, tables = ['Project', 'tasks', 'Comment', 'project_members']): Promise<Record<string, { rows: number; md5: string | null }>> {
  return withClient(url, async (client) => {
    const result: Record<string, { rows: number; md5: string | null }> = {}
    for (const table of tables) {
      const { rows } = await client.query<{ rows: number; md5: string | null }>(
        `SELECT count(*)::int AS rows, md5(string_agg(t::text, '|' ORDER BY t::text)) AS md5 FROM "${table}" t WHERE tenant_id = $1`,
        [tenant],
      )
      result[table] = rows[0]!
    }
    return result
  })
}

/** Roles are cluster-wide and outlive the test database: drop the lifecycle's roles of this database. */
export async function dropTenantRoles(database: TestDatabase): Promise<void> {
  const prefix = tenantRoleName(database.name, '')
  const group = groupRoleName(database.name)
  await withClient(database.adminUrl, async (client) => {
    const { rows } = await client.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) OR rolname = $2 ORDER BY rolname = $2', [prefix, group])
    for (const { rolname } of rows) {
      await client.query(`DROP OWNED BY "${rolname}"`)
      await client.query(`DROP ROLE "${rolname}"`)
    }
  })
}

/** Runs work on `url` in a transaction with app.current_tenant set to `tenant` (null: never set), then rolls back. */
export async function inRolledBackTenant<T>(url: string, tenant: string | null, work: (client: pg.Client) => Promise<T>): Promise<T> {
  return withClient(url, async (client) => {
    await client.query('BEGIN')
    try {
      if (tenant !== null) await client.query("SELECT set_config('app.current_tenant', $1, true)", [tenant])
      return await work(client)
    } finally {
      await client.query('ROLLBACK')
    }
  })
}

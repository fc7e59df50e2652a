import { withClient } from '../../src/database/admin.js'

export interface TenantFixture {
  id: string
  projects: string[]
  tasks: string[]
}

/** Operation indexes map to tenants and rows by fixed arithmetic, so every contender gets the same sequence. */
export const tenantOf = (tenants: readonly TenantFixture[], i: number): TenantFixture => tenants[i % tenants.length]!
export const taskOf = (t: TenantFixture, i: number): string => t.tasks[(Math.imul(i, 2654435761) >>> 0) % t.tasks.length]!
export const projectOf = (t: TenantFixture, i: number): string => t.projects[(Math.imul(i, 40503) >>> 0) % t.projects.length]!

/**
 * The tenant's rows of `table` copied into a table of their own in `schema`
 * (same columns and indexes, no policy), as schema-per-tenant stores them.
 */
export async function copyToOwnTable(url: string, schema: string, table: string, tenant: string): Promise<void> {
  await withClient(url, async (client) => {
    await client.query(`CREATE SCHEMA ${schema}`)
    await client.query(`CREATE TABLE ${schema}.${table} (LIKE public.${table} INCLUDING ALL)`)
    await client.query(`INSERT INTO ${schema}.${table} SELECT * FROM public.${table} WHERE tenant_id = $1 ORDER BY id`, [tenant])
    await client.query(`VACUUM ANALYZE ${schema}.${table}`)
  })
}

/** Deterministic uuid-shaped tenant ids: some peers accept only UUIDs, and every contender must see the same ids. */
const tenantId = (n: string) => `md5('tenant-' || ${n})::uuid::text`

/**
 * Registers `tenants` tenants, each with `projects` projects of `tasksPerProject`
 * tasks, written as the superuser (policies do not apply to it).
 */
export async function seedOperationsData(adminUrl: string, size: { tenants: number; projects: number; tasksPerProject: number }): Promise<TenantFixture[]> {
  return withClient(adminUrl, async (client) => {
    await client.query(`INSERT INTO "Tenant" (id, name) SELECT ${tenantId('t')}, 'Tenant ' || t FROM generate_series(1, $1) t`, [size.tenants])
    await client.query(
      `INSERT INTO "Project" (id, tenant_id, name) SELECT gen_random_uuid()::text, t.id, 'Project ' || p FROM "Tenant" t CROSS JOIN generate_series(1, $1) p`,
      [size.projects],
    )
    await client.query(
      `INSERT INTO tasks (id, tenant_id, project_id, title) SELECT gen_random_uuid()::text, p.tenant_id, p.id, 'Task ' || g FROM "Project" p CROSS JOIN generate_series(1, $1) g`,
      [size.tasksPerProject],
    )
    await client.query('VACUUM ANALYZE')
    const { rows } = await client.query<{ tenant_id: string; project_id: string; id: string }>('SELECT tenant_id, project_id, id FROM tasks ORDER BY tenant_id, project_id, id')
    const byTenant = new Map<string, TenantFixture>()
    for (const row of rows) {
      let tenant = byTenant.get(row.tenant_id)
      if (tenant === undefined) byTenant.set(row.tenant_id, (tenant = { id: row.tenant_id, projects: [], tasks: [] }))
      if (tenant.projects.at(-1) !== row.project_id) tenant.projects.push(row.project_id)
      tenant.tasks.push(row.id)
    }
    return [...byTenant.values()]
  })
}

/**
 * `tenants` tenants of one project and `rowsPerTenant` tasks each. Rows are
 * inserted round-robin over tenants, as tenants writing side by side over
 * time would leave them, so one tenant's rows are spread over the whole heap
 * rather than stored together (the favourable case for a shared table).
 */
export async function seedSharedTable(adminUrl: string, size: { tenants: number; rowsPerTenant: number }): Promise<string[]> {
  return withClient(adminUrl, async (client) => {
    await client.query(`INSERT INTO "Tenant" (id, name) SELECT ${tenantId('t')}, 'Tenant ' || t FROM generate_series(1, $1) t`, [size.tenants])
    await client.query(`INSERT INTO "Project" (id, tenant_id, name) SELECT gen_random_uuid()::text, id, 'Project' FROM "Tenant"`)
    await client.query(
      `INSERT INTO tasks (id, tenant_id, project_id, title, done)
       SELECT gen_random_uuid()::text, p.tenant_id, p.id, 'Task ' || g, g % 3 = 0
       FROM generate_series(1, $1) g CROSS JOIN "Project" p ORDER BY g, p.tenant_id`,
      [size.rowsPerTenant],
    )
    await client.query('VACUUM ANALYZE')
    const { rows } = await client.query<{ id: string }>('SELECT id FROM "Tenant" ORDER BY id')
    return rows.map((row) => row.id)
  })
}

/** Every tenant in the registry with one project and one task: what the migration has to live with. */
export async function registerTenants(adminUrl: string, tenants: number): Promise<void> {
  await withClient(adminUrl, async (client) => {
    await client.query(`INSERT INTO "Tenant" (id, name) SELECT ${tenantId('t')}, 'Tenant ' || t FROM generate_series(1, $1) t`, [tenants])
    await client.query(`INSERT INTO "Project" (id, tenant_id, name) SELECT gen_random_uuid()::text, id, 'Project' FROM "Tenant"`)
    await client.query(`INSERT INTO tasks (id, tenant_id, project_id, title) SELECT gen_random_uuid()::text, tenant_id, id, 'Task' FROM "Project"`)
    await client.query('VACUUM ANALYZE')
  })
}

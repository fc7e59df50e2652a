import { quoteIdent } from '../database/sql-identifiers.js'
import { withLifecycleDatabase, type TenantLifecycleOptions } from './tenant-database.js'
import { hasTenantRoles, TENANT_ROLE_TABLE } from './tenant-roles.js'

export interface ListTenantsOptions extends TenantLifecycleOptions {
  /** Also count each tenant's rows per tenant table. */
  rows?: boolean | undefined
}

export interface TenantListing {
  id: string
  /** The registry's createdAt field, as ISO text, when it has one. */
  createdAt: string | null
  /** Whether the tenant has its own login role. */
  credentials: boolean
  /** With `rows`: row count per tenant table (schema.table). */
  rows?: Record<string, number>
}

/** Every tenant in the registry, in id order. */
export async function listTenants(options: ListTenantsOptions = {}): Promise<{ tenants: TenantListing[] }> {
  return withLifecycleDatabase(options, async (database) => {
    const { client, registry } = database
    const created = database.registryModel.fields.find((field) => field.name === 'createdAt' && field.type === 'DateTime')
    const createdColumn = created === undefined ? 'NULL' : `to_json(${quoteIdent(created.dbName ?? created.name)})#>>'{}'`
    const credentials = (await hasTenantRoles(database))
      ? `EXISTS (SELECT 1 FROM ${TENANT_ROLE_TABLE} m JOIN pg_roles r ON r.rolname = m.role WHERE m.tenant_id = ${quoteIdent(registry.column)}::text)`
      : 'false'
    const { rows } = await client.query<{ id: string; createdAt: string | null; credentials: boolean }>(
      `SELECT ${quoteIdent(registry.column)}::text AS id, ${createdColumn} AS "createdAt", ${credentials} AS credentials FROM ${registry.sql} ORDER BY ${quoteIdent(registry.column)}::text COLLATE "C"`,
    )
    if (options.rows !== true) return { tenants: rows }
    const counts = new Map<string, Record<string, number>>(rows.map((row) => [row.id, Object.fromEntries(database.tables.map((table) => [table.name, 0]))]))
    for (const table of database.tables) {
      const { rows: grouped } = await client.query<{ id: string; n: number }>(`SELECT ${quoteIdent(table.column)}::text AS id, count(*)::int AS n FROM ${table.sql} GROUP BY 1`)
      for (const { id, n } of grouped) {
        const entry = counts.get(id)
        if (entry !== undefined) entry[table.name] = n
      }
    }
    return { tenants: rows.map((row) => ({ ...row, rows: counts.get(row.id) ?? {} })) }
  })
}

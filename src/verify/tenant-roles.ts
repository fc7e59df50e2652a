import type pg from 'pg'
import { quoteIdent } from '../database/sql-identifiers.js'
import { TENANT_ROLE_POLICY, TENANT_ROLE_TABLE } from '../tenants/tenant-roles.js'
import type { CheckResult } from './report.js'
import { qualify, type TableRef } from './static-checks.js'

const privileges = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']

/**
 * Checks the tenants' own login roles (`tenant create --credentials`): the group
 * they belong to is found from the policies TO it, so a database without tenant
 * roles costs one query. A tenant role must hold no table privilege the
 * application role lacks, be mapped to a tenant of the registry, and reach no
 * tenant table without the restrictive policy that ties it to that tenant.
 */
export async function checkTenantRoles(client: pg.Client, appRole: string, tenantTables: TableRef[], sharedTables: TableRef[], registry: TableRef | null): Promise<CheckResult[]> {
  const { rows: groups } = await client.query<{ group: string }>(`SELECT DISTINCT r.rolname AS group FROM pg_policy p, unnest(p.polroles) g JOIN pg_roles r ON r.oid = g WHERE p.polname = $1 ORDER BY 1`, [TENANT_ROLE_POLICY])
  if (groups.length === 0) return []
  const results: CheckResult[] = []
  const groupNames = groups.map((row) => row.group)
  const { rows: members } = await client.query<{ role: string }>(
    `SELECT DISTINCT m.rolname AS role FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member WHERE g.rolname = ANY($1) ORDER BY 1`,
    [groupNames],
  )
  const mappingExists = (await client.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [TENANT_ROLE_TABLE])).rows[0]?.exists === true
  const mapping = new Map<string, string>()
  if (mappingExists) for (const row of (await client.query<{ role: string; tenant: string }>(`SELECT role::text, tenant_id AS tenant FROM ${TENANT_ROLE_TABLE}`)).rows) mapping.set(row.role, row.tenant)
  const registered = new Set<string>()
  if (registry !== null && registry.column !== null) {
    const { rows } = await client.query<{ id: string }>(`SELECT ${quoteIdent(registry.column)}::text AS id FROM ${quoteIdent(registry.schema)}.${quoteIdent(registry.table)}`)
    for (const row of rows) registered.add(row.id)
  }

  const tables = [...tenantTables, ...sharedTables].map((ref) => ({ ref, name: qualify(ref.schema, ref.table), sql: `${quoteIdent(ref.schema)}.${quoteIdent(ref.table)}` }))
  for (const { role } of members) {
    const tenant = mapping.get(role)
    if (tenant === undefined || (registry !== null && !registered.has(tenant))) {
      results.push({
        check: 'tenant-role-unmapped',
        status: 'fail',
        table: null,
        message: `Tenant role ${role} ${tenant === undefined ? 'is mapped to no tenant' : `is mapped to ${tenant}, which is not in the registry`}: it sees nothing today, but whoever edits the mapping decides whose rows it gets.`,
        fix: `DROP ROLE ${quoteIdent(role)}; (or \`prisma-tenancy tenant create <id> --credentials --app-role ${appRole}\` to map it)`,
      })
    } else results.push({ check: 'tenant-role-unmapped', status: 'pass', table: null, message: `${role} is mapped to tenant ${tenant}`, fix: '' })

    const { rows: extra } = await client.query<{ table: number; privilege: string }>(
      `SELECT t.i::int AS table, p AS privilege FROM unnest($3::text[]) WITH ORDINALITY AS t(name, i), unnest($4::text[]) p
        WHERE to_regclass(t.name) IS NOT NULL AND has_table_privilege($1, to_regclass(t.name), p) AND NOT has_table_privilege($2, to_regclass(t.name), p) ORDER BY 1, 2`,
      [role, appRole, tables.map((table) => table.sql), privileges],
    )
    for (const { table, privilege } of extra) {
      const name = tables[table - 1]?.name ?? null
      results.push({ check: 'tenant-role-privilege', status: 'fail', table: name, message: `Tenant role ${role} holds ${privilege} on ${name}, which the application role ${appRole} does not.`, fix: `REVOKE ${privilege} ON ${tables[table - 1]?.sql ?? ''} FROM ${quoteIdent(role)}; (and from its group)` })
    }
    if (extra.length === 0) results.push({ check: 'tenant-role-privilege', status: 'pass', table: null, message: `${role} holds no table privilege beyond ${appRole}'s`, fix: '' })
  }

  // A tenant table a tenant role can reach without the policy tying it to its tenant: the tenant setting alone decides.
  const { rows: unbound } = await client.query<{ table: number; group: string }>(
    `SELECT t.i::int AS table, g AS group FROM unnest($1::text[]) WITH ORDINALITY AS t(name, i), unnest($2::text[]) g
      WHERE to_regclass(t.name) IS NOT NULL
        AND (has_table_privilege(g, to_regclass(t.name), 'SELECT') OR has_table_privilege(g, to_regclass(t.name), 'INSERT') OR has_table_privilege(g, to_regclass(t.name), 'UPDATE') OR has_table_privilege(g, to_regclass(t.name), 'DELETE'))
        AND NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = to_regclass(t.name) AND p.polname = $3 AND NOT p.polpermissive AND g::regrole = ANY(p.polroles))
      ORDER BY 1, 2`,
    [tenantTables.map((ref) => `${quoteIdent(ref.schema)}.${quoteIdent(ref.table)}`), groupNames, TENANT_ROLE_POLICY],
  )
  for (const { table, group } of unbound) {
    const ref = tenantTables[table - 1]
    const name = ref === undefined ? null : qualify(ref.schema, ref.table)
    results.push({ check: 'tenant-role-unbound', status: 'fail', table: name, message: `Tenant roles (group ${group}) can reach ${name}, which has no ${TENANT_ROLE_POLICY} policy: there a tenant role acts as whatever tenant it sets.`, fix: `Run \`prisma-tenancy tenant create <id> --credentials --app-role ${appRole}\` for any tenant (it adds the policy to every tenant table), or REVOKE ALL ON ${name} FROM ${quoteIdent(group)};` })
  }
  if (unbound.length === 0) results.push({ check: 'tenant-role-unbound', status: 'pass', table: null, message: `every tenant table tenant roles can reach ties them to their tenant`, fix: '' })
  return results
}

import { createHash, randomBytes } from 'node:crypto'
import { withCredentials } from '../database/connection-url.js'
import { quoteIdent, quoteLiteral } from '../database/sql-identifiers.js'
import { TenancyError } from '../errors.js'
import type { LifecycleDatabase, LifecycleTable } from './tenant-database.js'

/** Where the lifecycle keeps its own state in the application database. */
export const LIFECYCLE_SCHEMA = 'prisma_tenancy'
/** role → tenant: which tenant each tenant login role is. No tenant role can write it. */
export const TENANT_ROLE_TABLE = `${LIFECYCLE_SCHEMA}.tenant_role`
/** The restrictive policy, on every tenant table and the registry, that ties a tenant role to its tenant. */
export const TENANT_ROLE_POLICY = 'tenancy_tenant_role'

const hash = (text: string, length: number) => createHash('sha256').update(text).digest('hex').slice(0, length)

/**
 * Roles are cluster-wide, so their names carry a hash of the database name: two
 * databases on one server (staging and production, or parallel tests) never
 * share a tenant's role or the group.
 */
export function groupRoleName(database: string): string {
  return `tenancy_${hash(database, 8)}_tenants`
}

export function tenantRoleName(database: string, tenantId: string): string {
  const name = `tenancy_${hash(database, 8)}_t_${tenantId}`
  return Buffer.byteLength(name) <= 63 ? name : `tenancy_${hash(database, 8)}_t_${hash(tenantId, 24)}`
}

export function newPassword(): string {
  return randomBytes(24).toString('base64url')
}

export function tenantConnectionString(database: LifecycleDatabase, role: string, password: string): string {
  return withCredentials(database.databaseUrl, role, password)
}

/** Whether the mapping table exists (the first `tenant create --credentials` makes it). */
export async function hasTenantRoles(database: LifecycleDatabase): Promise<boolean> {
  const { rows } = await database.client.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [TENANT_ROLE_TABLE])
  return rows[0]?.exists === true
}

/** The tenant's role in the mapping, or null (also when the lifecycle schema does not exist yet). */
export async function mappedRole(database: LifecycleDatabase, tenantId: string): Promise<string | null> {
  if (!(await hasTenantRoles(database))) return null
  const { rows } = await database.client.query<{ role: string }>(`SELECT role FROM ${TENANT_ROLE_TABLE} WHERE tenant_id = $1`, [tenantId])
  return rows[0]?.role ?? null
}

export async function roleExists(database: LifecycleDatabase, role: string): Promise<boolean> {
  return (await database.client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1
}

/** Ends the role's open sessions: a rotated or removed credential must not keep working on a connection made before. */
export async function endSessions(database: LifecycleDatabase, role: string): Promise<number> {
  const { rows } = await database.client.query<{ n: number }>('SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()', [role])
  return rows[0]?.n ?? 0
}

function boundTenant(table: LifecycleTable): string {
  const mapped = `(SELECT m.tenant_id FROM ${TENANT_ROLE_TABLE} m WHERE m.role = session_user)`
  return `${quoteIdent(table.column)} = ${table.columnType === 'text' ? mapped : `${mapped}::${table.columnType}`}`
}

/**
 * Two creates at once would race on the schema, the mapping table and the group role, and
 * deadlock on the tables the install puts policies on: one at a time, from the start of its
 * transaction (before it writes the registry).
 */
export async function lockTenantRoles(database: LifecycleDatabase): Promise<void> {
  await database.client.query(`SELECT pg_advisory_xact_lock(hashtext('prisma_tenancy.install_tenant_roles'))`)
}

const privileges = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'] as const

/**
 * Installs (idempotently, inside the caller's transaction) what makes a tenant's
 * own login role unable to act as any other tenant, whatever it sets the tenant
 * setting to:
 * - the mapping table, readable by a tenant role for its own row only;
 * - the group role every tenant role belongs to, holding exactly the
 *   application role's privileges on the schema's tables (copied, not inherited:
 *   membership in the app role would let a tenant role SET ROLE to it and leave
 *   the group's policies behind);
 * - per tenant table a RESTRICTIVE policy TO the group, tying the tenant column
 *   to the mapping. Policies TO a role apply to its members only, so the
 *   application role's queries plan exactly as before.
 * Tables added later get no group privileges until this runs again (the next
 * `tenant create --credentials`): tenant roles fail closed on them.
 */
export async function installTenantRoles(database: LifecycleDatabase, appRole: string): Promise<string> {
  const { client } = database
  if ((await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [appRole])).rowCount !== 1) {
    throw new TenancyError('CONFIG_INVALID', `The application role ${appRole} does not exist. Pass --app-role with the role your application connects as: tenant roles get exactly its privileges.`, { details: { appRole } })
  }
  const group = groupRoleName(database.database)
  await lockTenantRoles(database)
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${LIFECYCLE_SCHEMA}`)
  if (!(await hasTenantRoles(database))) {
    await client.query(`CREATE TABLE ${TENANT_ROLE_TABLE} (role name PRIMARY KEY, tenant_id text NOT NULL UNIQUE)`)
    await client.query(`ALTER TABLE ${TENANT_ROLE_TABLE} ENABLE ROW LEVEL SECURITY`)
    await client.query(`ALTER TABLE ${TENANT_ROLE_TABLE} FORCE ROW LEVEL SECURITY`)
    // Every tenant role's policy reads the mapping: it sees its own row only, and no policy lets it write.
    await client.query(`CREATE POLICY own_mapping ON ${TENANT_ROLE_TABLE} AS PERMISSIVE FOR SELECT TO PUBLIC USING (role = session_user)`)
  }
  if ((await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [group])).rowCount !== 1) {
    await client.query(`CREATE ROLE ${quoteIdent(group)} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE`)
  }
  const g = quoteIdent(group)
  await client.query(`GRANT USAGE ON SCHEMA ${LIFECYCLE_SCHEMA} TO ${g}`)
  await client.query(`GRANT SELECT ON ${TENANT_ROLE_TABLE} TO ${g}`)
  const { rows: held } = await client.query<{ connect: boolean }>('SELECT has_database_privilege($1, current_database(), $2) AS connect', [appRole, 'CONNECT'])
  if (held[0]?.connect === true) await client.query(`GRANT CONNECT ON DATABASE ${quoteIdent(database.database)} TO ${g}`)

  // The app role's privileges on every table of the schema's schemas, and on their sequences, copied to the group.
  const { rows: relations } = await client.query<{ schema: string; sql: string; kind: string; usage: boolean; privileges: string[] }>(
    `SELECT format('%I', n.nspname) AS schema, format('%I.%I', n.nspname, c.relname) AS sql, c.relkind::text AS kind,
            has_schema_privilege($1, n.oid, 'USAGE') AS usage,
            ARRAY(SELECT p FROM unnest(CASE WHEN c.relkind = 'S' THEN ARRAY['USAGE', 'SELECT', 'UPDATE'] ELSE $3::text[] END) p
                   WHERE CASE WHEN c.relkind = 'S' THEN has_sequence_privilege($1, c.oid, p) ELSE has_table_privilege($1, c.oid, p) END) AS privileges
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND n.oid IN (SELECT relnamespace FROM pg_class WHERE oid = ANY($2::regclass[]))
      ORDER BY 1`,
    [appRole, [database.registry, ...database.tables].map((table) => table.sql), privileges],
  )
  const schemas = new Set<string>()
  for (const relation of relations) {
    if (relation.usage) schemas.add(relation.schema)
    await client.query(`REVOKE ALL ON ${relation.kind === 'S' ? 'SEQUENCE ' : ''}${relation.sql} FROM ${g}`)
    if (relation.privileges.length > 0) await client.query(`GRANT ${relation.privileges.join(', ')} ON ${relation.kind === 'S' ? 'SEQUENCE ' : ''}${relation.sql} TO ${g}`)
  }
  for (const schema of schemas) await client.query(`GRANT USAGE ON SCHEMA ${schema} TO ${g}`)

  const { rows: existing } = await client.query<{ relid: number }>('SELECT polrelid::int AS relid FROM pg_policy WHERE polname = $1 AND $2::regrole = ANY(polroles)', [TENANT_ROLE_POLICY, group])
  const covered = new Set(existing.map((row) => row.relid))
  const { rows: oids } = await client.query<{ oid: number }>('SELECT t::regclass::oid::int AS oid FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i) ORDER BY i', [[database.registry, ...database.tables].map((table) => table.sql)])
  for (const [index, table] of [database.registry, ...database.tables].entries()) {
    if (covered.has(oids[index]!.oid)) continue
    const command = table === database.registry ? 'SELECT' : 'ALL'
    const check = table === database.registry ? '' : ` WITH CHECK (${boundTenant(table)})`
    await client.query(`CREATE POLICY ${TENANT_ROLE_POLICY} ON ${table.sql} AS RESTRICTIVE FOR ${command} TO ${g} USING (${boundTenant(table)})${check}`)
  }
  return group
}

/** Creates the tenant's login role (or sets a new password on it), a member of the group and nothing else. */
export async function ensureTenantRole(database: LifecycleDatabase, role: string, group: string, password: string, exists: boolean): Promise<void> {
  const attributes = `LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT PASSWORD ${quoteLiteral(password)}`
  await database.client.query(`${exists ? 'ALTER' : 'CREATE'} ROLE ${quoteIdent(role)} ${attributes}`)
  await database.client.query(`GRANT ${quoteIdent(group)} TO ${quoteIdent(role)}`)
}

import { randomBytes } from 'node:crypto'
import { TenancyError } from '../errors.js'
import { withClient } from './admin.js'
import { withCredentials, withDatabase } from './connection-url.js'
import { quoteIdent, quoteLiteral } from './sql-identifiers.js'

/**
 * The three roles an app needs (`prisma-tenancy init`): who owns the tables,
 * who the application connects as, and who does unscoped work.
 */
export type RoleKind = 'migration' | 'app' | 'admin'

export interface InitOptions {
  /** A superuser URL of the server (BYPASSRLS roles can only be created by a superuser). */
  adminUrl: string
  /** The application's database, created when missing, owned by the migration role. */
  database: string
  migrationRole: string
  appRole: string
  adminRole: string
  dryRun: boolean
}

export interface PlannedRole {
  name: string
  kind: RoleKind
  /** created: new (password below); kept: created by an earlier init, left as it is. */
  status: 'created' | 'kept'
  /** Only for a role created now: shown once, never stored by us. */
  password: string | null
}

export interface InitResult {
  dryRun: boolean
  database: string
  roles: PlannedRole[]
  /** The statements run (or, with dryRun, to run), in order. */
  sql: string[]
  /** Connection strings; a role kept from an earlier run shows <password> in place of its password. */
  urls: { app: string; migration: string; shadow: string; admin: string }
}

/** What init writes on each role it creates; a role without it is not ours to change. */
export const roleMarker = 'prisma-tenancy init'

const attributes: Record<RoleKind, string> = {
  // Owns the tables; FORCE ROW LEVEL SECURITY applies to it, so data changes need a tenant or the admin role.
  migration: 'LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE',
  // Row-level security applies in full: no superuser, no BYPASSRLS, member of nothing, owns nothing.
  app: 'LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT',
  // Unscoped work (admin screens, cross-tenant jobs): sees every tenant, owns nothing.
  admin: 'LOGIN NOSUPERUSER BYPASSRLS NOCREATEDB NOCREATEROLE',
}

const roleNamePattern = /^[a-z_][a-z0-9_]{0,62}$/

function checkName(name: string, flag: string): void {
  if (!roleNamePattern.test(name)) {
    throw new TenancyError('CONFIG_INVALID', `${flag} ${JSON.stringify(name)} is not a plain role name. Use lower-case letters, digits and underscores (at most 63), e.g. ${flag} app_user.`)
  }
}

/**
 * Plans and (unless dryRun) runs the SQL for the three roles, the database and
 * its shadow database (for `migrate dev` by a role without CREATEDB), and the
 * grants: the app role may connect and use the schema (its table grants come
 * from `generate --app-role`), the admin role gets DML on every table the
 * migration role creates, and the migration role is a member of the app role
 * so `verify --role <app>` can act as it. Idempotent: a role created by an
 * earlier run is kept as it is (its password is not changed); a role of the
 * same name that init did not create is refused.
 */
export async function initRoles(options: InitOptions): Promise<InitResult> {
  checkName(options.migrationRole, '--migration-role')
  checkName(options.appRole, '--app-role')
  checkName(options.adminRole, '--admin-role')
  if (new Set([options.migrationRole, options.appRole, options.adminRole]).size !== 3) {
    throw new TenancyError('CONFIG_INVALID', 'The migration, app and admin roles must be three different roles. Pass distinct --migration-role, --app-role and --admin-role.')
  }
  const serverUrl = withDatabase(options.adminUrl, 'postgres')
  const shadowDatabase = `${options.database}_shadow`
  return withClient(serverUrl, async (client) => {
    const { rows: [me] = [] } = await client.query<{ rolsuper: boolean; user: string }>('SELECT rolsuper, current_user AS user FROM pg_roles WHERE rolname = current_user')
    if (me?.rolsuper !== true) {
      throw new TenancyError(
        'PERMISSION_DENIED',
        `${me?.user ?? 'The connecting role'} is not a superuser, and only a superuser can create the admin role (BYPASSRLS). Run prisma-tenancy init with --database-url set to a superuser URL of the server (e.g. postgresql://postgres@host:5432/postgres).`,
      )
    }
    const kinds: Array<[RoleKind, string]> = [
      ['migration', options.migrationRole],
      ['app', options.appRole],
      ['admin', options.adminRole],
    ]
    const { rows: existing } = await client.query<{ rolname: string; comment: string | null }>(
      "SELECT rolname, shobj_description(oid, 'pg_authid') AS comment FROM pg_roles WHERE rolname = ANY($1)",
      [kinds.map(([, name]) => name)],
    )
    const foreign = existing.filter((row) => row.comment === null || !row.comment.startsWith(roleMarker))
    if (foreign.length > 0) {
      const flags = foreign.map((row) => `--${kinds.find(([, name]) => name === row.rolname)![0]}-role`).join(' / ')
      throw new TenancyError(
        'ROLE_CONFLICT',
        `The role(s) ${foreign.map((row) => row.rolname).join(', ')} already exist and were not created by prisma-tenancy init, which never changes a role it did not create. Pick other names with ${flags}.`,
        { details: { roles: foreign.map((row) => row.rolname) } },
      )
    }
    const kept = new Set(existing.map((row) => row.rolname))
    const roles: PlannedRole[] = kinds.map(([kind, name]) => ({ name, kind, status: kept.has(name) ? 'kept' : 'created', password: kept.has(name) ? null : randomBytes(18).toString('base64url') }))
    const sql: string[] = []
    for (const role of roles) {
      if (role.status === 'kept') continue
      sql.push(`CREATE ROLE ${quoteIdent(role.name)} ${attributes[role.kind]} PASSWORD ${quoteLiteral(role.password!)}`)
      sql.push(`COMMENT ON ROLE ${quoteIdent(role.name)} IS ${quoteLiteral(`${roleMarker}: ${role.kind} role`)}`)
    }
    const migration = quoteIdent(options.migrationRole)
    const app = quoteIdent(options.appRole)
    const admin = quoteIdent(options.adminRole)
    // verify --role <app>, connected as the migration role, acts as the app role with SET ROLE.
    sql.push(`GRANT ${app} TO ${migration}`)
    const { rows: databases } = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname = ANY($1)', [[options.database, shadowDatabase]])
    for (const name of [options.database, shadowDatabase]) {
      if (!databases.some((row) => row.datname === name)) sql.push(`CREATE DATABASE ${quoteIdent(name)} OWNER ${migration}`)
    }
    sql.push(`GRANT CONNECT ON DATABASE ${quoteIdent(options.database)} TO ${app}, ${admin}`)
    // In the application's database itself: the schema, and default privileges for tables the migration role creates.
    const inDatabase = [
      `GRANT USAGE ON SCHEMA public TO ${app}, ${admin}`,
      `ALTER DEFAULT PRIVILEGES FOR ROLE ${migration} IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${admin}`,
      `ALTER DEFAULT PRIVILEGES FOR ROLE ${migration} IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ${admin}`,
    ]
    if (!options.dryRun) {
      for (const statement of sql) await client.query(statement)
      await withClient(withDatabase(serverUrl, options.database), async (database) => {
        for (const statement of inDatabase) await database.query(statement)
      })
    }
    // A kept role's password was shown by the run that created it; the URL holds a placeholder.
    const url = (role: PlannedRole, database: string) => withCredentials(withDatabase(serverUrl, database), role.name, role.password ?? 'PASSWORD').replace(/:PASSWORD@/, ':<password>@')
    const [migrationRole, appRole, adminRole] = roles as [PlannedRole, PlannedRole, PlannedRole]
    return {
      dryRun: options.dryRun,
      database: options.database,
      roles,
      sql: [...sql, `\\connect ${options.database}`, ...inDatabase].map((statement) => `${statement};`),
      urls: { app: url(appRole, options.database), migration: url(migrationRole, options.database), shadow: url(migrationRole, shadowDatabase), admin: url(adminRole, options.database) },
    }
  })
}

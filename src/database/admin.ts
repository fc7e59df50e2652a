import pg from 'pg'
import { TenancyError } from '../errors.js'
import { databaseName, redactUrl, withCredentials, withDatabase } from './connection-url.js'
import { quoteIdent, quoteLiteral } from './sql-identifiers.js'

/** Runs `work` with a connected client and always closes it. */
export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  try {
    await client.connect()
  } catch (cause) {
    throw new TenancyError(
      'DATABASE_UNREACHABLE',
      `Cannot connect to ${redactUrl(url)}: ${(cause as Error).message}. Check that PostgreSQL is running and that the URL, user and password are right.`,
      { cause },
    )
  }
  try {
    return await work(client)
  } finally {
    await client.end().catch(() => undefined)
  }
}

export async function databaseExists(adminUrl: string, name: string): Promise<boolean> {
  return withClient(withDatabase(adminUrl, 'postgres'), async (client) => {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
    return rowCount === 1
  })
}

/** Creates the database named in `url` when it does not exist yet, as `prisma migrate` does. */
export async function ensureDatabase(url: string): Promise<void> {
  const name = databaseName(url)
  if (await databaseExists(url, name)) return
  await withClient(withDatabase(url, 'postgres'), async (client) => {
    await client.query(`CREATE DATABASE ${quoteIdent(name)}`).catch((cause: { code?: string }) => {
      if (cause.code !== '42P04') throw cause // created concurrently: fine
    })
  })
}

export async function createDatabase(adminUrl: string, name: string, options: { template?: string } = {}): Promise<string> {
  await withClient(withDatabase(adminUrl, 'postgres'), async (client) => {
    const template = options.template === undefined ? '' : ` TEMPLATE ${quoteIdent(options.template)}`
    await client.query(`CREATE DATABASE ${quoteIdent(name)}${template}`)
  })
  return withDatabase(adminUrl, name)
}

// FORCE: a test or bench database is dropped even while a connection to it is left open.
const dropDatabaseSql = (name: string) => `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`

export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  await withClient(withDatabase(adminUrl, 'postgres'), async (client) => {
    await client.query(dropDatabaseSql(name))
  })
}

/** Drops every database whose name starts with `prefix`; one that cannot be dropped does not stop the others. */
export async function dropDatabasesWithPrefix(adminUrl: string, prefix: string): Promise<void> {
  const failed = await withClient(withDatabase(adminUrl, 'postgres'), async (client) => {
    const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname', [prefix])
    const failures: Array<{ name: string; cause: unknown }> = []
    for (const { datname } of rows) {
      await client.query(dropDatabaseSql(datname)).catch((cause: unknown) => failures.push({ name: datname, cause }))
    }
    return failures
  })
  const [first] = failed
  if (first !== undefined) {
    const reason = first.cause instanceof Error ? first.cause.message : String(first.cause)
    throw new TenancyError(
      'DATABASE_SETUP_FAILED',
      `Could not drop ${failed.map((f) => f.name).join(', ')} on ${redactUrl(adminUrl)}: ${reason}. Drop them by hand (DROP DATABASE ... WITH (FORCE)).`,
      { cause: first.cause, details: { databases: failed.map((f) => f.name) } },
    )
  }
}

export interface AppRole {
  name: string
  password: string
}

/** What the test fixtures write on a role they create, so a later run knows the role is theirs. */
export const fixtureRoleMarker = 'prisma-tenancy test fixtures'

/**
 * Makes sure the application role exists: creates it, when missing, as what an
 * application should connect as (no superuser, no BYPASSRLS, no CREATEDB or
 * CREATEROLE, owning nothing), so row-level security applies in full. An
 * existing role is never changed (not even its password); one that bypasses
 * row-level security is refused, since tests as it would prove nothing.
 */
export async function ensureAppRole(adminUrl: string, role: AppRole): Promise<'created' | 'existing'> {
  return withClient(adminUrl, async (client) => {
    const attributes = `LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD ${quoteLiteral(role.password)}`
    const existing = async () =>
      (await client.query<{ rolsuper: boolean; rolbypassrls: boolean }>('SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1', [role.name])).rows[0]
    let found = await existing()
    if (found === undefined) {
      const user = (await client.query<{ user: string }>('SELECT current_user AS user')).rows[0]!.user
      const created = await client.query(`CREATE ROLE ${quoteIdent(role.name)} ${attributes}`).then(
        () => true,
        (cause: { code?: string }) => {
          // Two sessions may race to create the same cluster-wide role: the other one made it.
          if (cause.code === '42710' || cause.code === '23505') return false
          if (cause.code === '42501') {
            throw new TenancyError(
              'PERMISSION_DENIED',
              `The application role ${role.name} does not exist on ${redactUrl(adminUrl)}, and ${user} may not create roles (it needs CREATEROLE). Use an admin URL (a superuser, or a role with CREATEDB and CREATEROLE), or create the role first (prisma-tenancy init --app-role ${role.name}) and pass appRole: { name, password } to the fixtures.`,
              { cause, details: { role: role.name, user } },
            )
          }
          throw cause
        },
      )
      if (created) {
        await client.query(`COMMENT ON ROLE ${quoteIdent(role.name)} IS ${quoteLiteral(fixtureRoleMarker)}`)
        return 'created'
      }
      found = await existing()
    }
    if (found?.rolsuper === true || found?.rolbypassrls === true) {
      throw new TenancyError(
        'CONFIG_INVALID',
        `The application role ${role.name} on ${redactUrl(adminUrl)} is ${found.rolsuper ? 'a superuser' : 'BYPASSRLS'}: row-level security does not apply to it, so tests as it would prove nothing. Pass appRole: { name, password } naming a plain role (prisma-tenancy init creates one).`,
        { details: { role: role.name } },
      )
    }
    return 'existing'
  })
}

/**
 * The grants `generate --app-role` writes, for a database whose migrations
 * grant to no role: data access on tables with row-level security (tenant
 * tables), SELECT on the others (shared), never TRUNCATE (not subject to
 * row-level security), REFERENCES or TRIGGER, and nothing on Prisma's own
 * migrations table.
 */
export async function grantAppRole(databaseUrl: string, roleName: string, schema = 'public'): Promise<void> {
  await withClient(databaseUrl, async (client) => {
    const role = quoteIdent(roleName)
    const ns = quoteIdent(schema)
    await client.query(`GRANT CONNECT ON DATABASE ${quoteIdent(databaseName(databaseUrl))} TO ${role}`)
    await client.query(`GRANT USAGE ON SCHEMA ${ns} TO ${role}`)
    const { rows } = await client.query<{ name: string; rls: boolean }>(
      "SELECT c.relname AS name, c.relrowsecurity AS rls FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm') AND c.relname <> '_prisma_migrations' ORDER BY 1",
      [schema],
    )
    for (const table of rows) await client.query(`GRANT ${table.rls ? 'SELECT, INSERT, UPDATE, DELETE' : 'SELECT'} ON ${ns}.${quoteIdent(table.name)} TO ${role}`)
    await client.query(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA ${ns} TO ${role}`)
  })
}

export function appRoleUrl(databaseUrl: string, role: AppRole): string {
  return withCredentials(databaseUrl, role.name, role.password)
}

import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type pg from 'pg'
import { resolveProject } from '../../src/config/project-config.js'
import { appRoleUrl, createDatabase, dropDatabase, ensureAppRole, grantAppRole, withClient, type AppRole } from '../../src/database/admin.js'
import { withDatabase } from '../../src/database/connection-url.js'
import { quoteIdent } from '../../src/database/sql-identifiers.js'
import { migrateDeploy } from '../../src/migrate/migrate.js'
import { generatePolicies } from '../../src/policy/generate-policies.js'
import { setSigningKey } from '../../src/policy/signed-context.js'
import { defaultAppRole, uniqueDatabaseName } from '../../src/testing/test-server.js'

/** The example schema's tenant tables, as named in the database. */
export const tenantTables = ['Project', 'tasks', 'Comment', 'project_members'] as const

/**
 * The two roles contenders connect as. `app` is the plain application role:
 * row-level security applies in full. `unrestricted` is the same kind of
 * role with BYPASSRLS, for the baseline and the application-level filter:
 * PostgreSQL then plans their queries as if the tables had no policies, on
 * the very same rows and indexes.
 */
export interface BenchRoles {
  app: AppRole
  unrestricted: AppRole
}

export function benchRoles(): BenchRoles {
  const unrestricted = `tenancy_bench_norls_${process.pid}`
  return { app: defaultAppRole, unrestricted: { name: unrestricted, password: unrestricted } }
}

export async function createRoles(adminUrl: string, roles: BenchRoles): Promise<void> {
  await ensureAppRole(adminUrl, roles.app)
  await ensureAppRole(adminUrl, roles.unrestricted)
  await withClient(adminUrl, (client) => client.query(`ALTER ROLE ${quoteIdent(roles.unrestricted.name)} BYPASSRLS`))
}

/** Called after every bench database is dropped, so the role owns no grants any more. */
export async function dropRoles(adminUrl: string, roles: BenchRoles): Promise<void> {
  await withClient(adminUrl, (client) => client.query(`DROP ROLE IF EXISTS ${quoteIdent(roles.unrestricted.name)}`))
}

export interface BenchDatabase {
  name: string
  adminUrl: string
  /** As the application role: policies apply. */
  appUrl: string
  /** As the BYPASSRLS role: no policy applies. */
  unrestrictedUrl: string
  drop(): Promise<void>
}

export interface BenchDatabaseOptions {
  /** A migrations folder other than the project's. */
  migrations?: string | undefined
  /** Clone this database instead of migrating a new one. */
  template?: string | undefined
}

/** A database with the project's migrations (policies included) applied and both roles granted. */
export async function createBenchDatabase(serverAdminUrl: string, roles: BenchRoles, options: BenchDatabaseOptions = {}): Promise<BenchDatabase> {
  const name = uniqueDatabaseName('tenancy_bench')
  const adminUrl = await createDatabase(serverAdminUrl, name, options.template === undefined ? {} : { template: options.template })
  const drop = () => dropDatabase(serverAdminUrl, name)
  try {
    if (options.template === undefined) {
      await migrateDeploy({ databaseUrl: adminUrl, migrations: options.migrations })
      await requirePolicies(adminUrl)
      await grantAppRole(adminUrl, roles.app.name)
      await grantAppRole(adminUrl, roles.unrestricted.name)
    }
  } catch (error) {
    await drop().catch(() => undefined)
    throw error
  }
  const serverUrl = withDatabase(serverAdminUrl, name)
  return { name, adminUrl, appUrl: appRoleUrl(serverUrl, roles.app), unrestrictedUrl: appRoleUrl(serverUrl, roles.unrestricted), drop }
}

/**
 * A clone of `source` (seeded, with no connection open to it), whose policies `generate --signed`
 * then rewrites, as a user would switch, with a signing key stored: the same rows under the signed
 * tenant context.
 */
export async function createSignedBenchDatabase(serverAdminUrl: string, roles: BenchRoles, source: BenchDatabase, migrations?: string): Promise<BenchDatabase & { signingKey: string }> {
  const project = await resolveProject({ migrations })
  const folder = await mkdtemp(join(tmpdir(), 'prisma-tenancy-bench-signed-'))
  const database = await createBenchDatabase(serverAdminUrl, roles, { template: source.name })
  try {
    await cp(project.migrationsDir, folder, { recursive: true })
    await generatePolicies({ schema: project.schemaPath, migrations: folder, signed: true, name: 'bench_signed', now: new Date('2099-12-31T00:00:02Z') })
    await migrateDeploy({ databaseUrl: database.adminUrl, schema: project.schemaPath, migrations: folder })
    const { key } = await setSigningKey({ databaseUrl: database.adminUrl })
    return { ...database, signingKey: key }
  } catch (error) {
    await database.drop().catch(() => undefined)
    throw error
  } finally {
    await rm(folder, { recursive: true, force: true })
  }
}

/**
 * The comparison means nothing if the tenant tables are not actually under
 * forced row-level security after the project's migrations.
 */
async function requirePolicies(adminUrl: string): Promise<void> {
  const { rows } = await withClient(adminUrl, (client) =>
    client.query<{ relname: string }>(
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' AND c.relname = ANY($1) AND NOT (c.relrowsecurity AND c.relforcerowsecurity)`,
      [tenantTables],
    ),
  )
  if (rows.length > 0) {
    throw new Error(
      `The project's migrations leave ${rows.map((r) => r.relname).join(', ')} without forced row-level security. Run \`prisma-tenancy generate\` so prisma/migrations holds the policy migration, then run the benchmark again.`,
    )
  }
}

export async function runSql(url: string, work: (client: pg.Client) => Promise<unknown>): Promise<void> {
  await withClient(url, async (client) => {
    await work(client)
  })
}

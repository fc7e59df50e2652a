import { randomBytes } from 'node:crypto'
import { resolveProject } from '../config/project-config.js'
import { appRoleUrl, createDatabase, dropDatabase, dropDatabasesWithPrefix, ensureAppRole, grantAppRole, withClient, type AppRole } from '../database/admin.js'
import { TenancyError } from '../errors.js'
import { readPolicyHistory } from '../policy/policy-history.js'
import { withDatabase } from '../database/connection-url.js'
import { migrateDeploy } from '../migrate/migrate.js'
import type { RunningPostgres } from '../database/postgres-server.js'
import { startPostgres, type PostgresProvider } from './postgres-provider.js'

export interface TestServerOptions {
  /** Where PostgreSQL comes from. Default `auto`: DATABASE_URL's server if set, else embedded. */
  provider?: PostgresProvider | undefined
  /** Admin URL of a server to use (the url provider). Default: DATABASE_URL. */
  databaseUrl?: string | undefined
  /** Project directory holding prisma.config.ts. Default: the current directory. */
  cwd?: string | undefined
  schema?: string | undefined
  migrations?: string | undefined
  /**
   * The application role tests connect as. Default: the role the project's
   * migrations grant to (`generate --app-role`), else tenancy_app. Created
   * when missing; an existing role is used as it is, so give its password.
   */
  appRole?: Partial<AppRole> | undefined
}

/** What a test run shares: a server, a migrated template database and the application role. */
export interface TestServerInfo {
  kind: RunningPostgres['kind']
  adminUrl: string
  templateDatabase: string
  /** Every database of this run (the template and each test database) is named with this prefix. */
  databasePrefix: string
  appRole: AppRole
}

export interface TestServer extends TestServerInfo {
  /**
   * Drops every database of this run, the template included, and stops an
   * embedded server. A file whose tests were all skipped never runs its
   * afterAll hooks, so its database is swept up here.
   */
  stop(): Promise<void>
}

export const defaultAppRole: AppRole = { name: 'tenancy_app', password: 'tenancy_app' }

/** An existing role's password is never changed here: a wrong one is reported, with what to pass. */
async function checkLogin(url: string, role: AppRole): Promise<void> {
  await withClient(url, async () => undefined).catch((error: unknown) => {
    const code = (error as { cause?: { code?: string } }).cause?.code
    if (code !== '28P01' && code !== '28000') throw error
    throw new TenancyError(
      'PERMISSION_DENIED',
      `The tests cannot log in as the application role ${role.name} with the password they were given (${code === '28P01' ? 'password authentication failed' : 'no login allowed'}); an existing role's password is never changed. Pass appRole: { name: '${role.name}', password } to tenancyGlobalSetup() / startTestServer(), or use the embedded provider.`,
      { cause: error, details: { role: role.name } },
    )
  })
}

export function uniqueDatabaseName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`
}

/**
 * Starts (or connects to) PostgreSQL, applies the project's migrations once
 * to a template database and creates the application role. Test databases
 * are then cloned from the template, which takes milliseconds.
 */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const server = await startPostgres({ provider: options.provider, databaseUrl: options.databaseUrl })
  const databasePrefix = `${uniqueDatabaseName('tenancy')}_`
  const templateDatabase = `${databasePrefix}template`
  // Stopping goes on when a database cannot be dropped, but says which one is left.
  const dropRunDatabases = () => dropDatabasesWithPrefix(server.adminUrl, databasePrefix).catch((error: Error) => console.warn(`prisma-tenancy: ${error.message}`))
  let appRole: AppRole
  try {
    const project = await resolveProject({ cwd: options.cwd, schema: options.schema, migrations: options.migrations })
    // Tests run with production's grants: the roles the generated migrations grant to.
    const granted = [...new Set([...(await readPolicyHistory(project.migrationsDir)).tables.values()].flatMap((table) => [...table.grants]))].sort()
    if (options.appRole?.name === undefined && granted.length > 1) {
      throw new TenancyError('CONFIG_INVALID', `The migrations grant to several roles (${granted.join(', ')}). Pass appRole: { name, password } to name the one the application connects as.`)
    }
    appRole = { name: options.appRole?.name ?? granted[0] ?? defaultAppRole.name, password: options.appRole?.password ?? defaultAppRole.password }
    for (const name of granted) if (name !== appRole.name) await ensureAppRole(server.adminUrl, { name, password: defaultAppRole.password })
    await ensureAppRole(server.adminUrl, appRole)
    const templateUrl = await createDatabase(server.adminUrl, templateDatabase)
    await migrateDeploy({ cwd: options.cwd, schema: options.schema, migrations: options.migrations, databaseUrl: templateUrl })
    if (!granted.includes(appRole.name)) await grantAppRole(templateUrl, appRole.name)
    await checkLogin(appRoleUrl(templateUrl, appRole), appRole)
  } catch (error) {
    await dropRunDatabases()
    await server.stop()
    throw error
  }
  return {
    kind: server.kind,
    adminUrl: server.adminUrl,
    templateDatabase,
    databasePrefix,
    appRole,
    async stop() {
      await dropRunDatabases()
      await server.stop()
    },
  }
}

export interface TestDatabase {
  name: string
  /** Superuser URL: for setup the application must never do (DDL, fixtures across tenants). */
  adminUrl: string
  /** URL of the plain application role: row-level security applies in full. */
  appUrl: string
  appRole: AppRole
  drop(): Promise<void>
}

/** A fresh database cloned from the migrated template. */
export async function createTestDatabase(server: TestServerInfo): Promise<TestDatabase> {
  const name = `${server.databasePrefix}${randomBytes(4).toString('hex')}`
  const adminUrl = await createDatabase(server.adminUrl, name, { template: server.templateDatabase, revokeTemporaryFrom: server.appRole.name })
  return {
    name,
    adminUrl,
    appUrl: appRoleUrl(withDatabase(server.adminUrl, name), server.appRole),
    appRole: server.appRole,
    drop: () => dropDatabase(server.adminUrl, name),
  }
}

/** Runs `work` on a fresh test database and drops it afterwards, whether `work` succeeds or throws. */
export async function withTestDatabase<T>(server: TestServerInfo, work: (database: TestDatabase) => Promise<T>): Promise<T> {
  const database = await createTestDatabase(server)
  try {
    return await work(database)
  } finally {
    await database.drop()
  }
}

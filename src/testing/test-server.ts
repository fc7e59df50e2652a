import { randomBytes } from 'node:crypto'
import { appRoleUrl, createDatabase, dropDatabase, dropDatabasesWithPrefix, ensureAppRole, grantAppRole, type AppRole } from '../database/admin.js'
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
  /** The application role tests connect as. Default: tenancy_app. */
  appRole?: AppRole | undefined
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
  const appRole = options.appRole ?? defaultAppRole
  // Stopping goes on when a database cannot be dropped, but says which one is left.
  const dropRunDatabases = () => dropDatabasesWithPrefix(server.adminUrl, databasePrefix).catch((error: Error) => console.warn(`prisma-tenancy: ${error.message}`))
  try {
    await ensureAppRole(server.adminUrl, appRole)
    const templateUrl = await createDatabase(server.adminUrl, templateDatabase)
    await migrateDeploy({ cwd: options.cwd, schema: options.schema, migrations: options.migrations, databaseUrl: templateUrl })
    await grantAppRole(templateUrl, appRole.name)
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
  const adminUrl = await createDatabase(server.adminUrl, name, { template: server.templateDatabase })
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

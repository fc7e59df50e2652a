import { parseDatabaseUrl, withDatabase } from './connection-url.js'
import { withClient } from './admin.js'
import { startEmbeddedPostgres, type RunningPostgres } from './embedded-postgres.js'

export type { RunningPostgres } from './embedded-postgres.js'

export interface PostgresServerOptions {
  /** An admin (superuser or CREATEDB + CREATEROLE) URL. When absent, an embedded PostgreSQL is started. */
  databaseUrl?: string | undefined
  log?: (message: unknown) => void
}

/**
 * The PostgreSQL server to work against: the one `databaseUrl` names, checked
 * to be reachable, or else an embedded one started for this process.
 */
export async function usePostgresServer(options: PostgresServerOptions = {}): Promise<RunningPostgres> {
  if (options.databaseUrl === undefined || options.databaseUrl === '') {
    return startEmbeddedPostgres(options.log === undefined ? {} : { log: options.log })
  }
  const adminUrl = withDatabase(parseDatabaseUrl(options.databaseUrl), 'postgres')
  await withClient(adminUrl, async (client) => {
    await client.query('SELECT 1')
  })
  return { kind: 'url', adminUrl, stop: async () => undefined }
}

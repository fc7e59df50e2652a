import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadEmbeddedPostgres } from '../../src/database/embedded-postgres.js'
import { freePort } from './free-port.js'

export interface RestartablePostgres {
  /** A superuser URL for the `postgres` database. */
  adminUrl: string
  /** Stops the server (fast shutdown: every backend is terminated) and starts it again on the same port and data. */
  restart(): Promise<void>
  /** Stops the server and deletes its data. */
  stop(): Promise<void>
}

/**
 * A PostgreSQL of one test's own, to restart under load without disturbing
 * the server other tests share. It is the embedded server startEmbeddedPostgres
 * runs, started the same way (as root, the package runs it as a `postgres`
 * user who owns the data directory under the temporary folder), but kept
 * persistent: that handle deletes its data on stop, so it cannot restart.
 */
export async function startRestartablePostgres(): Promise<RestartablePostgres> {
  // The same loader as the shared embedded server: from a checkout the postgres OS user cannot enter, it
  // runs a copy of the binaries that user can reach.
  const EmbeddedPostgres = await loadEmbeddedPostgres()
  const port = await freePort()
  const databaseDir = await mkdtemp(join(tmpdir(), 'prisma-tenancy-restart-pg-'))
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => undefined,
    onError: () => undefined,
  })
  const remove = () => rm(databaseDir, { recursive: true, force: true })
  try {
    await server.initialise()
    await server.start()
  } catch (error) {
    await server.stop().catch(() => undefined)
    await remove()
    throw error
  }
  return {
    adminUrl: `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`,
    async restart() {
      await server.stop()
      await server.start()
    },
    async stop() {
      await server.stop().catch(() => undefined)
      await remove()
    },
  }
}

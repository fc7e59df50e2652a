import { existsSync } from 'node:fs'
import { appendFile, chown, mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { withClient } from '../database/admin.js'
import { withDatabase } from '../database/connection-url.js'
import { forgetOnStop, freePort, stopOnSignal, type RunningPostgres } from '../database/embedded-postgres.js'
import { asServerUser, osUser, run, serverFolder, startServer, stopServer } from '../database/server-user.js'
import { quoteIdent } from '../database/sql-identifiers.js'
import { TenancyError } from '../errors.js'

/** Where Citus comes from on this project's machines: builds it into PostgreSQL 15 from Debian's packages. */
export const citusInstallScript = '../shared/citus/install.sh'

const defaultPgConfig = '/usr/lib/postgresql/15/bin/pg_config'

export interface CitusNode {
  role: 'coordinator' | 'worker'
  port: number
  dataDir: string
  /** Superuser URL of this node's `postgres` database. */
  adminUrl: string
}

/**
 * A coordinator and its workers, each a PostgreSQL server of the machine's own
 * binaries with Citus preloaded, on free ports of 127.0.0.1. `adminUrl` is the
 * coordinator's `postgres` database, which has the extension and the workers
 * registered, so roles created there reach every node.
 */
export interface CitusCluster extends RunningPostgres {
  kind: 'citus'
  coordinator: CitusNode
  workers: CitusNode[]
  /**
   * Creates a database on every node, creates the extension in each and
   * registers the workers with the coordinator (Citus keeps its node list per
   * database). Returns the coordinator's superuser URL of it.
   */
  createDatabase(name: string): Promise<string>
  dropDatabase(name: string): Promise<void>
}

export interface CitusClusterOptions {
  /** Default 2. */
  workers?: number | undefined
  /** The pg_config of the PostgreSQL that has Citus. Default: PG_CONFIG, else PostgreSQL 15's. */
  pgConfig?: string | undefined
}

function pgConfigPath(options: CitusClusterOptions): string {
  return options.pgConfig ?? process.env.PG_CONFIG ?? defaultPgConfig
}

/** Whether Citus is installed for that PostgreSQL; when not, the reason, naming the install script. */
export async function citusAvailable(options: CitusClusterOptions = {}): Promise<{ available: true; bindir: string } | { available: false; reason: string }> {
  const pgConfig = pgConfigPath(options)
  if (!existsSync(pgConfig)) return { available: false, reason: `${pgConfig} is missing: install PostgreSQL 15, then Citus with \`bash ${citusInstallScript}\`.` }
  const [{ stdout: libdir }, { stdout: bindir }] = await Promise.all([run(pgConfig, ['--pkglibdir']), run(pgConfig, ['--bindir'])])
  if (!existsSync(join(libdir.trim(), 'citus.so'))) {
    return { available: false, reason: `Citus is not installed for ${pgConfig} (no citus.so in ${libdir.trim()}): run \`bash ${citusInstallScript}\` as root.` }
  }
  return { available: true, bindir: bindir.trim() }
}

const nodeSettings = (port: number, dataDir: string) =>
  [
    '',
    '# prisma-tenancy citus cluster node',
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${dataDir}'`,
    "shared_preload_libraries = 'citus'",
    // Throwaway test data: durability buys nothing and costs seconds on a busy machine.
    'fsync = off',
    'synchronous_commit = off',
    'full_page_writes = off',
    '',
  ].join('\n')

async function registerNodes(coordinatorUrl: string, coordinator: CitusNode, workers: CitusNode[]): Promise<void> {
  await withClient(coordinatorUrl, async (client) => {
    await client.query('SELECT citus_set_coordinator_host($1, $2)', ['127.0.0.1', coordinator.port])
    for (const worker of workers) await client.query('SELECT citus_add_node($1, $2)', ['127.0.0.1', worker.port])
  })
}

async function createExtension(url: string): Promise<void> {
  await withClient(url, (client) => client.query('CREATE EXTENSION IF NOT EXISTS citus'))
}

/**
 * Starts a Citus cluster: a coordinator and `workers` workers (default 2), in
 * one temporary directory, registered with each other. `stop()` stops every
 * server and deletes the directory; Ctrl-C and SIGTERM do too.
 */
export async function startCitusCluster(options: CitusClusterOptions = {}): Promise<CitusCluster> {
  const available = await citusAvailable(options)
  if (!available.available) throw new TenancyError('DATABASE_SETUP_FAILED', `Cannot start a Citus cluster. ${available.reason}`)
  const { bindir } = available
  const user = await osUser()
  const root = await serverFolder('prisma-tenancy-citus-', user)
  const roles: CitusNode['role'][] = ['coordinator', ...Array.from({ length: options.workers ?? 2 }, () => 'worker' as const)]
  const nodes: CitusNode[] = []
  for (const [index, role] of roles.entries()) {
    const dataDir = join(root, role === 'coordinator' ? 'coordinator' : `worker${index}`)
    const port = await freePort()
    nodes.push({ role, port, dataDir, adminUrl: `postgresql://postgres@127.0.0.1:${port}/postgres` })
  }
  const started: CitusNode[] = []
  let stopped = false
  const stopAll = async () => {
    await Promise.allSettled(started.map((node) => stopServer(user, bindir, node.dataDir)))
    await rm(root, { recursive: true, force: true })
  }
  const [coordinator, ...workers] = nodes
  if (coordinator === undefined) throw new TenancyError('CONFIG_INVALID', 'A Citus cluster needs a coordinator.')
  const handle: CitusCluster = {
    kind: 'citus',
    adminUrl: coordinator.adminUrl,
    coordinator,
    workers,
    async createDatabase(name) {
      for (const node of nodes) await withClient(node.adminUrl, (client) => client.query(`CREATE DATABASE ${quoteIdent(name)}`))
      await Promise.all(nodes.map((node) => createExtension(withDatabase(node.adminUrl, name))))
      const url = withDatabase(coordinator.adminUrl, name)
      await registerNodes(url, coordinator, workers)
      return url
    },
    async dropDatabase(name) {
      for (const node of nodes) await withClient(node.adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`))
    },
    async stop() {
      if (stopped) return
      stopped = true
      forgetOnStop(handle)
      await stopAll()
    },
  }
  try {
    await Promise.all(
      nodes.map(async (node) => {
        await mkdir(node.dataDir, { mode: 0o700 })
        if (user !== null) await chown(node.dataDir, user.uid, user.gid)
        await asServerUser(user, join(bindir, 'initdb'), ['-D', node.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'])
        await appendFile(join(node.dataDir, 'postgresql.conf'), nodeSettings(node.port, node.dataDir))
        await startServer(user, bindir, node.dataDir, join(node.dataDir, 'server.log'))
        started.push(node)
        await createExtension(node.adminUrl)
      }),
    )
    await registerNodes(coordinator.adminUrl, coordinator, workers)
  } catch (cause) {
    stopped = true
    await stopAll()
    throw new TenancyError('DATABASE_SETUP_FAILED', `Could not start the Citus cluster: ${(cause as Error).message}. Check that \`bash ${citusInstallScript}\` ran for ${pgConfigPath(options)}.`, { cause })
  }
  stopOnSignal(handle)
  return handle
}

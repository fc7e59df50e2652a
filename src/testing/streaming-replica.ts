import { existsSync } from 'node:fs'
import { appendFile, chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { isIPv4, isIPv6 } from 'node:net'
import { join } from 'node:path'
import { withClient } from '../database/admin.js'
import { parseDatabaseUrl, redactUrl } from '../database/connection-url.js'
import { forgetOnStop, freePort, stopOnSignal, type RunningPostgres } from '../database/embedded-postgres.js'
import { asServerUser, osUser, run, serverFolder, startServer, stopServer } from '../database/server-user.js'
import { TenancyError } from '../errors.js'

/**
 * A hot standby of a primary, streaming its WAL: a physical copy of the whole
 * server (roles, every database, tables, policies and FORCE), read-only, on a
 * free port of 127.0.0.1.
 */
export interface StreamingReplica extends RunningPostgres {
  kind: 'replica'
  port: number
  dataDir: string
  /** `url` (any role and database of the primary) pointed at the replica: same credentials and database. */
  url(url: string): string
  /**
   * Resolves once the replica has replayed everything the primary has written
   * so far (its current WAL position), so a read on the replica sees every
   * write committed before the call.
   */
  waitForReplay(options?: { timeoutMs?: number }): Promise<void>
}

export interface StreamingReplicaOptions {
  /** The pg_config of the primary's major version. Default: PG_CONFIG, else Debian's /usr/lib/postgresql/<major>/bin/pg_config, else pg_config on PATH. */
  pgConfig?: string | undefined
}

type Availability = { available: true; bindir: string } | { available: false; reason: string }

/**
 * Hot standby refuses to start when one of these is lower than on the primary;
 * a primary configured outside its data directory (Debian's /etc/postgresql)
 * does not hand them over in the base backup, so they are copied by value.
 */
const standbyMinimums = ['max_connections', 'max_worker_processes', 'max_wal_senders', 'max_prepared_transactions', 'max_locks_per_transaction']

interface PrimaryFacts {
  major: number
  walLevel: string
  maxWalSenders: number
  canReplicate: boolean
  user: string
  hbaFile: string
  minimums: Array<{ name: string; setting: string }>
}

async function primaryFacts(adminUrl: string): Promise<PrimaryFacts> {
  return withClient(adminUrl, async (client) => {
    const { rows } = await client.query<{ name: string; setting: string }>('SELECT name, setting FROM pg_settings WHERE name = ANY($1) ORDER BY name', [
      ['server_version_num', 'wal_level', 'hba_file', ...standbyMinimums],
    ])
    const setting = (name: string) => rows.find((row) => row.name === name)?.setting ?? ''
    const { rows: roles } = await client.query<{ user: string; replicate: boolean }>('SELECT current_user::text AS user, rolsuper OR rolreplication AS replicate FROM pg_roles WHERE rolname = current_user')
    return {
      major: Math.floor(Number(setting('server_version_num')) / 10000),
      walLevel: setting('wal_level'),
      maxWalSenders: Number(setting('max_wal_senders')),
      canReplicate: roles[0]?.replicate === true,
      user: roles[0]?.user ?? '?',
      hbaFile: setting('hba_file'),
      minimums: rows.filter((row) => standbyMinimums.includes(row.name)),
    }
  })
}

async function majorOf(pgConfig: string): Promise<number | undefined> {
  const { stdout } = await run(pgConfig, ['--version']).catch(() => ({ stdout: '' }))
  const match = /PostgreSQL (\d+)/.exec(stdout)
  return match === null ? undefined : Number(match[1])
}

/** The bindir of the first pg_config of `major` whose bindir has pg_basebackup, pg_ctl and postgres. */
async function binariesOf(major: number, options: StreamingReplicaOptions): Promise<Availability> {
  const candidates = [options.pgConfig, process.env.PG_CONFIG, `/usr/lib/postgresql/${major}/bin/pg_config`, 'pg_config'].filter((path): path is string => path !== undefined && path !== '')
  for (const pgConfig of candidates) {
    if ((await majorOf(pgConfig)) !== major) continue
    const bindir = (await run(pgConfig, ['--bindir'])).stdout.trim()
    if (['pg_basebackup', 'pg_ctl', 'postgres'].every((binary) => existsSync(join(bindir, binary)))) return { available: true, bindir }
  }
  return {
    available: false,
    reason: `No PostgreSQL ${major} binaries with pg_basebackup were found (looked at ${candidates.join(', ')}); a replica needs the primary's major version. The embedded PostgreSQL from npm ships initdb, pg_ctl and postgres only, no pg_basebackup. Install PostgreSQL ${major} (e.g. apt-get install postgresql-${major}) and set PG_CONFIG to its pg_config, or test against a server whose version is installed (DATABASE_URL).`,
  }
}

/** The pg_hba.conf address for connections to `host`: the address itself, else any of the server's own. */
function hbaAddress(host: string): string {
  if (isIPv4(host)) return `${host}/32`
  const bare = host.replace(/^\[|\]$/g, '')
  return isIPv6(bare) ? `${bare}/128` : 'samehost'
}

/** A physical replication connection (what pg_basebackup and the standby open), refused by pg_hba.conf unless a `replication` line lets it in. */
async function replicationRefusal(adminUrl: string, facts: PrimaryFacts): Promise<string | undefined> {
  const url = new URL(adminUrl)
  url.searchParams.set('replication', 'true')
  try {
    await withClient(url.toString(), (client) => client.query('IDENTIFY_SYSTEM'))
    return undefined
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause
    if (cause?.code !== '28000') throw error
    return `${redactUrl(adminUrl)} refuses replication connections for ${facts.user} (${cause.message ?? 'pg_hba.conf'}). Add the line \`host replication ${facts.user} ${hbaAddress(url.hostname)} trust\` (or scram-sha-256 with a password) to ${facts.hbaFile}, then run \`SELECT pg_reload_conf()\` on it.`
  }
}

/**
 * Whether a streaming replica of the server at `adminUrl` (a superuser or
 * REPLICATION role) can be started here; when not, the reason and the fix.
 * Nothing on the primary is changed.
 */
export async function replicaAvailable(adminUrl: string, options: StreamingReplicaOptions = {}): Promise<Availability> {
  return (await probePrimary(parseDatabaseUrl(adminUrl, 'replicaAvailable(adminUrl)'), options)).availability
}

async function probePrimary(url: string, options: StreamingReplicaOptions): Promise<{ availability: Availability; facts: PrimaryFacts }> {
  const facts = await primaryFacts(url)
  const unavailable = (reason: string) => ({ availability: { available: false as const, reason }, facts })
  if (facts.walLevel === 'minimal' || facts.maxWalSenders === 0) {
    return unavailable(`${redactUrl(url)} has wal_level = ${facts.walLevel} and max_wal_senders = ${facts.maxWalSenders}: a replica needs wal_level = replica and max_wal_senders > 0 (ALTER SYSTEM SET ..., then restart that server).`)
  }
  if (!facts.canReplicate) return unavailable(`${facts.user} is neither superuser nor REPLICATION: pass the URL of a role that is (ALTER ROLE ${facts.user} REPLICATION).`)
  const binaries = await binariesOf(facts.major, options)
  if (!binaries.available) return { availability: binaries, facts }
  const refusal = await replicationRefusal(url, facts)
  return refusal === undefined ? { availability: binaries, facts } : unavailable(refusal)
}

const replicaSettings = (port: number, socketDir: string, minimums: PrimaryFacts['minimums']) =>
  [
    '',
    '# prisma-tenancy streaming replica (read after postgresql.conf: these win)',
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${socketDir}'`,
    'hot_standby = on',
    // Throwaway test data: durability buys nothing and costs seconds on a busy machine.
    'fsync = off',
    ...minimums.map(({ name, setting }) => `${name} = ${setting}`),
    '',
  ].join('\n')

// The replica's own access rules, whatever the primary's are (a base backup of a server configured outside
// its data directory, as Debian's, has none): a throwaway server on 127.0.0.1, as the Citus cluster's nodes.
// No replication line: nothing replicates from it.
const replicaHba = ['local all all trust', 'host all all 127.0.0.1/32 trust', ''].join('\n')

/**
 * Starts a streaming replica of the server at `adminUrl` (a superuser or
 * REPLICATION role): `pg_basebackup -R` of it into a temporary directory,
 * started as a hot standby with the binaries of the primary's major version.
 * No replication slot is created on the primary, so a replica that is never
 * stopped leaves nothing behind there. `stop()` stops it and deletes its
 * directory; Ctrl-C and SIGTERM do too.
 */
export async function startStreamingReplica(adminUrl: string, options: StreamingReplicaOptions = {}): Promise<StreamingReplica> {
  const primaryUrl = parseDatabaseUrl(adminUrl, 'startStreamingReplica(adminUrl)')
  const { availability, facts } = await probePrimary(primaryUrl, options)
  if (!availability.available) throw new TenancyError('DATABASE_SETUP_FAILED', `Cannot start a streaming replica. ${availability.reason}`)
  const { bindir } = availability
  const user = await osUser()
  const root = await serverFolder('prisma-tenancy-replica-', user)
  const dataDir = join(root, 'data')
  const port = await freePort()
  let started = false
  let stopped = false
  const stopReplica = async () => {
    if (started) await stopServer(user, bindir, dataDir).catch(() => undefined)
    await rm(root, { recursive: true, force: true })
  }
  const onReplica = (url: string) => {
    const next = new URL(url)
    next.hostname = '127.0.0.1'
    next.port = String(port)
    return next.toString()
  }
  const handle: StreamingReplica = {
    kind: 'replica',
    port,
    dataDir,
    adminUrl: onReplica(primaryUrl),
    url: onReplica,
    async waitForReplay({ timeoutMs = 60_000 } = {}) {
      const target = await withClient(primaryUrl, async (client) => (await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]?.lsn)
      const deadline = Date.now() + timeoutMs
      await withClient(handle.adminUrl, async (client) => {
        for (;;) {
          const { rows } = await client.query<{ replayed: string | null; caughtUp: boolean | null }>('SELECT pg_last_wal_replay_lsn()::text AS replayed, pg_last_wal_replay_lsn() >= $1::pg_lsn AS "caughtUp"', [target])
          if (rows[0]?.caughtUp === true) return
          if (Date.now() > deadline) {
            throw new TenancyError(
              'DATABASE_SETUP_FAILED',
              `The replica on port ${port} replayed the primary's WAL up to ${rows[0]?.replayed ?? 'nothing'} in ${timeoutMs} ms, not up to ${target}. Its log is ${join(root, 'server.log')}; a replica that lost the primary's WAL must be started again.`,
              { details: { target, replayed: rows[0]?.replayed ?? null } },
            )
          }
          await new Promise((resolve) => setTimeout(resolve, 20))
        }
      })
    },
    async stop() {
      if (stopped) return
      stopped = true
      forgetOnStop(handle)
      await stopReplica()
    },
  }
  try {
    await mkdir(dataDir, { mode: 0o700 })
    if (user !== null) await chown(dataDir, user.uid, user.gid)
    // --checkpoint=fast: a spread checkpoint on the primary could take minutes. -R writes primary_conninfo and standby.signal.
    await asServerUser(user, join(bindir, 'pg_basebackup'), ['--dbname', primaryUrl, '--pgdata', dataDir, '--write-recovery-conf', '--wal-method=stream', '--checkpoint=fast', '--no-sync', '--no-password']).catch((cause: { stderr?: string }) => {
      throw new Error(`pg_basebackup failed: ${cause.stderr?.trim() ?? String(cause)}`, { cause })
    })
    if (!existsSync(join(dataDir, 'postgresql.conf'))) await writeFile(join(dataDir, 'postgresql.conf'), '')
    await writeFile(join(dataDir, 'pg_hba.conf'), replicaHba)
    await appendFile(join(dataDir, 'postgresql.auto.conf'), replicaSettings(port, root, facts.minimums))
    if (user !== null) for (const file of ['postgresql.conf', 'pg_hba.conf', 'postgresql.auto.conf']) await chown(join(dataDir, file), user.uid, user.gid)
    started = true
    await startServer(user, bindir, dataDir, join(root, 'server.log'))
  } catch (cause) {
    stopped = true
    // The log goes with the directory: its last lines say why the server did not start.
    const log = await readFile(join(root, 'server.log'), 'utf8').then((text) => ` Its log ended: ${text.trim().split('\n').slice(-5).join(' | ')}`, () => '')
    await stopReplica()
    throw new TenancyError('DATABASE_SETUP_FAILED', `Could not start a streaming replica of ${redactUrl(primaryUrl)}: ${(cause as Error).message}.${log}`, { cause })
  }
  stopOnSignal(handle)
  return handle
}

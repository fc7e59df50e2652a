import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'

export interface PgBouncer {
  /** `url` with host and port replaced by PgBouncer's. */
  route(url: string): string
  stop(): Promise<void>
}

/** The pgbouncer executable, or undefined when it is not installed. */
export function findPgBouncer(): string | undefined {
  for (const candidate of ['pgbouncer', '/usr/sbin/pgbouncer', '/usr/bin/pgbouncer']) {
    if (spawnSync(candidate, ['--version'], { stdio: 'ignore' }).status === 0) return candidate
  }
  return undefined
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

/**
 * Starts PgBouncer in transaction mode in front of the server of `serverUrl`,
 * with a pool of `poolSize` server connections per user and database, for
 * the users given (with their passwords, which PgBouncer presents to the
 * server), and further `[pgbouncer]` settings. Clients authenticate with
 * `trust`: it listens on 127.0.0.1 only.
 */
export async function startPgBouncer(binary: string, serverUrl: string, users: Array<{ name: string; password: string }>, poolSize = 2, settings: string[] = []): Promise<PgBouncer> {
  const server = new URL(serverUrl)
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'prisma-tenancy-pgbouncer-'))
  const quote = (value: string) => `"${value.replaceAll('"', '""')}"`
  await writeFile(join(dir, 'userlist.txt'), users.map((user) => `${quote(user.name)} ${quote(user.password)}\n`).join(''))
  await writeFile(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${server.hostname} port=${server.port || '5432'}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${poolSize}`,
      'max_client_conn = 200',
      'ignore_startup_parameters = extra_float_digits,options',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      ...settings,
      '',
    ].join('\n'),
  )
  // PgBouncer refuses to run as root; it then drops to an unprivileged user,
  // who must be able to read its files and write its log.
  const asRoot = process.getuid?.() === 0
  if (asRoot) await chmod(dir, 0o777)
  const child: ChildProcess = spawn(binary, [...(asRoot ? ['-u', 'nobody'] : []), join(dir, 'pgbouncer.ini')], { stdio: 'ignore' })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const route = (url: string): string => {
    const routed = new URL(url)
    routed.hostname = '127.0.0.1'
    routed.port = String(port)
    return routed.toString()
  }

  const user = users[0]
  const probeUrl = new URL(route(serverUrl))
  if (user !== undefined) {
    probeUrl.username = user.name
    probeUrl.password = user.password
  }
  for (let attempt = 0; ; attempt += 1) {
    const probe = new pg.Client({ connectionString: probeUrl.toString() })
    try {
      await probe.connect()
      await probe.query('SELECT 1')
      await probe.end()
      break
    } catch (error) {
      await probe.end().catch(() => undefined)
      if (attempt >= 50 || child.exitCode !== null) {
        child.kill()
        const log = await readFile(join(dir, 'pgbouncer.log'), 'utf8').catch(() => '')
        await rm(dir, { recursive: true, force: true })
        throw new Error(`PgBouncer did not start: ${(error as Error).message}\n${log}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  return {
    route,
    async stop() {
      child.kill('SIGTERM')
      await exited
      await rm(dir, { recursive: true, force: true })
    },
  }
}

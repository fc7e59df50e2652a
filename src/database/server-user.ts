import { execFile } from 'node:child_process'
import { chown, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { TenancyError } from '../errors.js'
import { othersCanEnter } from './embedded-binaries.js'

// Servers started from the machine's own PostgreSQL binaries (a Citus cluster, a
// streaming replica): who runs them, where their data lives, pg_ctl.

export const run = promisify(execFile)

/** The OS user such a server runs as: null for this process's own user, else the `postgres` OS user's ids. */
export type ServerUser = { uid: number; gid: number } | null

/** PostgreSQL refuses to run as root: as root, the servers run as the postgres OS user. */
export async function osUser(): Promise<ServerUser> {
  if (process.getuid?.() !== 0) return null
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])])
  return { uid: Number(uid), gid: Number(gid) }
}

export async function asServerUser(user: ServerUser, command: string, args: string[]): Promise<void> {
  if (user === null) await run(command, args)
  else await run('runuser', ['-u', 'postgres', '--', command, ...args])
}

/**
 * A new folder under the temporary directory for servers' data, owned by the
 * server user, who must be able to reach it: the project itself may live in a
 * folder only root can enter.
 */
export async function serverFolder(prefix: string, user: ServerUser): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), prefix))
  if (user === null) return root
  await chown(root, user.uid, user.gid)
  const reachable = await othersCanEnter(tmpdir())
  if (!reachable.ok) {
    await rm(root, { recursive: true, force: true })
    throw new TenancyError(
      'DATABASE_SETUP_FAILED',
      `Running as root, the servers run as the postgres OS user, which cannot enter ${reachable.folder} (mode ${reachable.mode}) above the temporary directory ${tmpdir()}. Set TMPDIR to a folder every user can enter (e.g. /tmp), or run as another user.`,
    )
  }
  return root
}

/** Starts the server of `dataDir` and waits until it accepts connections (a hot standby: until it is consistent). */
export async function startServer(user: ServerUser, bindir: string, dataDir: string, log: string): Promise<void> {
  await asServerUser(user, join(bindir, 'pg_ctl'), ['-D', dataDir, '-l', log, '-w', '-t', '120', 'start'])
}

/** Stops it without a shutdown checkpoint: its data is thrown away next. */
export async function stopServer(user: ServerUser, bindir: string, dataDir: string): Promise<void> {
  await asServerUser(user, join(bindir, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop'])
}

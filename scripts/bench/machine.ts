import { createRequire } from 'node:module'
import os from 'node:os'
import { withClient } from '../../src/database/admin.js'
import type { RunningPostgres } from '../../src/database/postgres-server.js'

export interface Machine {
  cpus: number
  cpu_model: string
  memory_gb: number
  os: string
  node: string
  prisma: string
  postgres: string
  /** `url`: the server DATABASE_URL names; otherwise one started for this run. */
  server: RunningPostgres['kind']
  /** One-minute load average when the run started: other work on the machine makes every figure noisier. */
  load_average: number
  mode: 'quick' | 'full'
}

export async function describeMachine(adminUrl: string, server: Machine['server'], mode: Machine['mode']): Promise<Machine> {
  const postgres = await withClient(adminUrl, async (client) => (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? 'unknown')
  const prisma = (createRequire(import.meta.url)('@prisma/client/package.json') as { version: string }).version
  return {
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model.trim() ?? 'unknown',
    memory_gb: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    prisma,
    postgres,
    server,
    load_average: Number((os.loadavg()[0] ?? 0).toFixed(2)),
    mode,
  }
}

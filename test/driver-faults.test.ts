import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PrismaClient } from '../prisma/generated/client.js'
import { isTenancyError, tenancy, tenancyAdapter, unscopedAdapter } from '../src/index.js'
import { useTestDatabase } from '../src/testing/index.js'
import { findPgBouncer, startPgBouncer, type PgBouncer } from './support/pgbouncer.js'

const db = await useTestDatabase()
const tenants = ['acme', 'globex', 'initech', 'umbrella']
const binary = findPgBouncer()
if (binary === undefined) console.warn('test/driver-faults.test.ts: the PgBouncer case is skipped: the pgbouncer executable is not installed.')

const admin = new PrismaClient({ adapter: unscopedAdapter(db.adminUrl) })
const killer = new pg.Client({ connectionString: db.adminUrl })
let bouncer: PgBouncer | undefined

beforeAll(async () => {
  await admin.tenant.createMany({ data: tenants.map((id) => ({ id, name: id })) })
  await killer.connect()
  if (binary !== undefined) bouncer = await startPgBouncer(binary, db.appUrl, [db.appRole], 2)
})
afterAll(async () => {
  await Promise.all([admin.$disconnect(), killer.end()])
  await bouncer?.stop()
})

/**
 * 32 workers through a tenancy client on a pool of 2 while another connection
 * kills the application role's backends every ~60 ms, 15 kills in all
 * (bounded by count, not time).
 */
async function underKills(url: string): Promise<void> {
  const prisma = new PrismaClient({ adapter: tenancyAdapter({ connectionString: url, max: 2 }) }).$extends(tenancy())
  const uncaught: unknown[] = []
  const onUncaught = (error: unknown) => uncaught.push(error)
  process.on('uncaughtException', onUncaught)
  const failures: unknown[] = []
  let kills = 0
  let stop = false
  try {
    const killing = (async () => {
      while (kills < 15) {
        const { rowCount } = await killer.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND datname = $2 AND pid <> pg_backend_pid()',
          [db.appRole.name, db.name],
        )
        if ((rowCount ?? 0) > 0) kills += 1
        await new Promise((resolve) => setTimeout(resolve, 60))
      }
      stop = true
    })()
    const workers = Array.from({ length: 32 }, async (_, worker) => {
      const client = prisma.forTenant(tenants[worker % tenants.length] ?? 'acme')
      for (let index = 0; !stop && index < 400; index += 1) {
        try {
          if (index % 3 === 0) {
            await client.$transaction(
              async (tx) => {
                await tx.project.create({ data: { name: `w${worker}` } })
                await tx.project.count()
              },
              { maxWait: 30_000 },
            )
          } else if (index % 3 === 1) await client.project.findMany({ take: 5 })
          else await client.project.create({ data: { name: `w${worker}` } })
        } catch (error) {
          failures.push(error)
        }
      }
    })
    await Promise.all([killing, ...workers])
    // The pool replaced the dead connections: every tenant still reads, and only its own rows.
    for (const tenant of tenants) {
      const projects = await prisma.forTenant(tenant).project.findMany()
      expect(projects.filter((project) => project.tenantId !== tenant)).toEqual([])
    }
  } finally {
    process.off('uncaughtException', onUncaught)
    await prisma.$disconnect()
  }
  expect(uncaught).toEqual([])
  expect(kills).toBe(15)
  // Every failed operation says why, with a code to branch on.
  expect(failures.filter((error) => !isTenancyError(error, 'CONNECTION_LOST') && typeof (error as { code?: unknown }).code !== 'string')).toEqual([])
  expect(failures.length).toBeGreaterThan(0)
}

describe('a backend killed under load (#12)', () => {
  it('fails only the operations on the dead connection, with a code, and the process goes on', async () => {
    await underKills(db.appUrl)
  })

  it.skipIf(binary === undefined)('does the same through PgBouncer in transaction mode', async () => {
    await underKills(bouncer?.route(db.appUrl) ?? db.appUrl)
  })
})

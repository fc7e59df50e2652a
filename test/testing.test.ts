import type { SqlDriverAdapterFactory } from '@prisma/driver-adapter-utils'
import { createConnection } from 'node:net'
import pg from 'pg'
import { describe, expect, inject, it } from 'vitest'
import { PrismaClient } from '../prisma/generated/client.js'
import { dropDatabasesWithPrefix, withClient } from '../src/database/admin.js'
import { tenancy, type TenancyError } from '../src/index.js'
import {
  containerRuntimeAvailable,
  createTenancyFixture,
  createTestDatabase,
  expectIsolation,
  recordWire,
  startTestServer,
  statementsWithoutTenant,
  withTestDatabase,
  type PostgresProvider,
  type TestServerInfo,
} from '../src/testing/index.js'

const docker = await containerRuntimeAvailable()
const skipReasons: Record<PostgresProvider, string | false> = {
  auto: false,
  url: process.env.DATABASE_URL === undefined ? 'url provider: DATABASE_URL is not set, no server to point at' : false,
  embedded: false,
  testcontainers: docker.available ? false : `testcontainers provider: no Docker engine answers (${docker.reason})`,
  citus: 'citus provider: tested on its own cluster in test/citus-cluster.test.ts',
}
for (const reason of Object.values(skipReasons)) if (reason !== false) console.info(`skipped: ${reason}`)

async function portOpen(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port || 5432) })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

async function databaseNames(server: TestServerInfo): Promise<string[]> {
  return withClient(server.adminUrl, async (client) => (await client.query<{ datname: string }>('SELECT datname FROM pg_database')).rows.map((row) => row.datname))
}

const clients = {
  client: (adapter: SqlDriverAdapterFactory) => new PrismaClient({ adapter }).$extends(tenancy()),
  admin: (adapter: SqlDriverAdapterFactory) => new PrismaClient({ adapter }),
  createTenant: (admin: PrismaClient, id: string) => admin.tenant.create({ data: { id, name: id } }),
}

describe.each(['url', 'embedded', 'testcontainers'] as const)('the %s provider', (provider) => {
  it.skipIf(skipReasons[provider] !== false)('gives a migrated database, the app role, isolated tenants and a cleanup that leaves nothing behind', async () => {
    const server = await startTestServer({ provider })
    let databaseName = ''
    try {
      await withTestDatabase(server, async (database) => {
        databaseName = database.name
        expect(database.appUrl).toContain(server.appRole.name)
        const fixture = createTenancyFixture(database, clients)
        try {
          await expectIsolation(fixture, { model: 'project', data: { name: 'Contract' } })
        } finally {
          await fixture.close()
        }
      })
      expect(await databaseNames(server)).not.toContain(databaseName)
    } finally {
      await server.stop()
    }
    expect(await databaseNames(server).catch(() => [])).not.toContain(server.templateDatabase)
    if (provider !== 'url') expect(await portOpen(server.adminUrl)).toBe(false)
  })
})

describe('a test server on a shared PostgreSQL', () => {
  it.skipIf(skipReasons.url !== false)('drops at stop the test databases nobody dropped, as a file whose tests were all skipped leaves them', async () => {
    const server = await startTestServer({ provider: 'url' })
    let leftBehind = ''
    try {
      leftBehind = (await createTestDatabase(server)).name
      expect(await databaseNames(server)).toContain(leftBehind)
    } finally {
      await server.stop()
    }
    const left = await databaseNames(server)
    expect(left).not.toContain(leftBehind)
    expect(left.filter((name) => name.startsWith(server.databasePrefix))).toEqual([])
  })
})

describe('test databases', () => {
  const server = inject('prismaTenancy')

  it('are all dropped at the end of a run even when one of them cannot be, which is named', async () => {
    const prefix = `${server.databasePrefix}sweep_`
    await withClient(server.adminUrl, async (client) => {
      await client.query(`CREATE DATABASE "${prefix}a"`)
      await client.query(`CREATE DATABASE "${prefix}b" IS_TEMPLATE true`)
      await client.query(`CREATE DATABASE "${prefix}c"`)
    })
    try {
      const failure = await dropDatabasesWithPrefix(server.adminUrl, prefix).then(() => null, (error: TenancyError) => error)
      expect(failure?.code).toBe('DATABASE_SETUP_FAILED')
      expect(failure?.details).toEqual({ databases: [`${prefix}b`] })
      expect((await databaseNames(server)).filter((name) => name.startsWith(prefix))).toEqual([`${prefix}b`])
    } finally {
      await withClient(server.adminUrl, (client) => client.query(`ALTER DATABASE "${prefix}b" IS_TEMPLATE false`))
      await dropDatabasesWithPrefix(server.adminUrl, prefix)
    }
  })

  it('are dropped when the test body throws', async () => {
    let name = ''
    const failure = await withTestDatabase(server, async (database) => {
      name = database.name
      throw new Error('the test failed')
    }).catch((error: Error) => error.message)
    expect(failure).toBe('the test failed')
    expect(await databaseNames(server)).not.toContain(name)
  })

  it('connect the app as a role that is neither superuser nor BYPASSRLS', async () => {
    await withTestDatabase(server, async (database) => {
      const client = new pg.Client({ connectionString: database.appUrl })
      await client.connect()
      const { rows } = await client.query('SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user')
      await client.end()
      expect(rows).toEqual([{ rolsuper: false, rolbypassrls: false }])
    })
  })
})

describe('expectNoTenantlessSql', () => {
  it('flags a statement that ran with no tenant set', async () => {
    await withTestDatabase(inject('prismaTenancy'), async (database) => {
      const pool = new pg.Pool({ connectionString: database.appUrl })
      // The database is dropped WITH (FORCE) right after pool.end(), which resolves before the socket closes.
      pool.on('error', () => undefined)
      const wire = recordWire(pool)
      await pool.query('SELECT count(*) FROM "Project"')
      await pool.end()
      expect(statementsWithoutTenant(wire.roundTrips)).toEqual(['SELECT count(*) FROM "Project"'])
    })
  })
})

import pg from 'pg'
import { describe, expect, inject, it, onTestFinished } from 'vitest'
import { errorCode, runSoak, type SoakResult } from '../scripts/soak/soak.js'
import type { SoakClient } from '../scripts/soak/workload.js'
import { startEmbeddedPostgres } from '../src/database/embedded-postgres.js'
import { quoteIdent } from '../src/database/sql-identifiers.js'
import { createTestDatabase, startTestServer, type TestDatabase } from '../src/testing/index.js'
import { backendsOf } from './support/backends.js'
import { findPgBouncer, startPgBouncer } from './support/pgbouncer.js'
import { useSoakFixture } from './support/soak.js'

// A smaller soak than the CI one, with a fault injected while it runs; then a
// clean soak on the same pool to show it recovered without a restart of the app.
const faultSoak = { operations: 1000, tenants: 20, concurrency: 16 }
const afterSoak = { operations: 200, tenants: 10, concurrency: 16, tenantPrefix: 'after_' }
// Far above what a fault test takes on an idle machine; a shared one can be many times slower.
const faultTestTimeoutMs = 180_000
// Every fault loop ends after this long, whatever happens; the soak bounds itself by its count.
const faultLoopLimitMs = 60_000

const binary = findPgBouncer()
if (binary === undefined) {
  console.warn('test/reliability-faults.test.ts: the PgBouncer restart is skipped, the pgbouncer executable is not installed (Debian: apt-get install -y pgbouncer).')
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A database of this test's own, dropped when it finishes. */
async function testDatabase(): Promise<TestDatabase> {
  const database = await createTestDatabase(inject('prismaTenancy'))
  onTestFinished(() => database.drop())
  return database
}

async function adminClient(database: TestDatabase): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: database.adminUrl })
  // A fault that ends every backend (a server restart) ends this one too; it is not used after that.
  client.on('error', () => undefined)
  await client.connect()
  onTestFinished(() => client.end().catch(() => undefined))
  return client
}

/** Sets a server parameter for the application role in this test's database only (roles are cluster-wide). */
async function setForAppRole(database: TestDatabase, parameter: string, value: string): Promise<void> {
  const admin = await adminClient(database)
  await admin.query(`ALTER ROLE ${quoteIdent(database.appRole.name)} IN DATABASE ${quoteIdent(database.name)} SET ${parameter} = '${value}'`)
}

interface Fault {
  /** Before the first operation, once the soak's tenants exist. */
  setup?: (tenants: readonly string[], client: SoakClient) => Promise<void>
  /** Injects the fault once; false when there was nothing to hit this time. */
  injectOnce?: (tenants: readonly string[], client: SoakClient) => Promise<boolean>
  /** After the last operation. */
  teardown?: () => Promise<void>
  times?: number
  intervalMs?: number
  /** Inject all `times` even once the last operation has settled (the checks wait); by default the fault stops with the soak. */
  complete?: boolean
}

interface FaultRun {
  result: SoakResult
  after: SoakResult
  injected: number
}

async function soakUnderFault(database: TestDatabase, fault: Fault, options: { appUrl?: string; serverConnections?: number; afterClose?: () => Promise<void> } = {}): Promise<FaultRun> {
  const fixture = useSoakFixture(database, options)
  const base = { client: fixture.client, admin: fixture.admin, pool: fixture.adapter.pool, wire: fixture.wire, serverConnections: options.serverConnections }
  let running = true
  let injected = 0
  let loop: Promise<void> = Promise.resolve()
  const result = await runSoak({
    ...base,
    ...faultSoak,
    tenantPrefix: 'fault_',
    async beforeOperations(tenants) {
      await fault.setup?.(tenants, fixture.client)
      const injectOnce = fault.injectOnce
      if (injectOnce === undefined) return
      const until = Date.now() + faultLoopLimitMs
      loop = (async () => {
        const going = () => (running || fault.complete === true) && injected < (fault.times ?? 1) && Date.now() < until
        while (going()) {
          await sleep(fault.intervalMs ?? 100)
          if (going() && (await injectOnce(tenants, fixture.client))) injected += 1
        }
      })()
    },
    async afterOperations() {
      running = false
      await loop
      await fault.teardown?.()
    },
  })
  const after = await runSoak({ ...base, ...afterSoak })
  return { result, after, injected }
}

/** What must hold after every fault: coded errors, no leak, no partial write, no tenant-less SQL, and a pool that works again. */
function expectSurvived(run: FaultRun, options: { stopsTheServer?: boolean } = {}): void {
  const { result, after } = run
  console.info(
    `fault soak: ${JSON.stringify({ injected: run.injected, operations: result.operations, succeeded: result.succeeded, errors: result.errors, landedAfterError: result.reconciliation.landedAfterError, latencyMs: result.latencyMs })}`,
  )
  expect({
    uncodedErrors: result.uncodedErrors,
    leaks: result.leaks,
    leakedSettings: result.settings.leaks,
    mismatches: result.reconciliation.mismatches,
    tenantlessStatements: result.tenantlessStatements,
  }).toEqual({ uncodedErrors: [], leaks: [], leakedSettings: [], mismatches: [], tenantlessStatements: 0 })
  expect(result.operations).toBe(faultSoak.operations)
  if (options.stopsTheServer === true) {
    // Operations that arrive while the server is down fail at once (connection refused), so how many
    // fail depends on how long the restart takes against how fast the soak runs, not on prisma-tenancy:
    // on a slow machine most of the soak can fall inside the outage. What must hold is that work
    // succeeded around it, and the clean soak after it (below) on the same pool.
    expect(result.succeeded).toBeGreaterThan(0)
  } else {
    // Other tenants' work went on: most operations succeeded, and some tenants never failed.
    expect(result.succeeded).toBeGreaterThan(result.operations / 2)
    expect(Object.keys(result.failuresByTenant).length).toBeLessThan(faultSoak.tenants)
  }
  expect({
    errors: after.errors,
    leaks: after.leaks,
    leakedSettings: after.settings.leaks,
    mismatches: after.reconciliation.mismatches,
    tenantlessStatements: after.tenantlessStatements,
  }).toEqual({ errors: {}, leaks: [], leakedSettings: [], mismatches: [], tenantlessStatements: 0 })
  expect(after.succeeded).toBe(afterSoak.operations)
}

/**
 * A soak with `parameter` set for the app role in a database of its own,
 * while `times` operations that must run into it are made; the codes they failed with.
 */
async function soakUnderTimeout(parameter: string, value: string, times: number, operation: (tenants: readonly string[], client: SoakClient) => Promise<unknown>) {
  const database = await testDatabase()
  await setForAppRole(database, parameter, value)
  const codes: string[] = []
  const run = await soakUnderFault(database, {
    times,
    intervalMs: 200,
    complete: true,
    async injectOnce(tenants, client) {
      codes.push(await failureCode(() => operation(tenants, client)))
      return true
    },
  })
  return { run, codes, database }
}

/** Codes of the errors an operation of the fault itself met; it must have failed with one. */
async function failureCode(operation: () => Promise<unknown>): Promise<string> {
  return operation().then(
    () => 'succeeded',
    (error: unknown) => errorCode(error) ?? `no code: ${(error as Error).message}`,
  )
}

describe('faults injected while a soak runs', () => {
  it('a backend killed mid-transaction, repeatedly: only its operation fails, with a code, and the pool replaces it', async () => {
    const database = await testDatabase()
    const killer = await adminClient(database)
    const run = await soakUnderFault(database, {
      times: 10,
      intervalMs: 150,
      async injectOnce() {
        const [pid] = await backendsOf(killer, database.name, database.appRole.name, { inTransaction: true })
        if (pid === undefined) return false
        const { rows } = await killer.query<{ killed: boolean }>('SELECT pg_terminate_backend($1) AS killed', [pid])
        return rows[0]?.killed === true
      },
    })
    // The soak may end before all ten: a kill needs a backend inside a transaction to hit.
    expect(run.injected).toBeGreaterThan(0)
    expect(Object.keys(run.result.errors).length).toBeGreaterThan(0)
    expectSurvived(run)
  }, faultTestTimeoutMs)

  it('statement_timeout cancels the slow statement with a code while the rest go on', async () => {
    const { run, codes } = await soakUnderTimeout('statement_timeout', '300ms', 4, (tenants, client) => client.forTenant(tenants[0] ?? '').$queryRaw`SELECT pg_sleep(1)`)
    expect(codes).toEqual(Array(4).fill('P2010 (57014)'))
    expectSurvived(run)
  }, faultTestTimeoutMs)

  it("lock_timeout fails the locked tenant's writes with a code; the other tenants go on", async () => {
    const database = await testDatabase()
    await setForAppRole(database, 'lock_timeout', '1s')
    const locker = await adminClient(database)
    let locked = ''
    const run = await soakUnderFault(database, {
      async setup(tenants) {
        locked = tenants[0] ?? ''
        await locker.query('BEGIN')
        await locker.query('SELECT id FROM "Project" WHERE tenant_id = $1 FOR UPDATE', [locked])
      },
      teardown: async () => {
        await locker.query('ROLLBACK')
      },
    })
    expect(Object.keys(run.result.failuresByTenant)).toEqual([locked])
    expect(Object.keys(run.result.errors).every((code) => code.includes('55P03'))).toBe(true)
    expectSurvived(run)
  }, faultTestTimeoutMs)

  it('idle_in_transaction_session_timeout ends the idle transaction with a code, leaves nothing of it, and the pool replaces the connection', async () => {
    const { run, codes, database } = await soakUnderTimeout('idle_in_transaction_session_timeout', '400ms', 3, (tenants, client) =>
      client.forTenant(tenants[1] ?? '').$transaction(async (tx) => {
        await tx.project.create({ data: { name: 'idle-transaction' } })
        await sleep(1500)
        await tx.project.count()
      }),
    )
    expect(codes).toHaveLength(3)
    for (const code of codes) expect(code).toMatch(/^(?:CONNECTION_LOST|P\d{4})/)
    const admin = await adminClient(database)
    expect((await admin.query('SELECT 1 FROM "Project" WHERE name = $1', ['idle-transaction'])).rowCount).toBe(0)
    expectSurvived(run)
  }, faultTestTimeoutMs)

  it('a server restart fails the operations in flight with a code; the pool reconnects without an app restart', async () => {
    // A server of this test's own, so that restarting it disturbs no other test.
    const postgres = await startEmbeddedPostgres()
    onTestFinished(() => postgres.stop())
    const server = await startTestServer({ provider: 'url', databaseUrl: postgres.adminUrl })
    onTestFinished(() => server.stop())
    const database = await createTestDatabase(server)
    const run = await soakUnderFault(database, { times: 2, intervalMs: 1000, complete: true, injectOnce: async () => (await postgres.restart(), true) })
    expect(run.injected).toBe(2)
    expect(Object.keys(run.result.errors).length).toBeGreaterThan(0)
    expectSurvived(run, { stopsTheServer: true })
  }, faultTestTimeoutMs)

  it.skipIf(binary === undefined)('a PgBouncer restart fails the operations in flight with a code; the pool reconnects through it', async () => {
    const database = await testDatabase()
    const bouncer = await startPgBouncer(binary ?? 'pgbouncer', database.appUrl, [database.appRole], 5)
    const run = await soakUnderFault(
      database,
      { times: 2, intervalMs: 1000, complete: true, injectOnce: async () => (await bouncer.restart(), true) },
      { appUrl: bouncer.route(database.appUrl), serverConnections: 5, afterClose: () => bouncer.stop() },
    )
    expect(run.injected).toBe(2)
    expect(Object.keys(run.result.errors).length).toBeGreaterThan(0)
    expectSurvived(run, { stopsTheServer: true })
  }, faultTestTimeoutMs)
})

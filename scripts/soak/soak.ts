import { performance } from 'node:perf_hooks'
import type pg from 'pg'
import { PrismaClient } from '../../prisma/generated/client.js'
import { isTenancyError } from '../../src/errors.js'
import { createTenancyFixture, type TenancyFixture } from '../../src/testing/tenancy-fixture.js'
import type { TestDatabase } from '../../src/testing/test-server.js'
import { statementsWithoutTenant, type WireRecorder } from '../../src/testing/wire-recorder.js'
import { percentile } from '../bench/stats.js'
import { reconcile, settingsOnPooledConnections, type Reconciliation, type SettingsCheck, type WriteRecord } from './checks.js'
import { IntentionalRollback, models, operationKinds, pickKind, plans, random, runOperation, type OperationKind, soakClient, type SoakClient } from './workload.js'

export interface SoakOptions {
  /** The tenant client (`tenancy()` on `tenancyAdapter`), connected as the plain application role. */
  client: SoakClient
  /** An unscoped client as a role that sees every tenant, to set up and reconcile. */
  admin: PrismaClient
  /** The tenant client's connection pool (`adapter.pool`), whose connections are checked after the run. */
  pool: pg.Pool
  /** Records the tenant client's wire; every statement must have run with a tenant. */
  wire?: WireRecorder | undefined
  operations: number
  tenants: number
  concurrency: number
  seed?: number | undefined
  /** Server connections behind the pool (PgBouncer's pool size); default the pool's own size. */
  serverConnections?: number | undefined
  /** No operation starts after this many milliseconds; the run reports how many it did. */
  maxDurationMs?: number | undefined
  /** Prefix of the tenant ids, so that two soaks on one database stay apart. */
  tenantPrefix?: string | undefined
  /** Runs once the tenants and their first projects exist, before the first operation (to set up a fault). */
  beforeOperations?: ((tenants: readonly string[]) => Promise<void>) | undefined
  /** Runs once the last operation has settled, before the checks (to end a fault). */
  afterOperations?: (() => Promise<void>) | undefined
}

export interface SoakResult {
  operations: number
  succeeded: number
  tenants: number
  concurrency: number
  poolSize: number
  byKind: Record<OperationKind, number>
  /** Failures the workload provoked on purpose (its rollbacks), by kind. */
  expectedErrors: Record<string, number>
  /** Every other failure, by code. */
  errors: Record<string, number>
  /** Failures that carried no code at all (the first 10: message and first stack frames). */
  uncodedErrors: string[]
  /** Unexpected failures by tenant. */
  failuresByTenant: Record<string, number>
  latencyMs: { p50: number; p99: number }
  wallMs: number
  opsPerSecond: number
  /** Rows a tenant read or wrote that were not its own, and other cross-tenant effects. */
  leakedRows: number
  leaks: string[]
  /** Pooled connections that had the tenant setting outside a transaction, or were left in one. */
  leakedSettings: number
  settings: SettingsCheck
  reconciliation: Reconciliation
  /** Statements the wire recorder saw without a tenant in their transaction (undefined: no recorder). */
  tenantlessStatements: number | undefined
}

/** The code of a failure as a caller sees it: ours, Prisma's (with the SQLSTATE under it), or the driver's. */
export function errorCode(error: unknown): string | undefined {
  if (isTenancyError(error)) return error.code
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return undefined
  const sqlState = (error as { meta?: { driverAdapterError?: { cause?: { originalCode?: unknown } } } }).meta?.driverAdapterError?.cause?.originalCode
  return typeof sqlState === 'string' && sqlState !== code ? `${code} (${sqlState})` : code
}

const tenantId = (prefix: string, index: number) => `${prefix}${String(index).padStart(3, '0')}`

/**
 * Runs `operations` operations of the soak workload across `tenants` tenants,
 * `concurrency` at a time, then proves nothing crossed tenants: every row read
 * or written was the tenant's own, the database holds exactly what each tenant
 * committed, no statement ran without a tenant and no pooled connection kept a
 * tenant setting.
 */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const next = random(options.seed ?? 1)
  const prefix = options.tenantPrefix ?? 'soak_'
  const tenants = Array.from({ length: options.tenants }, (_, index) => tenantId(prefix, index))
  const wireStart = options.wire?.roundTrips.length ?? 0
  const records: WriteRecord[] = []
  const projects = new Map<string, string[]>()

  await options.admin.tenant.createMany({ data: tenants.map((id) => ({ id, name: id })), skipDuplicates: true })
  // Every tenant starts with one project, created as the tenant, so every operation has one of its own to work on.
  for (const tenant of tenants) {
    const tag = `${prefix}seed-${tenant}`
    const project = await options.client.forTenant(tenant).project.create({ data: { name: tag } })
    projects.set(tenant, [project.id])
    records.push({ tag, tenant, writes: { ...plans.create.writes }, outcome: 'committed' })
  }

  await options.beforeOperations?.(tenants)

  const byKind = Object.fromEntries(operationKinds.map((kind) => [kind, 0])) as Record<OperationKind, number>
  const expectedErrors: Record<string, number> = {}
  const errors: Record<string, number> = {}
  const uncodedErrors: string[] = []
  const failuresByTenant: Record<string, number> = {}
  const leaks: string[] = []
  let leakedRows = 0
  const latencies: number[] = []
  let started = 0
  let succeeded = 0
  const count = (map: Record<string, number>, key: string) => (map[key] = (map[key] ?? 0) + 1)
  const pickFrom = <T>(items: readonly T[]): T | undefined => items[Math.floor(next() * items.length)]

  const startedAt = performance.now()
  const deadline = options.maxDurationMs === undefined ? Number.POSITIVE_INFINITY : startedAt + options.maxDurationMs
  async function worker(): Promise<void> {
    while (started < options.operations && performance.now() < deadline) {
      const index = (started += 1)
      const kind = pickKind(next)
      const plan = plans[kind]
      const tenant = pickFrom(tenants) as string
      const own = projects.get(tenant) ?? []
      const otherTenant = pickFrom(tenants.filter((t) => t !== tenant))
      const tag = `${prefix}op-${index}`
      byKind[kind] += 1
      const record: WriteRecord = { tag, tenant, writes: { ...plan.writes }, outcome: 'failed' }
      const t0 = performance.now()
      try {
        const created = await runOperation(plan, {
          client: options.client,
          tenant,
          tag,
          ownProject: pickFrom(own) as string,
          ownProjects: Array.from({ length: Math.min(4, own.length) }, () => pickFrom(own) as string),
          foreignProject: otherTenant === undefined ? undefined : pickFrom(projects.get(otherTenant) ?? []),
          bound: next() < 0.7,
          saw(row, what) {
            if (row.tenantId !== tenant) {
              leakedRows += 1
              leaks.push(`${tenant} (${kind}): ${what} belongs to ${row.tenantId}`)
            }
          },
          breach(what) {
            leakedRows += 1
            leaks.push(`${tenant} (${kind}): ${what}`)
          },
        })
        if (plan.rollsBack) {
          count(errors, 'succeeded although meant to fail')
          count(failuresByTenant, tenant)
        } else {
          record.outcome = 'committed'
          succeeded += 1
          if (created !== undefined) own.push(created)
        }
      } catch (error) {
        const code = errorCode(error)
        if (plan.rollsBack && (error instanceof IntentionalRollback || (error as { code?: unknown }).code === 'P2003')) {
          record.outcome = 'rolled-back'
          succeeded += 1
          count(expectedErrors, error instanceof IntentionalRollback ? 'rolled back on purpose' : `foreign key (${code})`)
        } else {
          count(failuresByTenant, tenant)
          if (code === undefined) {
            count(errors, 'no code')
            if (uncodedErrors.length < 10) uncodedErrors.push(describeUncoded(error))
          } else count(errors, code)
        }
      } finally {
        latencies.push(performance.now() - t0)
      }
      if (Object.values(record.writes).some((rows) => rows > 0)) records.push(record)
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, () => worker()))
  const wallMs = performance.now() - startedAt
  await options.afterOperations?.()

  // The wire is read before the connection check, whose probes deliberately carry no tenant.
  const tenantless = options.wire === undefined ? undefined : statementsWithoutTenant(options.wire.roundTrips.slice(wireStart))
  const settings = await settingsOnPooledConnections(options.pool, options.serverConnections)
  const reconciliation = await reconcile(options.admin, records, prefix)
  leakedRows += reconciliation.wrongTenantRows
  leaks.push(...reconciliation.wrongTenantTags.map((tag) => `rows of ${tag} carry another tenant's id`))

  const sorted = latencies.sort((a, b) => a - b)
  return {
    operations: started,
    succeeded,
    tenants: tenants.length,
    concurrency: options.concurrency,
    poolSize: settings.connections,
    byKind,
    expectedErrors,
    errors,
    uncodedErrors,
    failuresByTenant,
    latencyMs: { p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)) },
    wallMs: Math.round(wallMs),
    opsPerSecond: Math.round((started * 1000) / wallMs),
    leakedRows,
    leaks: leaks.slice(0, 20),
    leakedSettings: settings.leaks.length,
    settings,
    reconciliation,
    tenantlessStatements: tenantless?.length,
  }
}

/** An error without a code, as the report shows it: its message and where it was raised, to find the layer that let it through. */
function describeUncoded(error: unknown): string {
  if (!(error instanceof Error)) return String(error).slice(0, 300)
  const frames = (error.stack ?? '').split('\n').slice(1, 4).map((line) => line.trim())
  return [`${error.name}: ${error.message}`.slice(0, 300), ...frames].join(' | ')
}

const round = (ms: number) => Math.round(ms * 100) / 100

/** The soak's clients on one test database: the tenant client as the application role (at `appUrl`, e.g. through PgBouncer), with its wire recorded. */
export function soakFixture(database: TestDatabase, appUrl = database.appUrl): TenancyFixture<SoakClient, PrismaClient> {
  return createTenancyFixture({ ...database, appUrl }, { client: soakClient, admin: (adapter) => new PrismaClient({ adapter }) })
}

/** The run's figures as people read them. */
export function formatSoak(label: string, result: SoakResult): string {
  const list = (map: Record<string, number>) => Object.entries(map).map(([kind, n]) => `${kind} ${n}`).join(', ') || 'none'
  return [
    `${label}: ${result.operations} operations, ${result.tenants} tenants, concurrency ${result.concurrency}, pool ${result.poolSize} (${result.settings.serverConnections} server connections checked)`,
    `  ${result.succeeded} succeeded, ${result.opsPerSecond} ops/s, latency p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms`,
    `  rolled back on purpose: ${list(result.expectedErrors)}`,
    `  errors: ${list(result.errors)}${result.uncodedErrors.length > 0 ? ` (without a code: ${result.uncodedErrors.join(' | ')})` : ''}`,
    `  committed rows: ${models.map((model) => `${result.reconciliation.committed[model]} ${model}`).join(', ')}; reconciliation mismatches: ${result.reconciliation.mismatchCount}${result.reconciliation.landedAfterError > 0 ? `, ${result.reconciliation.landedAfterError} failed operations landed in full` : ''}`,
    `  leaked rows: ${result.leakedRows}, leaked settings: ${result.leakedSettings}, statements without a tenant: ${result.tenantlessStatements ?? 'not recorded'}`,
    ...[...result.leaks, ...result.settings.leaks, ...result.reconciliation.mismatches].map((line) => `  ! ${line}`),
  ].join('\n')
}

/** Whether a run found nothing wrong: no leak, no mismatch, no tenant-less statement, no unexpected error. */
export function soakPassed(result: SoakResult): boolean {
  return (
    result.leakedRows === 0 &&
    result.leakedSettings === 0 &&
    result.reconciliation.mismatchCount === 0 &&
    (result.tenantlessStatements ?? 0) === 0 &&
    Object.keys(result.errors).length === 0
  )
}

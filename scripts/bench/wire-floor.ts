import pg from 'pg'
import { setTenantSql } from '../../src/client/tenant-pg-client.js'
import { TenantQuery, type PrefixStatement } from '../../src/client/tenant-query.js'
import { defaultTenantSetting } from '../../src/context/tenant-setting.js'
import { signatureSetting, tenantSigner } from '../../src/context/tenant-signature.js'
import { projectOf, taskOf, tenantOf, type TenantFixture } from './fixtures.js'
import type { Operation } from './measure.js'
import type { Result } from './results.js'

/** The columns Prisma 7.10 selects (and returns) for a task. */
const taskColumns = '"public"."tasks"."id", "public"."tasks"."tenant_id", "public"."tasks"."project_id", "public"."tasks"."title", "public"."tasks"."done"'
/** The SQL Prisma 7.10 sends for `task.findUnique({ where: { id } })`, parameters included. */
const findUniqueSql = `SELECT ${taskColumns} FROM "public"."tasks" WHERE ("public"."tasks"."id" = $1 AND 1=1) LIMIT $2 OFFSET $3`
const withTenantFilterSql = findUniqueSql.replace('AND 1=1', 'AND "public"."tasks"."tenant_id" = $4')
interface WireStatement {
  text: string
  values(t: TenantFixture, i: number): string[]
}

const updateStatement: WireStatement = {
  text: `UPDATE "public"."tasks" SET "title" = $1 WHERE ("public"."tasks"."id" = $2 AND 1=1) RETURNING ${taskColumns}`,
  values: (t, i) => [`updated ${i}`, taskOf(t, i)],
}

/**
 * What Prisma 7.10 sends for the operations workload's `findMany-50` and `update`, and their parameters:
 * `alone` for plain Prisma (the baseline's SQL), `scoped` for prisma-tenancy, whose `findMany` leaves the
 * tenant to the policy as the workload's does (projectTasks in workloads/operations.ts).
 */
const throughputStatements: Record<string, { alone: WireStatement; scoped: WireStatement }> = {
  'findMany-50': {
    alone: {
      text: `SELECT ${taskColumns} FROM "public"."tasks" WHERE ("public"."tasks"."tenant_id" = $1 AND "public"."tasks"."project_id" = $2) ORDER BY "public"."tasks"."id" ASC LIMIT $3 OFFSET $4`,
      values: (t, i) => [t.id, projectOf(t, i), '50', '0'],
    },
    scoped: {
      text: `SELECT ${taskColumns} FROM "public"."tasks" WHERE "public"."tasks"."project_id" = $1 ORDER BY "public"."tasks"."id" ASC LIMIT $2 OFFSET $3`,
      values: (t, i) => [projectOf(t, i), '50', '0'],
    },
  },
  update: { alone: updateStatement, scoped: updateStatement },
}

export const wireWorkload = 'findUnique-wire'
export const wireBaseline = 'pg: findUnique SQL alone'
/** The driver's part of the floor: set_config in the same write, no policy. */
export const wireSetConfig = 'pg: + set_config in the same write'
/** What prisma-tenancy puts on the wire: with the baseline and plain Prisma's row, it gives the floor of the design. */
export const tenancyWire = "pg: + set_config + policy (prisma-tenancy's wire)"

/** The throughput floor's baseline: a workload's SQL through a pool of node-postgres clients, nothing added. */
export const throughputWireBaseline = "pg: Prisma's SQL alone"
/** The fast path's wire form: set_config as a statement parsed once per connection, the policy applying. */
export const fastPathWire = "pg: + prepared set_config + policy (the fast path's wire)"
/** The workload of a throughput floor's rows: `findMany-50-wire` next to `findMany-50`. */
export const wireWorkloadOf = (workload: string): string => `${workload}-wire`

/** What each variant adds to the baseline, in the order the report lists them. */
const variants = [
  { name: wireBaseline, role: 'unrestricted', setTenant: false, filter: false },
  { name: 'pg: + WHERE tenant_id = $4', role: 'unrestricted', setTenant: false, filter: true },
  { name: wireSetConfig, role: 'unrestricted', setTenant: true, filter: false },
  { name: tenancyWire, role: 'app', setTenant: true, filter: false },
  { name: fastPathWire, role: 'app', setTenant: true, filter: false, prepared: true },
  { name: 'pg: + signed set_config + signed policy (generate --signed)', role: 'signed', setTenant: true, filter: false },
] as const

/** The two modes' wire forms and their prisma-tenancy contenders, for the floors. */
const modes = [
  ['default', tenancyWire, 'prisma-tenancy'],
  ['fast path', fastPathWire, 'prisma-tenancy (preparedTenantStatement)'],
] as const
export type FloorMode = (typeof modes)[number][0]
/** The prisma-tenancy contender of each mode, for the rounds a floor is measured in. */
export const modeContenders: readonly string[] = modes.map(([, , contender]) => contender)

type Row = unknown[]

/** set_config of the tenant as prisma-tenancy sends it: unnamed (default mode), or prepared once per connection under a name (the fast path). */
function setTenantPrefix(tenantId: string, prepared?: { parse: boolean }): PrefixStatement[] {
  const values = [defaultTenantSetting, tenantId]
  return [prepared === undefined ? { text: setTenantSql, values } : { text: setTenantSql, values, name: 'bench_set_tenant', parse: prepared.parse }]
}

function run(client: pg.ClientBase, config: { text: string; values: string[] }, prefix: PrefixStatement[]): Promise<Row[]> {
  return new Promise((resolve, reject) => {
    const query = new TenantQuery({ ...config, rowMode: 'array' }, prefix)
    ;(query as unknown as { callback: (error: Error | null, result?: { rows: Row[] }) => void }).callback = (error, result) =>
      error ? reject(error) : resolve(result?.rows ?? [])
    client.query(query)
  })
}

/** Whether PostgreSQL's policies apply to a variant's connection. */
export function wireVariantUnderPolicy(name: string): boolean {
  return variants.some((variant) => variant.name === name && variant.role !== 'unrestricted')
}

/**
 * findUnique's SQL sent straight through node-postgres, with no Prisma
 * Client around it, as each part of prisma-tenancy's wire form adds it: the
 * tenant filter alone, `set_config` in the same write, and `set_config` with
 * the policy applying, unnamed (default mode) and prepared once (the fast
 * path). Each variant is one connection, so what differs is
 * what the server is asked to do and the protocol messages that carry it. It
 * shows the floor of the design: what PostgreSQL and the driver charge for it
 * before Prisma Client and the tenancy pool do anything.
 */
export async function openWireFloor(
  urls: { appUrl: string; unrestrictedUrl: string },
  signed: { appUrl: string; signingKey: string },
  tenants: readonly TenantFixture[],
): Promise<{ operations: Map<string, Operation>; close(): Promise<void> }> {
  const clients = variants.map((variant) => new pg.Client({ connectionString: variant.role === 'signed' ? signed.appUrl : variant.role === 'app' ? urls.appUrl : urls.unrestrictedUrl }))
  const sign = tenantSigner(signed.signingKey)
  const signatureName = signatureSetting(defaultTenantSetting)
  const close = async () => {
    await Promise.allSettled(clients.map((client) => client.end()))
  }
  // The bench database is dropped WITH (FORCE) when the workload ends, whatever happened here.
  for (const client of clients) client.on('error', () => undefined)
  /** The prepared variant's connection has parsed its named statement. */
  let parsed = false
  const find = async (index: number, tenantId: string, taskId: string) => {
    const variant = variants[index]!
    // The signed variant's prefix is the driver's: both settings in one statement.
    const prefix: PrefixStatement[] = !variant.setTenant
      ? []
      : variant.role === 'signed'
        ? [{ text: 'SELECT set_config($1, $2, true), set_config($3, $4, true)', values: [defaultTenantSetting, tenantId, signatureName, sign(tenantId)] }]
        : setTenantPrefix(tenantId, 'prepared' in variant ? { parse: !parsed } : undefined)
    const config = variant.filter ? { text: withTenantFilterSql, values: [taskId, '1', '0', tenantId] } : { text: findUniqueSql, values: [taskId, '1', '0'] }
    const rows = await run(clients[index]!, config, prefix)
    if ('prepared' in variant) parsed = true
    return rows
  }
  try {
    await Promise.all(clients.map((client) => client.connect()))
    const [a, b] = tenants
    if (a === undefined || b === undefined) throw new Error('the wire floor needs two tenants')
    for (const [index, variant] of variants.entries()) {
      const own = await find(index, a.id, a.tasks[0]!)
      const foreign = await find(index, b.id, a.tasks[0]!)
      const expectedForeign = variant.filter || variant.role !== 'unrestricted' ? 0 : 1
      if (own.length !== 1 || foreign.length !== expectedForeign) throw new Error(`wire floor: ${variant.name} returned ${own.length} own and ${foreign.length} foreign rows`)
    }
  } catch (error) {
    await close()
    throw error
  }
  return {
    operations: new Map(variants.map((variant, index) => [variant.name, (i: number) => { const t = tenantOf(tenants, i); return find(index, t.id, taskOf(t, i)) }] as const)),
    close,
  }
}

const throughputVariants = [
  { name: throughputWireBaseline, role: 'unrestricted', prepared: undefined, sql: 'alone' },
  { name: tenancyWire, role: 'app', prepared: false, sql: 'scoped' },
  { name: fastPathWire, role: 'app', prepared: true, sql: 'scoped' },
] as const

/**
 * The same kind of floor for throughput at many clients: `findMany-50` and
 * `update` as Prisma sends them, through a pool of node-postgres clients as
 * large as the contenders' (one per variant), alone and in prisma-tenancy's two
 * wire forms. At 16 clients on 2 cores the server and the Node process share
 * the cores, so what set_config and the policy cost the server comes out of
 * every contender's throughput; this measures that cost without Prisma Client.
 */
export async function openThroughputWireFloor(
  urls: { appUrl: string; unrestrictedUrl: string },
  tenants: readonly TenantFixture[],
  poolSize: number,
): Promise<{ operations: Map<string, Map<string, Operation>>; close(): Promise<void> }> {
  const pools = throughputVariants.map((variant) => new pg.Pool({ connectionString: variant.role === 'app' ? urls.appUrl : urls.unrestrictedUrl, max: poolSize }))
  // The bench database is dropped WITH (FORCE) when the workload ends, whatever happened here.
  for (const pool of pools) pool.on('error', () => undefined)
  const close = async () => {
    await Promise.allSettled(pools.map((pool) => pool.end()))
  }
  /** Connections of the prepared variant that have parsed the named statement. */
  const parsed = new WeakSet<pg.PoolClient>()
  const send = async (index: number, statement: { text: string; values: string[] }, tenantId: string) => {
    const variant = throughputVariants[index]!
    const client = await pools[index]!.connect()
    try {
      const prefix = variant.prepared === undefined ? [] : setTenantPrefix(tenantId, variant.prepared ? { parse: !parsed.has(client) } : undefined)
      const rows = await run(client, statement, prefix)
      if (variant.prepared === true) parsed.add(client)
      return rows
    } finally {
      client.release()
    }
  }
  const operations = new Map(
    Object.entries(throughputStatements).map(([workload, statements]) => [
      workload,
      new Map(
        throughputVariants.map((variant, index) => {
          const statement = statements[variant.sql]
          return [variant.name, (i: number) => { const t = tenantOf(tenants, i); return send(index, { text: statement.text, values: statement.values(t, i) }, t.id) }] as const
        }),
      ),
    ]),
  )
  try {
    const [a, b] = tenants
    if (a === undefined || b === undefined) throw new Error('the throughput floor needs two tenants')
    for (const [workload, statements] of Object.entries(throughputStatements)) {
      for (const [index, variant] of throughputVariants.entries()) {
        const statement = statements[variant.sql]
        const own = await send(index, { text: statement.text, values: statement.values(a, 0) }, a.id)
        const foreign = await send(index, { text: statement.text, values: statement.values(a, 0) }, b.id)
        const expectedOwn = workload === 'update' ? 1 : 50
        const expectedForeign = variant.role === 'unrestricted' ? expectedOwn : 0
        if (own.length !== expectedOwn || foreign.length !== expectedForeign) throw new Error(`throughput floor, ${workload}: ${variant.name} returned ${own.length} own and ${foreign.length} foreign rows`)
      }
    }
  } catch (error) {
    await close()
    throw error
  }
  return { operations, close }
}

/**
 * Where prisma-tenancy's findUnique would be if Prisma Client and the tenancy
 * pool cost nothing over plain Prisma: plain Prisma plus what the setting and
 * the policy add on the bare driver, over plain Prisma (findUnique-wire rows,
 * all from the same rounds). Undefined when the run has no such rows.
 */
export function wireFloor(results: readonly Result[], mode: FloorMode = 'default'): number | undefined {
  return latencyFloors(results).find((f) => f.mode === mode)?.floor
}

/**
 * The wire floor of each mode at 1 client (wireFloor), next to that mode's
 * findUnique median over plain Prisma's in the same rounds.
 */
export function latencyFloors(results: readonly Result[]): { mode: FloorMode; floor: number; measured: number }[] {
  const median = (contender: string) => results.find((r) => r.workload === wireWorkload && r.contender === contender)?.median_ms
  const [alone, plain] = [median(wireBaseline), median('plain-prisma')]
  if (alone === undefined || plain === undefined) return []
  return modes.flatMap(([mode, wire, contender]) => {
    const [wireTime, own] = [median(wire), median(contender)]
    return wireTime === undefined || own === undefined ? [] : [{ mode, floor: (plain + wireTime - alone) / plain, measured: own / plain }]
  })
}

/**
 * The same for throughput at `clients` clients: plain Prisma's time per
 * operation plus what a wire form adds to the bare driver's, over plain
 * Prisma's, from the `<workload>-wire` rows; and prisma-tenancy's own
 * throughput over plain Prisma's in the same rounds. Default mode and fast path.
 * Times are in units of the bare driver's, from each row's throughput ratio to
 * it, which pairs the rounds (results.ts): the floor takes the same care as the figures.
 */
export function throughputFloors(results: readonly Result[]): { workload: string; clients: number; mode: FloorMode; floor: number; measured: number }[] {
  return Object.keys(throughputStatements).flatMap((workload) => {
    const rows = results.filter((r) => r.workload === wireWorkloadOf(workload) && r.baseline === throughputWireBaseline)
    const time = (contender: string) => {
      const ratio = rows.find((r) => r.contender === contender)?.throughput_ratio
      return ratio === undefined || !(ratio > 0) ? undefined : 1 / ratio
    }
    const plain = time('plain-prisma')
    if (plain === undefined) return []
    return modes.flatMap(([mode, wire, contender]) => {
      const [wireTime, own] = [time(wire), time(contender)]
      return wireTime === undefined || own === undefined ? [] : [{ workload, clients: rows[0]!.clients, mode, floor: plain / (plain + wireTime - 1), measured: plain / own }]
    })
  })
}

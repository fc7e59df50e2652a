import pg from 'pg'
import { setTenantSql } from '../../src/client/tenant-pg-client.js'
import { TenantQuery, type PrefixStatement } from '../../src/client/tenant-query.js'
import { defaultTenantSetting } from '../../src/context/tenant-setting.js'
import { signatureSetting, tenantSigner } from '../../src/context/tenant-signature.js'
import { taskOf, tenantOf, type TenantFixture } from './fixtures.js'
import type { Operation } from './measure.js'

/** The SQL Prisma 7.10 sends for `task.findUnique({ where: { id } })`, parameters included. */
const findUniqueSql =
  'SELECT "public"."tasks"."id", "public"."tasks"."tenant_id", "public"."tasks"."project_id", "public"."tasks"."title", "public"."tasks"."done" FROM "public"."tasks" WHERE ("public"."tasks"."id" = $1 AND 1=1) LIMIT $2 OFFSET $3'
const withTenantFilterSql = findUniqueSql.replace('AND 1=1', 'AND "public"."tasks"."tenant_id" = $4')

export const wireWorkload = 'findUnique-wire'
export const wireBaseline = 'pg: findUnique SQL alone'
/** The driver's part of the floor: set_config in the same write, no policy. */
export const wireSetConfig = 'pg: + set_config in the same write'
/** What prisma-tenancy puts on the wire: with the baseline and plain Prisma's row, it gives the floor of the design. */
export const tenancyWire = "pg: + set_config + policy (prisma-tenancy's wire)"

/** What each variant adds to the baseline, in the order the report lists them. */
const variants = [
  { name: wireBaseline, role: 'unrestricted', setTenant: false, filter: false },
  { name: 'pg: + WHERE tenant_id = $4', role: 'unrestricted', setTenant: false, filter: true },
  { name: wireSetConfig, role: 'unrestricted', setTenant: true, filter: false },
  { name: tenancyWire, role: 'app', setTenant: true, filter: false },
  { name: 'pg: + signed set_config + signed policy (generate --signed)', role: 'signed', setTenant: true, filter: false },
] as const

type Row = unknown[]

function run(client: pg.Client, config: { text: string; values: string[] }, prefix: PrefixStatement[]): Promise<Row[]> {
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
 * the policy applying. Each variant is one connection, so what differs is
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
  const find = (index: number, tenantId: string, taskId: string) => {
    const variant = variants[index]!
    // The signed variant's prefix is the driver's: both settings in one statement.
    const prefix = !variant.setTenant
      ? []
      : variant.role === 'signed'
        ? [{ text: 'SELECT set_config($1, $2, true), set_config($3, $4, true)', values: [defaultTenantSetting, tenantId, signatureName, sign(tenantId)] }]
        : [{ text: setTenantSql, values: [defaultTenantSetting, tenantId] }]
    const config = variant.filter ? { text: withTenantFilterSql, values: [taskId, '1', '0', tenantId] } : { text: findUniqueSql, values: [taskId, '1', '0'] }
    return run(clients[index]!, config, prefix)
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

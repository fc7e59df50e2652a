import { defaultTenantField } from '../context/tenant-setting.js'
import { isTenancyError } from '../errors.js'
import type { TenancyFixture, TenantClient } from './tenancy-fixture.js'
import { statementsWithoutTenant } from './wire-recorder.js'

type Row = Record<string, unknown>

interface Delegate {
  create(args: { data: Row }): Promise<Row>
  findMany(args?: { where?: Row }): Promise<Row[]>
  findFirst(args: { where: Row }): Promise<Row | null>
  updateMany(args: { where: Row; data: Row }): Promise<{ count: number }>
  deleteMany(args: { where: Row }): Promise<{ count: number }>
}

/** The client's model delegates, by the name the client uses (`project`, `task`, ...). */
export type ModelName<Client> = {
  [K in keyof Client]: Client[K] extends { findMany: (...args: never[]) => unknown } ? K : never
}[keyof Client] &
  string

export interface IsolationCase<Client> {
  model: ModelName<Client>
  /** Data for a new row, without the tenant column. */
  data: Row
  /** Data for the update attempt. Default: `data`. */
  update?: Row
  /** How to find the created row again. Default: `{ id: row.id }`. */
  where?: (row: Row) => Row
  /** The tenant field. Default: `tenantId`. */
  tenantField?: string
  /** Owner and intruder. Default: two new tenants made with the fixture's `createTenant`. */
  tenants?: [owner: string, intruder: string]
}

/**
 * Proves on the real database that a model is isolated: writes a row as one
 * tenant, then shows the other tenant cannot read, update, delete it, or
 * insert a row carrying the owner's id, that the row is unchanged for its
 * owner, and that no tenant at all is refused. Throws one error listing every
 * breach.
 */
export async function expectIsolation<Client extends TenantClient<Client>, Admin>(
  fixture: TenancyFixture<Client, Admin>,
  isolationCase: IsolationCase<Client>,
): Promise<void> {
  const [owner, intruder] = isolationCase.tenants ?? ((await fixture.createTenants(2)) as [string, string])
  const delegate = (client: Client) => (client as unknown as Record<string, Delegate>)[isolationCase.model] as Delegate
  const asOwner = delegate(fixture.asTenant(owner))
  const asIntruder = delegate(fixture.asTenant(intruder))
  const tenantField = isolationCase.tenantField ?? defaultTenantField
  const breaches: string[] = []

  const row = await asOwner.create({ data: isolationCase.data })
  const where = isolationCase.where?.(row) ?? { id: row.id }
  if (row[tenantField] !== owner) breaches.push(`the row written as ${owner} has ${tenantField} = ${JSON.stringify(row[tenantField])}`)

  if ((await asIntruder.findMany({ where })).length > 0) breaches.push(`${intruder} can read ${owner}'s row`)
  if ((await asIntruder.updateMany({ where, data: isolationCase.update ?? isolationCase.data })).count > 0) breaches.push(`${intruder} can update ${owner}'s row`)
  if ((await asIntruder.deleteMany({ where })).count > 0) breaches.push(`${intruder} can delete ${owner}'s row`)
  const forged = await asIntruder.create({ data: { ...isolationCase.data, [tenantField]: owner } }).then(
    () => 'accepted',
    (error: unknown) => (isTenancyError(error, 'TENANT_MISMATCH') ? 'refused' : `failed unexpectedly: ${(error as Error).message}`),
  )
  if (forged !== 'refused') breaches.push(`${intruder} inserting a row with ${tenantField} = ${owner} was ${forged}`)

  const after = await asOwner.findFirst({ where })
  if (after === null) breaches.push(`${owner}'s row is gone`)
  else if (JSON.stringify(after) !== JSON.stringify(row)) breaches.push(`${owner}'s row changed: ${JSON.stringify(row)} → ${JSON.stringify(after)}`)

  const unscoped = await delegate(fixture.client).findMany().then(
    () => 'ran',
    (error: unknown) => (isTenancyError(error, 'TENANT_MISSING') ? 'refused' : `failed unexpectedly: ${(error as Error).message}`),
  )
  if (unscoped !== 'refused') breaches.push(`a query with no tenant ${unscoped}`)

  if (breaches.length > 0) throw new Error(`${isolationCase.model} is not isolated:\n- ${breaches.join('\n- ')}`)
}

/**
 * Runs `block` and proves every statement the tenant client sent in it ran
 * with a tenant set in its transaction. Throws listing the ones that did not.
 */
export async function expectNoTenantlessSql<T>(fixture: TenancyFixture<unknown, unknown>, block: () => Promise<T>): Promise<T> {
  const before = fixture.wire.roundTrips.length
  const result = await block()
  const offenders = statementsWithoutTenant(fixture.wire.roundTrips.slice(before))
  if (offenders.length > 0) throw new Error(`SQL was sent without a tenant:\n- ${offenders.join('\n- ')}`)
  return result
}

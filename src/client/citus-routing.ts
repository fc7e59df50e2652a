import { TenancyError } from '../errors.js'

// The parts of Prisma Client (@prisma/client 7) this module reads: the runtime
// datamodel generated into every client, and the JSON protocol query of a
// request. Both are internal; citusRouting checks for the first when tenancy()
// is applied (CONFIG_INVALID without it).
interface RuntimeField {
  name: string
  kind: string
  type: string
}
interface RuntimeDataModel {
  models: Record<string, { fields: RuntimeField[] } | undefined>
}
interface ProtocolQuery {
  modelName?: string
  action?: string
  query?: { arguments?: Record<string, unknown> }
}

/** Actions whose `where` selects the rows they read, change or delete. */
const whereActions = new Set(['findUnique', 'findUniqueOrThrow', 'findFirst', 'findFirstOrThrow', 'findMany', 'aggregate', 'groupBy', 'updateOne', 'updateMany', 'updateManyAndReturn', 'deleteOne', 'deleteMany', 'upsertOne'])
/** Actions whose `data` (`create` for upserts) is the rows they insert. */
const createActions = new Map([
  ['createOne', 'data'],
  ['createMany', 'data'],
  ['createManyAndReturn', 'data'],
  ['upsertOne', 'create'],
])

interface TenantField {
  name: string
  /** The tenant id as the JSON protocol carries a value of the field's type. */
  value(tenantId: string): unknown
}

function tenantFieldOf(fields: RuntimeField[], tenantField: string): TenantField | undefined {
  const field = fields.find((candidate) => candidate.name === tenantField && candidate.kind === 'scalar')
  if (field === undefined) return undefined
  if (field.type === 'Int') return { name: field.name, value: Number }
  if (field.type === 'BigInt') return { name: field.name, value: (tenantId) => ({ $type: 'BigInt', value: tenantId }) }
  return { name: field.name, value: (tenantId) => tenantId }
}

/**
 * A row to insert gets the tenant only when it names no relation: with a
 * relation field (a nested create, a connect) Prisma takes the "checked"
 * input, which refuses the scalar tenant field next to the relation that sets
 * it. Such a row is still routed by Citus, from the tenant column's default,
 * which the coordinator evaluates under the transaction's SET LOCAL.
 */
function withTenant(row: unknown, field: TenantField, tenantId: string, relations: Set<string>): unknown {
  if (row === null || typeof row !== 'object' || Array.isArray(row) || field.name in row) return row
  for (const key of Object.keys(row)) if (relations.has(key)) return row
  return { ...row, [field.name]: field.value(tenantId) }
}

/**
 * The routing filter of Citus mode: adds `<tenantField>: <tenant>` to the
 * `where` of reads, updates and deletes, and to the rows of creates and
 * upserts, of every model that has the tenant field, so that Citus sends the
 * query to the one shard of the tenant (without it, a query filtered by
 * row-level security alone goes to every shard). Row-level security stays the
 * guarantee: a filter or row that already names a tenant is left as it is,
 * never rewritten, so one naming another tenant finds nothing or is refused
 * by the policy, as on one server.
 */
export function citusRouting(client: unknown, tenantField: string): (query: ProtocolQuery, tenantId: string) => void {
  const datamodel = (client as { _runtimeDataModel?: RuntimeDataModel })._runtimeDataModel
  if (datamodel === undefined || typeof datamodel.models !== 'object' || datamodel.models === null) {
    throw new TenancyError(
      'CONFIG_INVALID',
      'This Prisma Client has no runtime datamodel that prisma-tenancy recognises, which Citus mode reads to find the tenant field of each model. prisma-tenancy supports @prisma/client 7 (the prisma-client generator); install a matching version, or turn Citus mode off with tenancyAdapter(url, { citus: false }).',
    )
  }
  const models = new Map<string, { field: TenantField; relations: Set<string> }>()
  for (const [name, model] of Object.entries(datamodel.models)) {
    const field = tenantFieldOf(model?.fields ?? [], tenantField)
    if (field !== undefined) models.set(name, { field, relations: new Set((model?.fields ?? []).filter((f) => f.kind === 'object').map((f) => f.name)) })
  }
  return (query, tenantId) => {
    const model = query.modelName === undefined ? undefined : models.get(query.modelName)
    const args = query.query?.arguments
    if (model === undefined || args === undefined || query.action === undefined) return
    const { field, relations } = model
    if (whereActions.has(query.action)) {
      const where = args.where
      if (where === undefined || where === null) args.where = { [field.name]: field.value(tenantId) }
      else if (typeof where === 'object' && !(field.name in where)) args.where = { ...where, [field.name]: field.value(tenantId) }
    }
    const dataKey = createActions.get(query.action)
    if (dataKey === undefined) return
    const data = args[dataKey]
    args[dataKey] = Array.isArray(data) ? data.map((row) => withTenant(row, field, tenantId, relations)) : withTenant(data, field, tenantId, relations)
  }
}

import { runWithTenant } from '../context/tenant-context.js'
import { TenancyError } from '../errors.js'

// The parts of Prisma Client's request dataloader (runtime/client.js,
// @prisma/client 7) this module wraps. They are internal; tenancy() checks
// for them when it is applied and refuses a client that lacks them.
interface EngineRequest {
  transaction?: { kind?: string }
}
interface DataLoaderOptions {
  batchBy(request: EngineRequest): string | undefined
  batchLoader(requests: EngineRequest[]): Promise<unknown>
  singleLoader(request: EngineRequest): Promise<unknown>
}

const scopedLoaders = new WeakSet<object>()

/**
 * Carries a TenancyError through Prisma's request error handling, which
 * turns any error with a `code` into a PrismaClientKnownRequestError but
 * passes others through; the extension unwraps it from `cause`.
 */
class RefusedRequest extends Error {
  constructor(refusal: TenancyError) {
    super(refusal.message, { cause: refusal })
  }
}

function carried(error: unknown): unknown {
  return error instanceof TenancyError ? new RefusedRequest(error) : error
}

function dataLoaderOptions(client: unknown): DataLoaderOptions | undefined {
  const handler = (client as { _requestHandler?: { dataloader?: { options?: Partial<DataLoaderOptions> } } })._requestHandler
  const options = handler?.dataloader?.options
  if (typeof options?.batchBy !== 'function' || typeof options.batchLoader !== 'function' || typeof options.singleLoader !== 'function') return undefined
  return options as DataLoaderOptions
}

/**
 * Makes Prisma's request batching tenant-aware. Prisma merges the findUnique
 * calls of one tick that share a shape into one query, and dispatches every
 * batch from one process.nextTick, so without this two tenants' calls would
 * share a query and an async context (one tenant's setting). Here:
 * - each request's tenant is resolved when it is queued, in the caller's own
 *   async context (`resolveTenant` throws when there is none or it is invalid,
 *   so such a request never reaches the query engine);
 * - the tenant joins the batch key of requests outside a batch transaction, so
 *   one tenant's calls still merge and different tenants' calls never do;
 * - every batch is dispatched in its own tenant's context;
 * - a batch transaction (`$transaction([...])`) whose operations belong to
 *   different tenants is refused: it is one database transaction, so one tenant.
 */
export function scopeRequestBatching(client: unknown, resolveTenant: () => string): void {
  const options = dataLoaderOptions(client)
  if (options === undefined) {
    throw new TenancyError(
      'CONFIG_INVALID',
      'This Prisma Client has no request dataloader that prisma-tenancy recognises. prisma-tenancy supports @prisma/client 7 with a driver adapter; install a matching version.',
    )
  }
  if (scopedLoaders.has(options)) {
    throw new TenancyError('CONFIG_INVALID', 'tenancy() is already applied to this Prisma Client. Apply it once; use forTenant(id) for a client bound to one tenant.')
  }
  scopedLoaders.add(options)

  const tenantOf = new WeakMap<EngineRequest, string>()
  const { batchBy, batchLoader, singleLoader } = options
  options.batchBy = (request) => {
    let tenantId: string
    try {
      tenantId = resolveTenant()
    } catch (error) {
      throw carried(error)
    }
    tenantOf.set(request, tenantId)
    const key = batchBy(request)
    if (key === undefined || request.transaction?.kind === 'batch') return key
    return `${key}\u0000tenant:${tenantId}`
  }
  options.batchLoader = (requests) => {
    const tenants = new Set(requests.map((request) => tenantOf.get(request)))
    const [tenantId] = tenants
    if (tenants.size !== 1 || tenantId === undefined) {
      return Promise.reject(
        carried(new TenancyError(
          'TENANT_MISMATCH',
          'One $transaction([...]) holds operations of different tenants. A transaction runs as one tenant: split it into one $transaction per tenant, or use the unscoped client for cross-tenant work.',
          { details: { tenants: [...tenants] } },
        )),
      )
    }
    return runWithTenant(tenantId, () => batchLoader(requests))
  }
  options.singleLoader = (request) => {
    const tenantId = tenantOf.get(request)
    return tenantId === undefined ? singleLoader(request) : runWithTenant(tenantId, () => singleLoader(request))
  }
}

import { currentTenantScope, runInTenantScope, type TenantScope } from '../context/tenant-context.js'
import { TenancyError } from '../errors.js'
import { asTenancyError } from './tenancy-errors.js'

// The parts of Prisma Client's request handler (runtime/client.js,
// @prisma/client 7) this module wraps. They are internal; tenancy() checks
// for them when it is applied and refuses a client that lacks them.
interface EngineRequest {
  transaction?: { kind?: string }
  /** `action` is `queryRaw` / `executeRaw` for raw SQL ($queryRaw, $executeRawUnsafe, ...). */
  protocolQuery?: { action?: string }
  /** The extensions of the client the operation was called on (`client._extensions`). */
  extensions?: ClientExtensions
}
interface ClientExtensions {
  /** The merged `client` members of every extension, innermost last. */
  getAllClientExtensions(): Record<PropertyKey, unknown> | undefined
}
interface DataLoaderOptions {
  batchBy(request: EngineRequest): string | undefined
  batchLoader(requests: EngineRequest[]): Promise<unknown>
  singleLoader(request: EngineRequest): Promise<unknown>
}
interface RequestHandler {
  request(request: EngineRequest): Promise<unknown>
  dataloader?: { options?: Partial<DataLoaderOptions> }
}
/** Prisma Client builds every model and raw-SQL promise with this; it runs `callback` when the promise is awaited. */
type CreatePrismaPromise = (callback: (transaction?: unknown) => unknown, ...rest: unknown[]) => unknown
interface ClientInternals {
  _requestHandler?: RequestHandler
  _createPrismaPromise?: CreatePrismaPromise
  _extensions?: Partial<ClientExtensions> & ExtensionStack
  /**
   * The PrismaClient instance itself. Every `$extends` makes an object whose
   * prototype is this instance (not the client it was called on), so what is
   * set on it reaches every client derived from it, in any order of extensions.
   */
  _originalClient?: ClientInternals
}
/** Prisma's stack of applied extensions: a linked list, innermost first. */
interface ExtensionStack {
  head?: ExtensionNode
  isEmpty?: () => boolean
}
interface ExtensionNode {
  extension?: { query?: unknown; result?: unknown }
  previous?: ExtensionNode
}

const boundTenant = Symbol('prisma-tenancy.boundTenant')
/** A request's tenant, or why it was refused, set in batchBy for the loaders. */
const requestScope = Symbol('prisma-tenancy.requestScope')
type ScopedRequest = EngineRequest & { [requestScope]?: string | { refused: unknown } }

/**
 * The extension that binds a client to one tenant (forTenant). It adds no
 * query hook, which Prisma would run on every operation (a promise and a deep
 * copy of the arguments each): the binding is a client member, and every
 * request carries its client's extensions, so it is read when the request is
 * queued.
 */
export function tenantBinding(tenantId: string) {
  return { name: 'prisma-tenancy:forTenant', client: { [boundTenant]: tenantId } }
}

const scopedHandlers = new WeakSet<object>()

/**
 * Prisma runs every operation of an extended client through its query-hook
 * chain, and every result through its result-extension visitor, whenever the
 * client has any extension at all, hooks or not: an extra promise, a copy of
 * the arguments and a walk of the result per operation, about 15 µs of a
 * 400 µs findUnique. tenancy() and forTenant add client members only, so when
 * no extension in a client's stack has query hooks or result fields, the stack
 * is marked as having none to run. An extension applied on top gets a stack of
 * its own, unmarked, so its hooks run as Prisma intends.
 */
export function skipInertExtensionHooks<T>(client: T): T {
  const stack = (client as ClientInternals)._extensions
  if (stack === undefined || typeof stack.isEmpty !== 'function') return client
  for (let node = stack.head; node !== undefined; node = node.previous) {
    if (node.extension === undefined || node.extension.query !== undefined || node.extension.result !== undefined) return client
  }
  Object.defineProperty(stack, 'isEmpty', { value: () => true })
  return client
}

/**
 * Carries a TenancyError through Prisma's request error handling, which
 * turns any error with a `code` into a PrismaClientKnownRequestError but
 * passes others through; `asTenancyError` unwraps it from `cause`.
 */
class RefusedRequest extends Error {
  constructor(refusal: TenancyError) {
    super(refusal.message, { cause: refusal })
  }
}

function rethrowAsTenancyError(error: unknown): never {
  throw asTenancyError(error)
}

function carried(error: unknown): unknown {
  return error instanceof TenancyError ? new RefusedRequest(error) : error
}

function requestHandler(client: unknown): { handler: RequestHandler; options: DataLoaderOptions } | undefined {
  const internals = client as ClientInternals
  const handler = internals._requestHandler
  const options = handler?.dataloader?.options
  if (typeof handler?.request !== 'function' || typeof internals._extensions?.getAllClientExtensions !== 'function') return undefined
  if (typeof options?.batchBy !== 'function' || typeof options.batchLoader !== 'function' || typeof options.singleLoader !== 'function') return undefined
  if (typeof internals._createPrismaPromise !== 'function' || typeof internals._originalClient?._createPrismaPromise !== 'function') return undefined
  return { handler, options: options as DataLoaderOptions }
}

const rawActions = new Set(['queryRaw', 'executeRaw'])

function isRaw(request: EngineRequest): boolean {
  return rawActions.has(request.protocolQuery?.action ?? '')
}

/**
 * Prisma's promises are lazy: the query starts when one is awaited, in the
 * awaiting code's async context. Each promise created through the client now
 * runs in the context it was created in, so a query made inside
 * runWithTenant('b', ...) and awaited inside runWithTenant('a', ...) still
 * runs as b. One getStore() per operation, and a scope switch only when the
 * two contexts differ. A promise of a forTenant client whose stack has query
 * hooks runs in its binding's scope instead (bindingScope).
 */
function runPromisesInCreationScope(internals: ClientInternals & { _createPrismaPromise: CreatePrismaPromise }): void {
  const create = internals._createPrismaPromise
  // Prisma calls it as a method of the client the operation was called on: `this` is that client.
  internals._createPrismaPromise = function (this: ClientInternals | undefined, callback, ...rest) {
    const created = bindingScope(this) ?? currentTenantScope()
    return create.call(this, (transaction) => (currentTenantScope() === created ? callback(transaction) : runInTenantScope(created, () => callback(transaction))), ...rest)
  }
}

/**
 * Citus mode's routing filter: `known()` says whether the adapter runs in it
 * (undefined until the first connection told), `detect()` finds out, `route`
 * adds the tenant to one request's query.
 */
export interface RequestRouting {
  known(): boolean | undefined
  detect(): Promise<boolean>
  route(query: object, tenantId: string): void
}

/**
 * The tenant of a forTenant client, as an async context, where code runs
 * between the call and the request: the query hooks of an extension applied
 * to the client (Prisma runs them in the promise's callback, before the
 * request is queued). A hook that hands the operation to another client must
 * take the tenant along: @prisma/extension-read-replicas sends reads to its
 * replica client from its hook, and that client, a tenancy client of its own,
 * reads the tenant from the context. A stack without hooks (skipInertExtensionHooks)
 * runs nothing in between, and pays for no scope.
 */
function bindingScope(client: ClientInternals | undefined): TenantScope | undefined {
  const stack = client?._extensions
  if (stack?.isEmpty?.() !== false) return undefined
  const tenantId = stack.getAllClientExtensions?.()?.[boundTenant]
  return typeof tenantId === 'string' ? { tenantId } : undefined
}

/**
 * Makes every request of a client run as its tenant, at Prisma's request
 * handler, which every operation passes through (model queries, raw SQL,
 * batch and interactive transactions):
 * - each request's tenant is resolved when it is queued: the tenant bound
 *   with `tenantBinding` on the client it was called on (innermost binding
 *   wins), else `resolveTenant()` in the caller's async context, which throws
 *   when there is none or it is invalid, so such a request never reaches the
 *   query engine;
 * - Prisma merges the findUnique calls of one tick that share a shape into one
 *   query and dispatches every batch from one process.nextTick; the tenant
 *   joins the batch key of requests outside a batch transaction, so one
 *   tenant's calls still merge and different tenants' calls never do, and
 *   every batch is dispatched in its own tenant's context;
 * - a batch transaction (`$transaction([...])`) whose operations belong to
 *   different tenants is refused: it is one database transaction, so one tenant;
 * - errors reach the caller as TenancyErrors where they are ours or a
 *   row-level security refusal (asTenancyError);
 * - with `routing` (Citus mode), each request's query gets its tenant's
 *   routing filter before it is queued.
 */
export function scopeRequests(client: unknown, resolveTenant: () => string, routing?: RequestRouting): void {
  const internals = requestHandler(client)
  if (internals === undefined) {
    throw new TenancyError(
      'CONFIG_INVALID',
      'This Prisma Client has no request handler that prisma-tenancy recognises. prisma-tenancy supports @prisma/client 7 with a driver adapter; install a matching version.',
    )
  }
  const { handler, options } = internals
  if (scopedHandlers.has(handler)) {
    throw new TenancyError('CONFIG_INVALID', 'tenancy() is already applied to this Prisma Client. Apply it once; use forTenant(id) for a client bound to one tenant.')
  }
  scopedHandlers.add(handler)
  runPromisesInCreationScope((client as { _originalClient: ClientInternals & { _createPrismaPromise: CreatePrismaPromise } })._originalClient)

  // A request's tenant, or why it was refused. A refused operation of a batch
  // transaction must still join its batch and fail it: thrown from batchBy, it
  // would leave the batch, and Prisma would run the remaining operation alone,
  // outside any transaction, and commit it. Kept on the request itself (a
  // symbol key): a WeakMap entry per request costs a hash insert and work for the collector.
  const { batchBy, batchLoader, singleLoader } = options
  const request = handler.request.bind(handler)
  handler.request = (params) => {
    // No wait unless Citus mode is still unknown, and no async function around the request: one promise per request for the error translation.
    let routed: Promise<void> | undefined
    try {
      routed = routing === undefined || params.protocolQuery === undefined ? undefined : routeRequest(params, params.protocolQuery, routing, resolveTenant)
    } catch (error) {
      return Promise.reject(asTenancyError(error))
    }
    return (routed === undefined ? request(params) : routed.then(() => request(params))).catch(rethrowAsTenancyError)
  }
  options.batchBy = (request: ScopedRequest) => {
    let tenantId = request.extensions?.getAllClientExtensions()?.[boundTenant] as string | undefined
    if (tenantId === undefined) {
      try {
        tenantId = resolveTenant()
      } catch (error) {
        if (request.transaction?.kind !== 'batch') throw carried(error)
        request[requestScope] = { refused: carried(error) }
        return batchBy(request)
      }
    }
    request[requestScope] = tenantId
    const key = batchBy(request)
    if (key === undefined || request.transaction?.kind === 'batch') return key
    return `${key}\u0000tenant:${tenantId}`
  }
  options.batchLoader = (requests: ScopedRequest[]) => {
    const tenants = new Set<string | undefined>()
    for (const request of requests) {
      const scope = request[requestScope]
      if (typeof scope === 'object') return Promise.reject(scope.refused)
      tenants.add(scope)
    }
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
    return runInTenantScope(scopeFor(tenantId, requests.some(isRaw)), () => batchLoader(requests))
  }
  options.singleLoader = (request: ScopedRequest) => {
    const scope = request[requestScope]
    if (typeof scope === 'object') return Promise.reject(scope.refused)
    return scope === undefined ? singleLoader(request) : runInTenantScope(scopeFor(scope, isRaw(request)), () => singleLoader(request))
  }
}

/**
 * Citus mode: the routing filter of a request's own tenant. A request with no
 * valid tenant is left as it is, for batchBy to refuse, before the adapter is
 * asked whether it runs Citus (which may open the first connection).
 */
function routeRequest(request: EngineRequest, query: object, routing: RequestRouting, resolveTenant: () => string): Promise<void> | undefined {
  const known = routing.known()
  if (known === false) return undefined
  let tenantId = request.extensions?.getAllClientExtensions()?.[boundTenant] as string | undefined
  try {
    tenantId ??= resolveTenant()
  } catch {
    return undefined
  }
  const id = tenantId
  if (known === true) routing.route(query, id)
  else return routing.detect().then((citus) => (citus ? routing.route(query, id) : undefined))
  return undefined
}

// The driver reads `raw` to set the tenant again after raw SQL in a transaction and to reset the session afterwards.
function scopeFor(tenantId: string, raw: boolean): TenantScope {
  return raw ? { tenantId, raw } : { tenantId }
}

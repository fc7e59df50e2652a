import { AsyncLocalStorage } from 'node:async_hooks'

/**
 * The tenant of the code running now. The client extension reads it before a
 * request is queued and the tenancy driver reads it when a query is sent; both
 * happen inside this context, so one store carries the tenant end to end.
 */
export interface TenantScope {
  readonly tenantId: string
  /** Set by the request handler around raw SQL ($queryRaw, $executeRaw...), for the driver. */
  readonly raw?: boolean
}

const storage = new AsyncLocalStorage<TenantScope>()

/**
 * Runs `fn` with `tenantId` as the current tenant, for code that has no client
 * of its own to bind (request middleware, job runners). Every tenancy client
 * operation started inside `fn` (and in callbacks and promises it creates)
 * runs as this tenant, unless it is made on a client from `forTenant`, whose
 * explicit binding wins. The id is validated when an operation uses it.
 */
export function runWithTenant<T>(tenantId: string, fn: () => T): T {
  return storage.run({ tenantId }, () => {
    const result = fn()
    // Prisma's promises are lazy: the query starts when one is awaited. Start
    // it here, inside the scope, or `runWithTenant(id, () => prisma.x.findMany())`
    // would run when the caller awaits it, outside the tenant.
    return !(result instanceof Promise) && isThenable(result) ? (new Promise((resolve, reject) => result.then(resolve, reject)) as T) : result
  })
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function'
}

/**
 * The tenant id of the current async context (`runWithTenant`), if any. A
 * `forTenant` binding is not an async context: it travels with the client's
 * requests and does not show here.
 */
export function currentTenantId(): string | undefined {
  return storage.getStore()?.tenantId
}

/** The scope of the code running now, as it is: what a lazy Prisma query captures when it is created. */
export function currentTenantScope(): TenantScope | undefined {
  return storage.getStore()
}

/** Runs `fn` in `scope` (none: outside any tenant), for code that carries a scope from elsewhere. */
export function runInTenantScope<T>(scope: TenantScope | undefined, fn: () => T): T {
  return scope === undefined ? storage.exit(fn) : storage.run(scope, fn)
}

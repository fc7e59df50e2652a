import { Prisma } from '@prisma/client/extension'
import { currentTenantId } from '../context/tenant-context.js'
import { tenantIdValidator, type TenantIdSchema } from '../context/tenant-id.js'
import { parseTenancyNames } from '../context/tenant-setting.js'
import { TenancyError } from '../errors.js'
import { scopeRequests, skipInertExtensionHooks, tenantBinding } from './request-scoping.js'
import { isUnscopedAdapter, TenancyPg } from './tenancy-adapter.js'

export interface TenancyOptions {
  /** The custom setting the policies read. Default `app.current_tenant`. */
  setting?: string
  /** What a valid tenant id is. Default: 1-63 of [A-Za-z0-9_-]. E.g. `z.uuid()`. */
  tenantId?: TenantIdSchema
}

/**
 * Bound clients are immutable, so forTenant hands out the same one for the
 * same tenant: building one ($extends) costs more than a query's round trip,
 * and applications call forTenant per request.
 */
const boundClientCacheSize = 1000
const boundClients = new WeakMap<object, Map<string, unknown>>()

function bindTenant(client: object, tenantId: string): unknown {
  return skipInertExtensionHooks((client as { $extends: (extension: object) => unknown }).$extends(tenantBinding(tenantId)))
}

/**
 * The tenancy client extension.
 *
 *   const prisma = new PrismaClient({ adapter: tenancyAdapter(url) }).$extends(tenancy())
 *   const acme = prisma.forTenant('acme')
 *   await runWithTenant('acme', () => prisma.project.findMany())
 *
 * Every operation runs as one tenant: the one bound by `forTenant` (innermost
 * binding wins, so it beats an enclosing `runWithTenant`), else the one of the
 * enclosing `runWithTenant`, else none, which throws TENANT_MISSING before
 * any SQL. The tenant is set by the adapter in the same round trip as the
 * query, in the query's own transaction.
 */
export function tenancy(options: TenancyOptions = {}) {
  const { setting } = parseTenancyNames({ setting: options.setting })
  const validate = tenantIdValidator(options.tenantId)
  const resolveTenant = (): string => {
    const tenantId = currentTenantId()
    if (tenantId === undefined) {
      throw new TenancyError(
        'TENANT_MISSING',
        'No tenant for this operation, so it was not sent. Use prisma.forTenant(id), or run it inside runWithTenant(id, fn); for cross-tenant or admin work use a separate client on unscopedAdapter(adminUrl).',
      )
    }
    return validate(tenantId)
  }

  return Prisma.defineExtension((client) => {
    const adapter = (client as unknown as { _engineConfig?: { adapter?: unknown } })._engineConfig?.adapter
    if (!(adapter instanceof TenancyPg)) {
      throw new TenancyError(
        'ADAPTER_REQUIRED',
        isUnscopedAdapter(adapter)
          ? 'tenancy() was applied to a client on unscopedAdapter(). Unscoped clients stay unscoped: create the tenant client with `new PrismaClient({ adapter: tenancyAdapter(appUrl) })`.'
          : "tenancy() needs the tenancy driver adapter, which sets the tenant in each query's transaction. Create the client with `new PrismaClient({ adapter: tenancyAdapter(process.env.DATABASE_URL) })` (import { tenancyAdapter } from 'prisma-tenancy').",
        { details: { adapter: adapter?.constructor?.name ?? null } },
      )
    }
    adapter.useSetting(setting)
    scopeRequests(client, resolveTenant)

    return skipInertExtensionHooks(client.$extends({
      name: 'prisma-tenancy',
      client: {
        /** A client whose every operation runs as `tenantId`, with the same models and methods. */
        forTenant<T>(this: T, tenantId: string): T {
          const id = validate(tenantId)
          const self = Prisma.getExtensionContext(this) as unknown as object
          let bound = boundClients.get(self)
          if (bound === undefined) {
            bound = new Map()
            boundClients.set(self, bound)
          }
          const cached = bound.get(id)
          if (cached !== undefined) {
            // Most recently used last: the first key is the one to evict.
            bound.delete(id)
            bound.set(id, cached)
            return cached as T
          }
          const client = bindTenant(self, id)
          bound.set(id, client)
          if (bound.size > boundClientCacheSize) bound.delete(bound.keys().next().value as string)
          return client as T
        },
      },
    }))
  })
}

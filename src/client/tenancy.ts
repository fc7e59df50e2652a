import { Prisma } from '@prisma/client/extension'
import { z } from 'zod'
import { currentTenantId } from '../context/tenant-context.js'
import { tenantIdValidator, type TenantIdSchema } from '../context/tenant-id.js'
import { parseTenancyNames } from '../context/tenant-setting.js'
import { TenancyError } from '../errors.js'
import { citusRouting } from './citus-routing.js'
import { scopeRequests, skipInertExtensionHooks, tenantBinding, type RequestRouting } from './request-scoping.js'
import { isUnscopedAdapter, TenancyPg } from './tenancy-adapter.js'
import type { RawSqlMode } from './tenant-pg-client.js'

export interface TenancyOptions {
  /** The custom setting the policies read. Default `app.current_tenant`. */
  setting?: string
  /** What a valid tenant id is. Default: 1-63 of [A-Za-z0-9_-]. E.g. `z.uuid()`. */
  tenantId?: TenantIdSchema
  /**
   * Raw SQL through tenant clients: `'allow'` (default), `'no-explain'` (refuse
   * EXPLAIN, whose estimates come from every tenant's statistics) or `'refuse'`
   * (every $queryRaw/$executeRaw call fails with RAW_SQL_REFUSED).
   */
  raw?: RawSqlMode
  /**
   * The Prisma field that holds the tenant, as for `prisma-tenancy generate
   * --tenant-field`. Default `tenantId`. Citus mode adds it to each model query for routing.
   */
  tenantField?: string
  /**
   * Add `<tenantField>: <tenant>` to the where of every model query (and to
   * created rows), as Citus mode does. For tables partitioned by tenant
   * (`/// @tenancy.partitioned`): PostgreSQL then prunes to the tenant's
   * partition when it plans the query, instead of planning every partition
   * and pruning on the policy's setting when the query starts. Row-level
   * security stays the guarantee. Default false.
   */
  tenantFilter?: boolean
}

const rawModes = z.enum(['allow', 'no-explain', 'refuse']).default('allow')

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
  const { setting, tenantField } = parseTenancyNames({ setting: options.setting, tenantField: options.tenantField })
  const validate = tenantIdValidator(options.tenantId)
  const raw = rawModes.safeParse(options.raw)
  if (!raw.success) {
    throw new TenancyError('CONFIG_INVALID', `tenancy({ raw }) must be 'allow', 'no-explain' or 'refuse', not ${JSON.stringify(options.raw)}.`, { cause: raw.error })
  }
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
    adapter.useRawMode(raw.data)
    scopeRequests(client, resolveTenant, options.tenantFilter === true ? tenantFiltering(client, tenantField) : citusRequestRouting(client, adapter, tenantField))

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

/** The routing filter of Citus mode on every request, whatever the server (tenancy({ tenantFilter: true })). */
function tenantFiltering(client: unknown, tenantField: string): RequestRouting {
  const route = citusRouting(client, tenantField)
  return { known: () => true, detect: () => Promise.resolve(true), route }
}

/**
 * The routing filter, once the adapter is known to run in Citus mode. The
 * runtime datamodel it reads is checked when tenancy() is applied to a client
 * on a Citus-forced adapter, else on the first request in Citus mode.
 */
function citusRequestRouting(client: unknown, adapter: TenancyPg, tenantField: string): RequestRouting {
  let route = adapter.citusForced() ? citusRouting(client, tenantField) : undefined
  return {
    known: () => adapter.citusKnown(),
    detect: () => adapter.citusMode(),
    route(query, tenantId) {
      route ??= citusRouting(client, tenantField)
      route(query, tenantId)
    },
  }
}


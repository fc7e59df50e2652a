import pg from 'pg'
import { z } from 'zod'
import { TenancyPool } from '../client/tenancy-adapter.js'
import { runWithTenant } from '../context/tenant-context.js'
import { defaultTenantSetting, parseTenancyNames } from '../context/tenant-setting.js'
import { parseDatabaseUrl } from '../database/connection-url.js'
import { quoteIdent } from '../database/sql-identifiers.js'
import { TenancyError } from '../errors.js'

/** Which tenants exist. The resolver answers 404 for a tenant the registry does not know. */
export interface TenantRegistry {
  has(tenantId: string): Promise<boolean>
}

export interface CachedRegistry extends TenantRegistry {
  /** Forgets what is cached about one tenant, or about every tenant. */
  invalidate(tenantId?: string): void
}

export interface CachedRegistryOptions {
  /** Does this tenant exist? Called on a cache miss; concurrent misses for one id share one call. */
  lookup: (tenantId: string) => Promise<boolean>
  /** How long a known tenant stays cached, in ms. Default 60 000. */
  ttlMs?: number
  /** How long an unknown tenant stays cached, in ms (short, so a new tenant is found soon). Default 5 000. */
  unknownTtlMs?: number
  /** Most tenants cached at once; the oldest entry goes first. Default 10 000. */
  maxEntries?: number
  /** The clock, in ms. Default `performance.now`. */
  now?: () => number
}

const cacheOptions = z.object({
  ttlMs: z.number().int().min(0).default(60_000),
  unknownTtlMs: z.number().int().min(0).default(5_000),
  maxEntries: z.number().int().positive().default(10_000),
})

function parseCacheOptions(options: object, what: string): z.output<typeof cacheOptions> {
  const parsed = cacheOptions.safeParse(options)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new TenancyError('CONFIG_INVALID', `${what}: ${issue?.path.join('.')} ${issue?.message ?? 'is invalid'}. Fix the options passed to it.`, { cause: parsed.error })
  }
  return parsed.data
}

/** Caching that can be switched off while invalidations may be missed (the database listener is down). */
interface CacheControl {
  enabled(): boolean
}

function createCache(options: CachedRegistryOptions, what: string, control: CacheControl = { enabled: () => true }): CachedRegistry {
  const { ttlMs, unknownTtlMs, maxEntries } = parseCacheOptions(options, what)
  const now = options.now ?? (() => performance.now())
  const entries = new Map<string, { exists: boolean; expires: number }>()
  const pending = new Map<string, Promise<boolean>>()
  // Bumped by every invalidation: a lookup that started before one must not cache its (possibly stale) answer.
  let generation = 0

  return {
    async has(tenantId) {
      const entry = entries.get(tenantId)
      if (entry !== undefined && entry.expires > now()) return entry.exists
      entries.delete(tenantId)
      const inFlight = pending.get(tenantId)
      if (inFlight !== undefined) return inFlight
      const started = generation
      // A lookup started after an invalidation may be pending under the same id by the time this one settles.
      const settle = () => pending.get(tenantId) === lookup && pending.delete(tenantId)
      const lookup: Promise<boolean> = options.lookup(tenantId).then(
        (exists) => {
          settle()
          if (started === generation && control.enabled()) {
            if (entries.size >= maxEntries) entries.delete(entries.keys().next().value as string)
            entries.set(tenantId, { exists, expires: now() + (exists ? ttlMs : unknownTtlMs) })
          }
          return exists
        },
        (error: unknown) => {
          settle()
          throw error
        },
      )
      pending.set(tenantId, lookup)
      return lookup
    },
    invalidate(tenantId) {
      generation += 1
      if (tenantId === undefined) {
        entries.clear()
        pending.clear()
      } else {
        entries.delete(tenantId)
        pending.delete(tenantId)
      }
    },
  }
}

/**
 * A registry that asks `lookup` and caches the answer for a while:
 * `cachedRegistry({ lookup: async (id) => (await admin.tenant.count({ where: { id } })) > 0, ttlMs: 60_000 })`.
 * Call `invalidate(id)` when a tenant is removed.
 */
export function cachedRegistry(options: CachedRegistryOptions): CachedRegistry {
  return createCache(options, 'cachedRegistry()')
}

/** The channel `prisma-tenancy tenant remove` notifies, with the removed tenant's id as payload. */
export const tenantRemovedChannel = 'prisma_tenancy_tenant_removed'

export interface DatabaseRegistryOptions extends Omit<CachedRegistryOptions, 'lookup'> {
  /**
   * Connection string of the application role. Connect directly, not through
   * PgBouncer in transaction mode: the registry keeps one connection LISTENing.
   */
  connectionString: string
  /** The registry table. Default `Tenant`. */
  table?: string
  /** Its schema. Default: the connection's search_path. */
  schema?: string
  /** The column holding the tenant id. Default `id`. */
  idColumn?: string
  /** The tenant setting, as given to `tenancy({ setting })`. Default `app.current_tenant`. */
  setting?: string
  /** Milliseconds before reconnecting the listener after it lost its connection. Default 1 000. */
  reconnectMs?: number
}

export interface DatabaseRegistry extends CachedRegistry {
  /** Resolves once the listener is connected and listening (rejects if its first connection fails). */
  readonly listening: Promise<void>
  close(): Promise<void>
}

/**
 * The tenant registry table as a cached registry. Each lookup runs as the
 * tenant it asks about (so it works when the registry's policy shows a tenant
 * its own row only), and one connection LISTENs on `prisma_tenancy_tenant_removed`
 * to drop a removed tenant from the cache at once. While that connection is
 * down nothing is cached, since a removal could go unnoticed.
 */
export function databaseRegistry(options: DatabaseRegistryOptions): DatabaseRegistry {
  const connectionString = parseDatabaseUrl(options.connectionString, 'databaseRegistry({ connectionString })')
  const { setting } = parseTenancyNames({ setting: options.setting ?? defaultTenantSetting })
  const table = (options.schema === undefined ? '' : `${quoteIdent(options.schema)}.`) + quoteIdent(options.table ?? 'Tenant')
  const sql = `SELECT 1 FROM ${table} WHERE ${quoteIdent(options.idColumn ?? 'id')} = $1 LIMIT 1`
  const reconnectMs = options.reconnectMs ?? 1000
  const pool = new TenancyPool({ connectionString, max: 2 }, { setting, raw: 'allow' })
  pool.on('error', () => {
    // An idle connection that dies is dropped by the pool; the next lookup opens another.
  })

  let listener: pg.Client | undefined
  let listeningNow = false
  let closed = false
  let retry: NodeJS.Timeout | undefined

  const cache = createCache(
    {
      ...options,
      lookup: async (tenantId) => {
        try {
          const result = await runWithTenant(tenantId, () => pool.query(sql, [tenantId]))
          return result.rowCount !== null && result.rowCount > 0
        } catch (error) {
          throw new TenancyError('TENANT_LOOKUP_FAILED', `Looking up tenant "${tenantId}" in ${table} failed: ${(error as Error).message}. Check databaseRegistry({ connectionString, table, idColumn }).`, { cause: error })
        }
      },
    },
    'databaseRegistry()',
    { enabled: () => listeningNow },
  )

  async function listen(): Promise<void> {
    const client = new pg.Client({ connectionString })
    listener = client
    const lost = () => {
      if (listener !== client) return
      listeningNow = false
      cache.invalidate()
      listener = undefined
      client.end().catch(() => {})
      if (!closed) {
        retry = setTimeout(() => listen().catch(() => {}), reconnectMs)
        retry.unref()
      }
    }
    client.on('error', lost)
    client.on('end', lost)
    client.on('notification', (message) => {
      if (message.channel === tenantRemovedChannel && message.payload !== undefined) cache.invalidate(message.payload)
    })
    try {
      await client.connect()
      await client.query(`LISTEN ${quoteIdent(tenantRemovedChannel)}`)
    } catch (error) {
      lost()
      throw new TenancyError('DATABASE_UNREACHABLE', `The tenant registry could not LISTEN on ${tenantRemovedChannel}: ${(error as Error).message}. Check databaseRegistry({ connectionString }); it needs a direct connection, not PgBouncer in transaction mode.`, { cause: error })
    }
    if (listener === client && !closed) listeningNow = true
  }

  const listening = listen()
  // Lookups work without the listener (uncached); the caller sees the failure through `listening`.
  listening.catch(() => {})

  return {
    has: (tenantId) => cache.has(tenantId),
    invalidate: (tenantId) => cache.invalidate(tenantId),
    listening,
    async close() {
      closed = true
      listeningNow = false
      clearTimeout(retry)
      const client = listener
      listener = undefined
      await Promise.allSettled([client?.end(), pool.end()])
    },
  }
}

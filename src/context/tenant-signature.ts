import { createHmac } from 'node:crypto'
import { z } from 'zod'
import { TenancyError } from '../errors.js'

/**
 * The signed tenant context. Next to the plain tenant id (which column defaults read), the
 * driver sets a second setting, `<setting>_sig`, to `<expiry>.<hmac>`: expiry in Unix seconds (10 digits,
 * until 2286), hmac = HMAC-SHA256(key, `<expiry>:<tenant>`) in hex. The policies compare with
 * `prisma_tenancy.current_tenant()`, a SECURITY DEFINER function that recomputes the HMAC from a
 * key table the application role cannot read, and answers the tenant only when both agree and the
 * expiry lies ahead. SQL run through the app role can set either setting to anything, but cannot
 * produce a valid signature for another tenant, nor reuse an old one past its expiry.
 */
export function signatureSetting(setting: string): string {
  return `${setting}_sig`
}

/** The key as `prisma-tenancy signing-key set` prints it: 32 random bytes, base64url. */
export const signingKeySchema = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9_-]{43}$/, 'must be the 43-character key printed by `prisma-tenancy signing-key set`')

export function decodeSigningKey(key: string): Buffer {
  const parsed = signingKeySchema.safeParse(key)
  if (!parsed.success) {
    throw new TenancyError('CONFIG_INVALID', `The signingKey option ${parsed.error.issues[0]?.message ?? 'is invalid'}. Set it from the environment variable you stored it in.`, {
      cause: parsed.error,
    })
  }
  return Buffer.from(parsed.data, 'base64url')
}

/** The signature value for one tenant and expiry (Unix seconds). */
export function tenantSignature(key: Buffer, tenant: string, expiresAt: number): string {
  return `${expiresAt}.${createHmac('sha256', key).update(`${expiresAt}:${tenant}`).digest('hex')}`
}

export interface TenantSignerOptions {
  /** How long a signature is valid, in seconds. Default 600. */
  ttlSeconds?: number | undefined
  /** Clock in milliseconds, for tests. */
  now?: () => number
}

/** Bounds the cache; past it, the oldest half is dropped (a tenant whose entry went is signed again). */
const maxCachedTenants = 10_000

/**
 * Signs tenant ids for the driver. A signature is reused until half its lifetime has passed, so
 * the per-query cost is a map lookup and a clock read; the other half leaves room for clock skew
 * between the application and the database, and for long transactions (the database checks the
 * expiry against the transaction's start).
 */
export function tenantSigner(key: string, options: TenantSignerOptions = {}): (tenant: string) => string {
  const secret = decodeSigningKey(key)
  const ttl = options.ttlSeconds ?? 600
  const now = options.now ?? Date.now
  const cache = new Map<string, { value: string; renewAt: number }>()
  return (tenant) => {
    const time = now()
    const cached = cache.get(tenant)
    if (cached !== undefined && time < cached.renewAt) return cached.value
    if (cache.size >= maxCachedTenants) for (const old of [...cache.keys()].slice(0, maxCachedTenants / 2)) cache.delete(old)
    const expiresAt = Math.floor(time / 1000) + ttl
    const value = tenantSignature(secret, tenant, expiresAt)
    cache.set(tenant, { value, renewAt: time + (ttl * 1000) / 2 })
    return value
  }
}

import type { IncomingMessage } from 'node:http'
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey } from 'jose'
import pg from 'pg'
import express from 'express'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { isTenancyError } from '../src/errors.js'
import { cachedRegistry, databaseRegistry, header, jwtClaim, pathPrefix, subdomain, tenantRemovedChannel, tenantResolver, type TenantResolution } from '../src/http/index.js'
import { useTestDatabase } from '../src/testing/index.js'
import { requestLoopback, serveOnLoopback, type LoopbackServer } from './support/loopback.js'

const secret = 'a-test-secret-that-is-at-least-32-bytes-long'
const key = new TextEncoder().encode(secret)

function request(path = '/', headers: Record<string, string> = {}, host = 'app.test'): Request {
  return new Request(`http://${host}${path}`, { headers })
}

function hs256(claims: Record<string, unknown>, options: { expiresIn?: string; audience?: string; alg?: string; signWith?: Uint8Array } = {}): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: options.alg ?? 'HS256' }).setIssuedAt()
  if (options.expiresIn !== undefined) jwt.setExpirationTime(options.expiresIn)
  if (options.audience !== undefined) jwt.setAudience(options.audience)
  return jwt.sign(options.signWith ?? key)
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

function expectRefusal(result: TenantResolution, status: number, code: string) {
  expect(result.ok ? result : { status: result.status, code: result.code }).toEqual({ status, code })
}

function expectTenant(result: TenantResolution, tenantId: string, source?: string) {
  expect(result.ok ? { tenantId: result.tenantId, source: source === undefined ? undefined : result.source } : result).toEqual({ tenantId, source })
}

describe('subdomain', () => {
  const resolver = tenantResolver({ from: [subdomain({ baseDomain: 'example.com' })] })

  it('takes the label in front of the base domain, ignoring the port and folding case', async () => {
    expectTenant(await resolver.resolve(request('/', {}, 'acme.example.com')), 'acme')
    expectTenant(await resolver.resolve(request('/', {}, 'ACME.Example.COM:8443')), 'acme')
  })

  it('yields nothing for www, the bare domain, deeper names and other domains', async () => {
    for (const host of ['www.example.com', 'example.com', 'example.com:8080', 'a.b.example.com', 'acme.example.org', 'acmeexample.com']) {
      expectRefusal(await resolver.resolve(request('/', {}, host)), 400, 'tenant_missing')
    }
  })

  it('refuses a base domain that is not a host name', () => {
    expect(() => subdomain({ baseDomain: 'https://example.com/' })).toThrow(/host name/)
  })
})

describe('header and pathPrefix', () => {
  it('reads X-Tenant-ID by default, or the header named', async () => {
    expectTenant(await tenantResolver({ from: [header()] }).resolve(request('/', { 'x-tenant-id': ' acme ' })), 'acme', 'header')
    expectTenant(await tenantResolver({ from: [header({ name: 'X-Org' })] }).resolve(request('/', { 'X-Org': 'globex' })), 'globex', 'header')
  })

  it('reads the segment after /t/, percent-decoded', async () => {
    const resolver = tenantResolver({ from: [pathPrefix()] })
    expectTenant(await resolver.resolve(request('/t/acme/projects?x=1')), 'acme', 'pathPrefix')
    expectTenant(await resolver.resolve(request('/t/acme%2Dtwo')), 'acme-two')
    expectRefusal(await resolver.resolve(request('/t/')), 400, 'tenant_missing')
    expectRefusal(await resolver.resolve(request('/projects/t/acme')), 400, 'tenant_missing')
  })
})

describe('the chain', () => {
  const resolver = tenantResolver({ from: [jwtClaim({ secret }), header(), subdomain({ baseDomain: 'example.com' }), pathPrefix()] })

  it('answers a request naming no tenant with 400 and a JSON body listing what it looked for', async () => {
    const result = await resolver.resolve(request('/projects', {}, 'example.com'))
    expectRefusal(result, 400, 'tenant_missing')
    expect(result.ok ? undefined : JSON.parse(JSON.stringify(result.body))).toMatchObject({
      error: {
        code: 'tenant_missing',
        lookedFor: ['the "tenant_id" claim of a verified bearer token', 'the X-Tenant-ID header', 'a subdomain of example.com', 'a path starting /t/<tenant>/'],
      },
    })
  })

  it('reports the first source in the chain that yields the id, and falls through to later ones', async () => {
    expectTenant(await resolver.resolve(request('/t/acme/', { 'x-tenant-id': 'acme' }, 'acme.example.com')), 'acme', 'header')
    expectTenant(await resolver.resolve(request('/t/acme/', {}, 'acme.example.com')), 'acme', 'subdomain')
    expectTenant(await resolver.resolve(request('/t/acme/', {}, 'example.com')), 'acme', 'pathPrefix')
    expectTenant(await resolver.resolve(request('/', bearer(await hs256({ tenant_id: 'acme' })), 'acme.example.com')), 'acme', 'jwtClaim')
  })

  it('refuses a verified token for one tenant with a header or subdomain for another (403), resolving to neither', async () => {
    const token = await hs256({ tenant_id: 'acme' })
    const withHeader = await resolver.resolve(request('/', { ...bearer(token), 'x-tenant-id': 'globex' }))
    expectRefusal(withHeader, 403, 'tenant_conflict')
    expect(withHeader.ok ? undefined : withHeader.body.error.sources).toEqual(['jwtClaim', 'header'])
    expectRefusal(await resolver.resolve(request('/', bearer(token), 'globex.example.com')), 403, 'tenant_conflict')
  })

  it('refuses two unverified sources that disagree', async () => {
    expectRefusal(await resolver.resolve(request('/t/globex/', {}, 'acme.example.com')), 403, 'tenant_conflict')
  })

  it('validates the id with the tenant id schema: the default, or the one given', async () => {
    expectRefusal(await resolver.resolve(request('/', { 'x-tenant-id': "acme'; drop table" })), 400, 'tenant_invalid')
    const uuids = tenantResolver({ from: [header()], tenantId: z.uuid() })
    expectRefusal(await uuids.resolve(request('/', { 'x-tenant-id': 'acme' })), 400, 'tenant_invalid')
    expectTenant(await uuids.resolve(request('/', { 'x-tenant-id': '0b9f3c1e-8d2a-4c61-9a57-3f4e2d1c0b9a' })), '0b9f3c1e-8d2a-4c61-9a57-3f4e2d1c0b9a')
  })

  it('needs at least one source', () => {
    expect(() => tenantResolver({ from: [] })).toThrow(/at least one source/)
  })
})

describe('jwtClaim with a secret', () => {
  const resolver = tenantResolver({ from: [jwtClaim({ secret, audience: 'projects-api' })] })

  it('trusts the claim of a verified, unexpired token for the audience and hands its claims on', async () => {
    const result = await resolver.resolve(request('/', bearer(await hs256({ tenant_id: 'acme', sub: 'ann' }, { expiresIn: '5m', audience: 'projects-api' }))))
    expectTenant(result, 'acme', 'jwtClaim')
    expect(result.ok ? result.claims?.sub : undefined).toBe('ann')
  })

  it('refuses with 401 a token with a wrong signature, expired, for another audience, alg none, or an algorithm not pinned', async () => {
    const bad = {
      'wrong signature': await hs256({ tenant_id: 'acme' }, { audience: 'projects-api', signWith: new TextEncoder().encode('another-secret-that-is-32-bytes-long!!') }),
      expired: await hs256({ tenant_id: 'acme' }, { audience: 'projects-api', expiresIn: '-1m' }),
      'wrong audience': await hs256({ tenant_id: 'acme' }, { audience: 'billing-api' }),
      'no audience': await hs256({ tenant_id: 'acme' }),
      'alg none': new UnsecuredJWT({ tenant_id: 'acme', aud: 'projects-api' }).encode(),
      'HS512, not pinned': await hs256({ tenant_id: 'acme' }, { audience: 'projects-api', alg: 'HS512' }),
      garbage: 'not.a.token',
    }
    for (const [label, token] of Object.entries(bad)) {
      const result = await resolver.resolve(request('/', { ...bearer(token), 'x-tenant-id': 'acme' }))
      expect({ label, status: result.ok ? 200 : result.status, headers: result.ok ? undefined : result.headers }).toEqual({
        label,
        status: 401,
        headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
      })
    }
  })

  it('never falls back to another source when the token is bad', async () => {
    const both = tenantResolver({ from: [jwtClaim({ secret }), header()] })
    const forged = await hs256({ tenant_id: 'acme' }, { signWith: new TextEncoder().encode('forged-secret-forged-secret-forged-secret') })
    expectRefusal(await both.resolve(request('/', { ...bearer(forged), 'x-tenant-id': 'acme' })), 401, 'token_invalid')
  })

  it('refuses a secret shorter than 32 bytes and an asymmetric algorithm for a secret', () => {
    expect(() => jwtClaim({ secret: 'short' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
    expect(() => jwtClaim({ secret, algorithms: ['RS256' as never] })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
  })

  it('reads another claim when told, and a token without it yields nothing', async () => {
    const org = tenantResolver({ from: [jwtClaim({ secret, claim: 'org' })] })
    expectTenant(await org.resolve(request('/', bearer(await hs256({ org: 'globex' })))), 'globex')
    expectRefusal(await org.resolve(request('/', bearer(await hs256({ tenant_id: 'globex' })))), 400, 'tenant_missing')
    expectRefusal(await org.resolve(request('/', bearer(await hs256({ org: 42 })))), 400, 'tenant_invalid')
  })
})

describe('jwtClaim with a JWKS served on loopback', () => {
  let server: LoopbackServer
  let jwksUrl: string
  let privateKey: CryptoKey
  let otherKey: CryptoKey

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256')
    privateKey = pair.privateKey
    otherKey = (await generateKeyPair('ES256')).privateKey
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] })
    server = await serveOnLoopback((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end(jwks))
    jwksUrl = `${server.url}/.well-known/jwks.json`
  })
  afterAll(() => server.close())

  const es256 = (claims: Record<string, unknown>, signWith: CryptoKey, kid = 'k1') => new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid }).setIssuer('https://issuer.test').sign(signWith)

  it('verifies a token against the key set and trusts its claim', async () => {
    const resolver = tenantResolver({ from: [jwtClaim({ jwksUrl, algorithms: ['ES256'], issuer: 'https://issuer.test' })] })
    expectTenant(await resolver.resolve(request('/', bearer(await es256({ tenant_id: 'acme' }, privateKey)))), 'acme', 'jwtClaim')
  })

  it('refuses with 401 a token signed by a key not in the set, an HMAC token, and a token of another issuer', async () => {
    const resolver = tenantResolver({ from: [jwtClaim({ jwksUrl, algorithms: ['ES256'], issuer: 'https://issuer.test' })] })
    expectRefusal(await resolver.resolve(request('/', bearer(await es256({ tenant_id: 'acme' }, otherKey)))), 401, 'token_invalid')
    expectRefusal(await resolver.resolve(request('/', bearer(await hs256({ tenant_id: 'acme' })))), 401, 'token_invalid')
    const otherIssuer = await new SignJWT({ tenant_id: 'acme' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer('https://evil.test').sign(privateKey)
    expectRefusal(await resolver.resolve(request('/', bearer(otherIssuer))), 401, 'token_invalid')
  })

  it('needs the algorithms pinned, and https unless the key set is on localhost', () => {
    expect(() => jwtClaim({ jwksUrl } as never)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
    expect(() => jwtClaim({ jwksUrl: 'http://issuer.example.com/jwks.json', algorithms: ['ES256'] })).toThrow(/https/)
    expect(() => jwtClaim({ jwksUrl: 'https://issuer.example.com/jwks.json', algorithms: ['ES256'] })).not.toThrow()
  })

  it('throws JWKS_UNAVAILABLE, not a 401, when the key set cannot be fetched', async () => {
    const closed = await serveOnLoopback((_request, response) => response.end())
    const port = closed.port
    await closed.close()
    const resolver = tenantResolver({ from: [jwtClaim({ jwksUrl: `http://127.0.0.1:${port}/jwks.json`, algorithms: ['ES256'] })] })
    await expect(resolver.resolve(request('/', bearer(await es256({ tenant_id: 'acme' }, privateKey))))).rejects.toSatisfy((error) => isTenancyError(error, 'JWKS_UNAVAILABLE'))
  })
})

describe('Node IncomingMessage', () => {
  it('resolves the tenant of a request received by node:http over loopback', async () => {
    const resolver = tenantResolver({ from: [jwtClaim({ secret }), subdomain({ baseDomain: 'example.com' }), pathPrefix()] })
    const server = await serveOnLoopback((incoming: IncomingMessage, response) => {
      resolver.resolve(incoming).then((result) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result)))
    })
    try {
      const ask = async (path: string, headers: Record<string, string>) => (await fetch(`${server.url}${path}`, { headers })).json()
      expect(await ask('/t/acme/x', {})).toMatchObject({ ok: true, tenantId: 'acme', source: 'pathPrefix' })
      expect(await ask('/', { authorization: `Bearer ${await hs256({ tenant_id: 'globex' })}` })).toMatchObject({ ok: true, tenantId: 'globex', source: 'jwtClaim' })
      expect(await ask('/t/acme/x', { authorization: `Bearer ${await hs256({ tenant_id: 'globex' })}` })).toMatchObject({ ok: false, status: 403, code: 'tenant_conflict' })
    } finally {
      await server.close()
    }
  })
})

describe('Express below a mount point', () => {
  it('reads the path the client sent (originalUrl), not the one Express rewrote for the mounted router', async () => {
    const resolver = tenantResolver({ from: [pathPrefix()] })
    const app = express()
    const router = express.Router()
    router.get('/projects', async (incoming, response) => void response.json({ url: incoming.url, result: await resolver.resolve(incoming) }))
    app.use('/t/:tenant', router)
    const server = await serveOnLoopback(app)
    try {
      const response = await requestLoopback(server.port, { path: '/t/acme/projects' })
      expect(response.json()).toMatchObject({ url: '/projects', result: { ok: true, tenantId: 'acme', source: 'pathPrefix' } })
    } finally {
      await server.close()
    }
  })
})

describe('membership', () => {
  it('asks authorize with the tenant, the request and the token claims; false is a 403', async () => {
    const members: Record<string, string[]> = { ann: ['acme'], bob: ['globex'] }
    const asked: unknown[] = []
    const resolver = tenantResolver({
      from: [jwtClaim({ secret, claim: 'org' }), header()],
      authorize: (tenantId, incoming, { claims, source }) => {
        asked.push({ tenantId, source, path: new URL((incoming as Request).url).pathname })
        return typeof claims?.sub === 'string' && (members[claims.sub] ?? []).includes(tenantId)
      },
    })
    expectTenant(await resolver.resolve(request('/a', { 'x-tenant-id': 'acme', ...bearer(await hs256({ sub: 'ann' })) })), 'acme', 'header')
    expectRefusal(await resolver.resolve(request('/b', { 'x-tenant-id': 'acme', ...bearer(await hs256({ sub: 'bob' })) })), 403, 'tenant_forbidden')
    expectRefusal(await resolver.resolve(request('/c', { 'x-tenant-id': 'acme' })), 403, 'tenant_forbidden')
    expect(asked).toEqual([
      { tenantId: 'acme', source: 'header', path: '/a' },
      { tenantId: 'acme', source: 'header', path: '/b' },
      { tenantId: 'acme', source: 'header', path: '/c' },
    ])
  })
})

describe('registry', () => {
  it('answers 404 for a tenant the registry does not know, but 403 to a caller authorize refuses, known tenant or not', async () => {
    const resolver = tenantResolver({
      from: [jwtClaim({ secret, claim: 'org' }), header()],
      registry: cachedRegistry({ lookup: async (id) => id === 'acme' }),
      authorize: (_tenantId, _request, { claims }) => claims?.sub === 'ann',
    })
    const ann = bearer(await hs256({ sub: 'ann' }))
    expectTenant(await resolver.resolve(request('/', { ...ann, 'x-tenant-id': 'acme' })), 'acme')
    expectRefusal(await resolver.resolve(request('/', { ...ann, 'x-tenant-id': 'initech' })), 404, 'tenant_unknown')
    expectRefusal(await resolver.resolve(request('/', { 'x-tenant-id': 'acme' })), 403, 'tenant_forbidden')
    expectRefusal(await resolver.resolve(request('/', { 'x-tenant-id': 'initech' })), 403, 'tenant_forbidden')
  })

  it('caches answers for their TTL, shares concurrent lookups, and forgets a tenant on invalidate', async () => {
    let clock = 0
    const lookups: string[] = []
    const known = new Set(['acme', 'globex'])
    const registry = cachedRegistry({
      lookup: async (id) => {
        lookups.push(id)
        return known.has(id)
      },
      ttlMs: 1000,
      unknownTtlMs: 100,
      now: () => clock,
    })
    expect(await Promise.all([registry.has('acme'), registry.has('acme'), registry.has('initech')])).toEqual([true, true, false])
    expect(lookups).toEqual(['acme', 'initech'])
    known.delete('acme')
    known.add('initech')
    clock = 99
    expect([await registry.has('acme'), await registry.has('initech')]).toEqual([true, false])
    clock = 100
    expect([await registry.has('acme'), await registry.has('initech')]).toEqual([true, true])
    registry.invalidate('acme')
    expect(await registry.has('acme')).toBe(false)
    clock = 5000
    await registry.has('globex')
    expect(lookups).toEqual(['acme', 'initech', 'initech', 'acme', 'globex'])
  })

  it('does not cache a lookup that was under way when its tenant was invalidated', async () => {
    let exists = true
    let release: () => void = () => {}
    const registry = cachedRegistry({ lookup: (id) => new Promise((resolve) => (release = () => resolve(exists && id === 'acme'))) })
    const early = registry.has('acme')
    registry.invalidate('acme')
    release()
    expect(await early).toBe(true)
    exists = false
    const late = registry.has('acme')
    release()
    expect(await late).toBe(false)
  })

  it('keeps sharing a lookup started after an invalidation when the older one settles first', async () => {
    const releases: Array<() => void> = []
    let calls = 0
    const registry = cachedRegistry({
      lookup: () => {
        calls += 1
        return new Promise((resolve) => releases.push(() => resolve(true)))
      },
    })
    const older = registry.has('acme')
    registry.invalidate('acme')
    const newer = registry.has('acme')
    releases[0]!()
    await older
    const joined = registry.has('acme')
    for (const release of releases) release()
    expect(await Promise.all([newer, joined])).toEqual([true, true])
    expect(calls).toBe(2)
  })
})

describe('databaseRegistry', async () => {
  const database = await useTestDatabase()
  const admin = new pg.Pool({ connectionString: database.adminUrl, max: 2 })
  afterAll(() => admin.end())
  await admin.query(`INSERT INTO "Tenant" (id, name) VALUES ('acme', 'Acme'), ('globex', 'Globex'), ('initech', 'Initech')`)

  it('looks tenants up as the app role, caches them, and drops one when prisma_tenancy_tenant_removed names it', async () => {
    const registry = databaseRegistry({ connectionString: database.appUrl })
    try {
      await registry.listening
      const resolver = tenantResolver({ from: [header()], registry })
      expectTenant(await resolver.resolve(request('/', { 'x-tenant-id': 'globex' })), 'globex')
      expectRefusal(await resolver.resolve(request('/', { 'x-tenant-id': 'umbrella' })), 404, 'tenant_unknown')
      await admin.query(`DELETE FROM "Tenant" WHERE id = 'globex'`)
      expect(await registry.has('globex')).toBe(true) // cached: the row is gone, nothing said so yet
      await admin.query('SELECT pg_notify($1, $2)', [tenantRemovedChannel, 'globex'])
      expect(await eventually(async () => !(await registry.has('globex')))).toBe(true)
      expectRefusal(await resolver.resolve(request('/', { 'x-tenant-id': 'globex' })), 404, 'tenant_unknown')
      expect(await registry.has('acme')).toBe(true)
    } finally {
      await registry.close()
    }
  })

  it('throws TENANT_LOOKUP_FAILED, not a 404, when the registry table cannot be read', async () => {
    const registry = databaseRegistry({ connectionString: database.appUrl, table: 'Tenants' })
    try {
      const resolver = tenantResolver({ from: [header()], registry })
      await expect(resolver.resolve(request('/', { 'x-tenant-id': 'acme' }))).rejects.toSatisfy((error) => isTenancyError(error, 'TENANT_LOOKUP_FAILED'))
    } finally {
      await registry.close()
    }
  })

  it('caches nothing while its listening connection is lost, and listens again after reconnecting', async () => {
    const registry = databaseRegistry({ connectionString: database.appUrl, reconnectMs: 50 })
    try {
      await registry.listening
      expect(await registry.has('initech')).toBe(true)
      const listenerPid = async () =>
        (await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%' AND usename = $1`, [database.appRole.name])).rows[0]?.pid
      const first = await listenerPid()
      await admin.query('SELECT pg_terminate_backend($1)', [first])
      await admin.query(`DELETE FROM "Tenant" WHERE id = 'initech'`)
      // Without a NOTIFY: the lost connection cleared the cache, so the row's removal shows.
      expect(await eventually(async () => !(await registry.has('initech')))).toBe(true)
      expect(await eventually(async () => ((await listenerPid()) ?? first) !== first)).toBe(true)
    } finally {
      await registry.close()
    }
  })
})

/** Polls `check` until it holds (a notification or reconnect is asynchronous); false after ~10 s. */
async function eventually(check: () => Promise<boolean>): Promise<boolean> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return false
}

describe('sources, for any input (fast-check)', () => {
  const label = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/).filter((value) => value !== 'www')
  const resolver = tenantResolver({ from: [subdomain({ baseDomain: 'example.com' })] })

  it('subdomain yields exactly the label of <label>.example.com[:port], whatever the case', async () => {
    await fc.assert(
      fc.asyncProperty(label, fc.option(fc.integer({ min: 1, max: 65535 })), fc.boolean(), async (name, port, upper) => {
        const host = `${upper ? name.toUpperCase() : name}.Example.com${port === null ? '' : `:${port}`}`
        const result = await resolver.resolve(request('/', {}, host))
        expect(result.ok && result.tenantId).toBe(name)
      }),
    )
  })

  it('subdomain yields nothing for a host that is not one label under the base domain', async () => {
    const host = fc.oneof(
      fc.tuple(label, label).map(([a, b]) => `${a}.${b}.example.com`),
      fc.tuple(label, label).map(([a, b]) => `${a}.${b}.org`),
      label.map((a) => `${a}example.com`),
    )
    await fc.assert(
      fc.asyncProperty(host, async (value) => {
        expectRefusal(await resolver.resolve(request('/', {}, value)), 400, 'tenant_missing')
      }),
    )
  })

  it('a header value is either refused as invalid or resolved to exactly that id, never to another', async () => {
    const headers = tenantResolver({ from: [header()] })
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 70 }).filter((value) => value.trim() !== '' && !/[\r\n\0]/.test(value)), async (value) => {
        let sent: Request
        try {
          sent = request('/', { 'x-tenant-id': value })
        } catch {
          return // not a value a client can send as a header
        }
        const result = await headers.resolve(sent)
        if (result.ok) expect(result.tenantId).toBe(value.trim())
        else expect(result.code).toBe('tenant_invalid')
      }),
    )
  })
})

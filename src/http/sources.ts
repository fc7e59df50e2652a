import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose'
import { z } from 'zod'
import { TenancyError } from '../errors.js'
import type { RequestView } from './request.js'

/** What one source found in a request. */
export type SourceOutcome =
  /** `claims`: a verified token that names no tenant still tells `authorize` who the caller is. */
  | { readonly kind: 'none'; readonly claims?: JWTPayload }
  /** `tenantId` is unchecked: the resolver validates it with the tenant id schema. */
  | { readonly kind: 'found'; readonly tenantId: unknown; readonly claims?: JWTPayload }
  /** The request carried a credential that must not be trusted (a bad token): the request is refused with 401. */
  | { readonly kind: 'unauthenticated'; readonly message: string }

/** One place a tenant id may come from. The resolver asks its sources in order. */
export interface TenantSource {
  /** Short name, reported with the outcome: `subdomain`, `header`, `jwtClaim`, `pathPrefix`, or your own. */
  readonly name: string
  /** What it looks for, for the 400 body: e.g. `a subdomain of example.com`. */
  readonly lookedFor: string
  resolve(request: RequestView): SourceOutcome | Promise<SourceOutcome>
}

const none: SourceOutcome = { kind: 'none' }

function parseOptions<Schema extends z.ZodType>(schema: Schema, input: unknown, what: string): z.output<Schema> {
  const parsed = schema.safeParse(input)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const path = issue?.path.length ? ` (${issue.path.join('.')})` : ''
    throw new TenancyError('CONFIG_INVALID', `${what}: ${issue?.message ?? 'invalid options'}${path}. Fix the options passed to it.`, { cause: parsed.error })
  }
  return parsed.data
}

const hostname = z
  .string()
  .min(1)
  .transform((value) => value.toLowerCase().replace(/\.$/, ''))
  .refine((value) => /^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(value), 'must be a host name such as example.com, without scheme, port or path')

const subdomainOptions = z.object({
  baseDomain: hostname,
  /** Labels that are not tenants. */
  ignore: z.array(z.string()).default(['www']),
})

/**
 * `acme.example.com` → `acme` for `baseDomain: 'example.com'`. The bare domain,
 * `www` (see `ignore`), hosts outside the base domain and deeper names
 * (`a.b.example.com`) yield nothing. The port is ignored and case folded, as
 * DNS does, so tenant ids reached this way are lower case.
 */
export function subdomain(options: { baseDomain: string; ignore?: string[] }): TenantSource {
  const { baseDomain, ignore } = parseOptions(subdomainOptions, options, 'subdomain()')
  const ignored = new Set(ignore.map((label) => label.toLowerCase()))
  const suffix = `.${baseDomain}`
  return {
    name: 'subdomain',
    lookedFor: `a subdomain of ${baseDomain}`,
    resolve(request) {
      const host = request.host?.toLowerCase()
      if (host === undefined) return none
      // `[::1]:8080` and `acme.example.com:8080`: drop the port, keep the name.
      const name = (host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '')).replace(/\.$/, '')
      if (!name.endsWith(suffix)) return none
      const label = name.slice(0, -suffix.length)
      if (label === '' || label.includes('.') || ignored.has(label)) return none
      return { kind: 'found', tenantId: label }
    },
  }
}

const headerOptions = z.object({ name: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be an HTTP header name').default('X-Tenant-ID') })

/** The tenant id in a request header, `X-Tenant-ID` unless named otherwise. Whitespace around it is dropped; an empty header yields nothing. */
export function header(options: { name?: string } = {}): TenantSource {
  const { name } = parseOptions(headerOptions, options, 'header()')
  return {
    name: 'header',
    lookedFor: `the ${name} header`,
    resolve(request) {
      const value = request.header(name)?.trim()
      return value === undefined || value === '' ? none : { kind: 'found', tenantId: value }
    },
  }
}

const pathPrefixOptions = z.object({ prefix: z.string().regex(/^\/([^/]+\/)*$/, 'must start and end with "/", such as /t/').default('/t/') })

/** `/t/acme/projects` → `acme`: the path segment after `prefix` (default `/t/`), percent-decoded. */
export function pathPrefix(options: { prefix?: string } = {}): TenantSource {
  const { prefix } = parseOptions(pathPrefixOptions, options, 'pathPrefix()')
  return {
    name: 'pathPrefix',
    lookedFor: `a path starting ${prefix}<tenant>/`,
    resolve(request) {
      if (!request.path.startsWith(prefix)) return none
      const segment = request.path.slice(prefix.length).split('/', 1)[0] ?? ''
      if (segment === '') return none
      let decoded = segment
      try {
        decoded = decodeURIComponent(segment)
      } catch {
        // Malformed percent-encoding: keep it as sent, the tenant id schema refuses the "%".
      }
      return { kind: 'found', tenantId: decoded }
    },
  }
}

const hmacAlgorithms = ['HS256', 'HS384', 'HS512'] as const
const publicKeyAlgorithms = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const

const stringOrList = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)])
const jwtCommon = {
  claim: z.string().min(1).default('tenant_id'),
  issuer: stringOrList.optional(),
  audience: stringOrList.optional(),
  /** Seconds of clock skew allowed for exp/nbf. */
  clockTolerance: z.number().int().min(0).max(300).default(0),
  /** Reads the token from a request; default: `Authorization: Bearer <token>`. */
  token: z.custom<(request: RequestView) => string | undefined>((value) => typeof value === 'function').optional(),
}
const jwtOptions = z.union([
  z.strictObject({
    ...jwtCommon,
    // HS256 with a short secret can be brute-forced offline from a single token.
    secret: z.union([z.string(), z.instanceof(Uint8Array)]).refine((secret) => (typeof secret === 'string' ? new TextEncoder().encode(secret) : secret).byteLength >= 32, 'the secret must be at least 32 bytes'),
    algorithms: z.array(z.enum(hmacAlgorithms)).min(1).default(['HS256']),
  }),
  z.strictObject({
    ...jwtCommon,
    // Keys fetched over plain HTTP could be swapped in transit by anyone on the path; loopback is for tests.
    jwksUrl: z
      .union([z.url({ protocol: /^https?$/ }), z.instanceof(URL)])
      .refine((url) => {
        const parsed = new URL(url)
        return parsed.protocol === 'https:' || ['localhost', '127.0.0.1', '[::1]'].includes(parsed.hostname)
      }, 'must be an https:// URL (http:// only for localhost)'),
    // No default: which asymmetric algorithm the issuer signs with is the caller's to pin.
    algorithms: z.array(z.enum(publicKeyAlgorithms)).min(1),
    /** Milliseconds to wait for the JWKS. */
    timeoutMs: z.number().int().positive().default(5000),
  }),
])

export type JwtClaimOptions = {
  /** The claim holding the tenant id. Default `tenant_id`. */
  claim?: string
  issuer?: string | string[]
  audience?: string | string[]
  clockTolerance?: number
  token?: (request: RequestView) => string | undefined
} & (
  | { /** Shared HMAC secret, at least 32 bytes. */ secret: string | Uint8Array; /** Default `['HS256']`. */ algorithms?: Array<(typeof hmacAlgorithms)[number]> }
  | { /** The issuer's JSON Web Key Set. */ jwksUrl: string | URL; /** Required: the algorithms the issuer signs with. */ algorithms: Array<(typeof publicKeyAlgorithms)[number]>; timeoutMs?: number }
)

// Token faults: the client's token is bad. Anything else (the JWKS unreachable or malformed) is ours.
const tokenErrors = [
  errors.JWTExpired,
  errors.JWTClaimValidationFailed,
  errors.JWTInvalid,
  errors.JWSInvalid,
  errors.JWSSignatureVerificationFailed,
  errors.JOSEAlgNotAllowed,
  errors.JOSENotSupported,
  errors.JWKSNoMatchingKey,
  errors.JWKSMultipleMatchingKeys,
]

function bearerToken(request: RequestView): string | undefined {
  const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(request.header('authorization') ?? '')
  return match?.[1]
}

/**
 * The tenant id in a claim (default `tenant_id`) of a JWT, trusted only once
 * `jose` has verified it: against `secret` (HMAC) or `jwksUrl`, with only the
 * pinned `algorithms` accepted (never `none`), expiry and not-before checked,
 * and `issuer`/`audience` when given. No token yields nothing; a token that
 * fails verification refuses the request (401), it is never skipped over.
 */
export function jwtClaim(options: JwtClaimOptions): TenantSource {
  const parsed = parseOptions(jwtOptions, options, 'jwtClaim()')
  const verifyOptions = {
    algorithms: [...parsed.algorithms],
    clockTolerance: parsed.clockTolerance,
    ...(parsed.issuer === undefined ? {} : { issuer: parsed.issuer }),
    ...(parsed.audience === undefined ? {} : { audience: parsed.audience }),
  }
  let verify: (token: string) => Promise<{ payload: JWTPayload }>
  if ('secret' in parsed) {
    const secret = typeof parsed.secret === 'string' ? new TextEncoder().encode(parsed.secret) : parsed.secret
    verify = (token) => jwtVerify(token, secret, verifyOptions)
  } else {
    const keys = createRemoteJWKSet(new URL(parsed.jwksUrl), { timeoutDuration: parsed.timeoutMs })
    verify = (token) => jwtVerify(token, keys, verifyOptions)
  }
  const readToken = parsed.token ?? bearerToken
  return {
    name: 'jwtClaim',
    lookedFor: `the "${parsed.claim}" claim of a verified bearer token`,
    async resolve(request) {
      const token = readToken(request)
      if (token === undefined) return none
      let payload: JWTPayload
      try {
        payload = (await verify(token)).payload
      } catch (error) {
        if (tokenErrors.some((type) => error instanceof type)) return { kind: 'unauthenticated', message: `The bearer token was not accepted: ${(error as Error).message}.` }
        if (!('jwksUrl' in parsed)) throw error
        throw new TenancyError(
          'JWKS_UNAVAILABLE',
          `Could not verify a bearer token: the key set at ${String(parsed.jwksUrl)} could not be used (${(error as Error).message}). Check that jwtClaim({ jwksUrl }) is reachable from this server and serves a JSON Web Key Set.`,
          { cause: error },
        )
      }
      const tenantId = payload[parsed.claim]
      return tenantId === undefined ? { kind: 'none', claims: payload } : { kind: 'found', tenantId, claims: payload }
    },
  }
}

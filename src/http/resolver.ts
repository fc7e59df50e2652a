import type { JWTPayload } from 'jose'
import { tenantIdValidator, type TenantIdSchema } from '../context/tenant-id.js'
import { isTenancyError, TenancyError } from '../errors.js'
import type { TenantRegistry } from './registry.js'
import { requestView, type HttpRequest } from './request.js'
import type { TenantSource } from './sources.js'

export type TenantRefusalCode = 'tenant_missing' | 'tenant_invalid' | 'token_invalid' | 'tenant_conflict' | 'tenant_unknown' | 'tenant_forbidden'

/** A refusal, ready to send: status, headers and a JSON body `{ error: { code, message, ... } }`. */
export interface TenantRefusal {
  readonly ok: false
  readonly status: 400 | 401 | 403 | 404
  readonly code: TenantRefusalCode
  readonly headers: Readonly<Record<string, string>>
  readonly body: { readonly error: { readonly code: TenantRefusalCode; readonly message: string; readonly lookedFor?: readonly string[]; readonly sources?: readonly string[] } }
}

export interface TenantResolved {
  readonly ok: true
  readonly tenantId: string
  /** The name of the first source that yielded the id. */
  readonly source: string
  /** The claims of the request's verified token, if it had one. */
  readonly claims: JWTPayload | undefined
}

export type TenantResolution = TenantResolved | TenantRefusal

export interface AuthorizeContext {
  readonly source: string
  readonly claims: JWTPayload | undefined
}

export interface TenantResolverOptions {
  /** Where to look, in order: the first source that yields an id wins; any other that yields a different one is a conflict (403). */
  from: readonly TenantSource[]
  /** The tenant id schema; pass the same one as to `tenancy({ tenantId })`. */
  tenantId?: TenantIdSchema
  /** Known tenants (`cachedRegistry`, `databaseRegistry`): an unknown tenant gets 404. */
  registry?: TenantRegistry
  /** May this caller act for this tenant (e.g. is the token's user a member)? `false` is a 403. */
  authorize?: (tenantId: string, request: HttpRequest, context: AuthorizeContext) => boolean | Promise<boolean>
}

export interface TenantResolver {
  /** Resolves the request's tenant. Refusals are returned, not thrown; a failing registry or key set throws. */
  resolve(request: HttpRequest): Promise<TenantResolution>
}

function refusal(status: TenantRefusal['status'], code: TenantRefusalCode, message: string, extra: { lookedFor?: readonly string[]; sources?: readonly string[]; headers?: Record<string, string> } = {}): TenantRefusal {
  const { headers = {}, ...details } = extra
  return { ok: false, status, code, headers, body: { error: { code, message, ...details } } }
}

/**
 * The tenant of an HTTP request, from an ordered chain of sources:
 *
 *   const resolver = tenantResolver({ from: [jwtClaim({ secret }), subdomain({ baseDomain: 'example.com' })] })
 *   const result = await resolver.resolve(request)   // Fetch Request or Node IncomingMessage
 *
 * Every source is asked, so that sources never silently disagree: a verified
 * token for one tenant with a header or subdomain for another is refused (403),
 * not resolved to either. Then the id is validated, passed to `authorize`
 * (403 if refused) and looked up in the registry (404 if unknown).
 */
export function tenantResolver(options: TenantResolverOptions): TenantResolver {
  if (options.from.length === 0) {
    throw new TenancyError('CONFIG_INVALID', 'tenantResolver({ from }) needs at least one source, such as subdomain({ baseDomain }), header(), jwtClaim({ secret }) or pathPrefix().')
  }
  const sources = [...options.from]
  const lookedFor = sources.map((source) => source.lookedFor)
  const validate = tenantIdValidator(options.tenantId)

  return {
    async resolve(request) {
      const view = requestView(request)
      const found: Array<{ source: string; tenantId: unknown }> = []
      let claims: JWTPayload | undefined
      for (const source of sources) {
        const outcome = await source.resolve(view)
        if (outcome.kind === 'unauthenticated') {
          return refusal(401, 'token_invalid', outcome.message, { headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } })
        }
        if (outcome.kind === 'found') found.push({ source: source.name, tenantId: outcome.tenantId })
        claims ??= outcome.claims
      }
      const [first] = found
      if (first === undefined) {
        return refusal(400, 'tenant_missing', `This route needs a tenant, and the request named none. Looked for: ${lookedFor.join('; ')}.`, { lookedFor })
      }
      const disagreeing = found.filter((candidate) => candidate.tenantId !== first.tenantId)
      if (disagreeing.length > 0) {
        const names = [first.source, ...disagreeing.map((candidate) => candidate.source)]
        return refusal(403, 'tenant_conflict', `The request names different tenants in ${names.join(' and ')}; it was not resolved to either. Send one tenant.`, { sources: names })
      }
      let tenantId: string
      try {
        tenantId = validate(first.tenantId)
      } catch (error) {
        if (!isTenancyError(error, 'TENANT_INVALID')) throw error
        return refusal(400, 'tenant_invalid', `The tenant id from ${first.source} is not valid: ${String(error.details.reason ?? error.message)}.`, { sources: [first.source] })
      }
      // Membership before existence: a caller learns whether a tenant exists only if it may act for it.
      if (options.authorize !== undefined && !(await options.authorize(tenantId, request, { source: first.source, claims }))) {
        return refusal(403, 'tenant_forbidden', `This caller may not act for tenant "${tenantId}".`)
      }
      if (options.registry !== undefined && !(await options.registry.has(tenantId))) {
        return refusal(404, 'tenant_unknown', `There is no tenant "${tenantId}".`)
      }
      return { ok: true, tenantId, source: first.source, claims }
    },
  }
}

// prisma-tenancy/http: the tenant of an HTTP request, framework-free.
export { tenantResolver } from './resolver.js'
export type { AuthorizeContext, TenantRefusal, TenantRefusalCode, TenantResolution, TenantResolved, TenantResolver, TenantResolverOptions } from './resolver.js'
export { header, jwtClaim, pathPrefix, subdomain } from './sources.js'
export type { JwtClaimOptions, SourceOutcome, TenantSource } from './sources.js'
export { cachedRegistry, databaseRegistry, tenantRemovedChannel } from './registry.js'
export type { CachedRegistry, CachedRegistryOptions, DatabaseRegistry, DatabaseRegistryOptions, TenantRegistry } from './registry.js'
export type { HttpRequest, RequestView } from './request.js'

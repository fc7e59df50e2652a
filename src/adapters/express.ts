// prisma-tenancy/express
import type { RequestHandler } from 'express'
import { runWithTenant } from '../context/tenant-context.js'
import type { TenantResolver } from '../http/resolver.js'

/**
 * Express middleware: resolves the request's tenant and runs the rest of the
 * request (later middleware and the route handler) inside `runWithTenant`.
 * A refusal is answered with its status and JSON body; a failure (registry or
 * key set unreachable) goes to `next(error)`, Express's error handling.
 *
 *   app.use('/api', tenantMiddleware(resolver))
 */
export function tenantMiddleware(resolver: TenantResolver): RequestHandler {
  return (request, response, next) => {
    resolver.resolve(request).then((result) => {
      if (!result.ok) {
        response.status(result.status).set(result.headers).json(result.body)
        return
      }
      runWithTenant(result.tenantId, () => next())
    }, next)
  }
}

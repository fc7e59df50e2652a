// prisma-tenancy/hono
import type { MiddlewareHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { runWithTenant } from '../context/tenant-context.js'
import type { TenantResolver } from '../http/resolver.js'

export interface TenantVariables {
  /** The resolved tenant id, also `currentTenantId()` inside the request. */
  tenantId: string
}

/**
 * Hono middleware: resolves the request's tenant, sets `c.var.tenantId` and
 * runs the rest of the request inside `runWithTenant`. A refusal is thrown as
 * an HTTPException carrying the JSON response, Hono's convention, so an
 * `app.onError` sees it; without one Hono sends that response.
 *
 *   app.use('/api/*', tenantMiddleware(resolver))
 */
export function tenantMiddleware(resolver: TenantResolver): MiddlewareHandler<{ Variables: TenantVariables }> {
  return async (c, next) => {
    const result = await resolver.resolve(c.req.raw)
    if (!result.ok) {
      throw new HTTPException(result.status, { message: result.body.error.message, res: Response.json(result.body, { status: result.status, headers: result.headers }) })
    }
    c.set('tenantId', result.tenantId)
    await runWithTenant(result.tenantId, () => next())
  }
}

// prisma-tenancy/next: App Router route handlers and middleware. Typed against
// the Fetch API's Request and Response, which is what App Router hands to both
// (NextRequest extends Request), so `next` need not be installed to use it.
import { runWithTenant } from '../context/tenant-context.js'
import type { TenantRefusal, TenantResolver } from '../http/resolver.js'

function refusalResponse(refusal: TenantRefusal): Response {
  return Response.json(refusal.body, { status: refusal.status, headers: refusal.headers })
}

/**
 * Wraps an App Router route handler: resolves the tenant and runs the handler
 * inside `runWithTenant`; a refusal is answered with its status and JSON body.
 *
 *   // app/api/projects/route.ts
 *   export const GET = withTenant(resolver, async () => Response.json(await prisma.project.findMany()))
 */
export function withTenant<Req extends Request, Context extends unknown[]>(
  resolver: TenantResolver,
  handler: (request: Req, ...context: Context) => Response | Promise<Response>,
): (request: Req, ...context: Context) => Promise<Response> {
  return async (request, ...context) => {
    const result = await resolver.resolve(request)
    if (!result.ok) return refusalResponse(result)
    return runWithTenant(result.tenantId, () => handler(request, ...context))
  }
}

/**
 * For `middleware.ts`: refuses requests without a valid tenant before they
 * reach a route (returns the refusal `Response`), and returns `undefined` to
 * let the others through. Next.js runs middleware apart from the route, so the
 * tenant's async context does not carry over: wrap the handlers in `withTenant` too.
 *
 *   export const middleware = tenantMiddleware(resolver)
 */
export function tenantMiddleware(resolver: TenantResolver): (request: Request) => Promise<Response | undefined> {
  return async (request) => {
    const result = await resolver.resolve(request)
    return result.ok ? undefined : refusalResponse(result)
  }
}

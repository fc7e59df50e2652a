// prisma-tenancy/fastify
import type { preHandlerHookHandler } from 'fastify'
import { runWithTenant } from '../context/tenant-context.js'
import type { TenantResolver } from '../http/resolver.js'

/**
 * A Fastify preHandler hook: resolves the request's tenant and runs the route
 * handler inside `runWithTenant`. It runs after the body is parsed, so the
 * handler is called from within the hook's own async context. A refusal is
 * answered with its status and JSON body; a failure goes to Fastify's error handler.
 *
 *   app.addHook('preHandler', tenantHook(resolver))            // every route
 *   app.get('/projects', { preHandler: tenantHook(resolver) }, handler)
 */
export function tenantHook(resolver: TenantResolver): preHandlerHookHandler {
  return function (request, reply, done) {
    resolver.resolve(request.raw).then((result) => {
      if (!result.ok) {
        reply.code(result.status).headers(result.headers).send(result.body)
        return
      }
      runWithTenant(result.tenantId, () => done())
    }, done)
  }
}

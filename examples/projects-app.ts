// The example app: a tenant's projects as JSON and as one HTML page, on the example schema
// (prisma/schema.prisma) and its migrations. The tenant comes from the subdomain
// (acme.localhost) or the X-Tenant-ID header; every query runs as that tenant through
// row-level security, and no route names a tenant in a WHERE clause.
import { Hono } from 'hono'
import { PrismaClient } from '../prisma/generated/client.js'
import { tenantMiddleware, type TenantVariables } from '../src/adapters/hono.js'
import { header, subdomain, tenantResolver, type TenantRegistry } from '../src/http/index.js'
import { tenancy, tenancyAdapter } from '../src/index.js'

export function createTenancyClient(appUrl: string) {
  return new PrismaClient({ adapter: tenancyAdapter(appUrl) }).$extends(tenancy())
}

export type TenancyClient = ReturnType<typeof createTenancyClient>

export interface ProjectsAppOptions {
  /** The tenancy client, connected as the application role. */
  prisma: TenancyClient
  /** Known tenants; an unknown subdomain gets 404. */
  registry: TenantRegistry
  /** The domain tenants are subdomains of. Default `localhost`. */
  baseDomain?: string
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`)

export function createProjectsApp(options: ProjectsAppOptions): Hono<{ Variables: TenantVariables }> {
  const { prisma } = options
  const resolver = tenantResolver({ from: [subdomain({ baseDomain: options.baseDomain ?? 'localhost' }), header()], registry: options.registry })
  const app = new Hono<{ Variables: TenantVariables }>()

  app.get('/healthz', (c) => c.text('ok'))
  app.use('/', tenantMiddleware(resolver))
  app.use('/projects.json', tenantMiddleware(resolver))

  const projects = () => prisma.project.findMany({ select: { id: true, name: true, tenantId: true }, orderBy: { name: 'asc' } })

  app.get('/projects.json', async (c) => c.json({ tenant: c.var.tenantId, projects: await projects() }))

  app.get('/', async (c) => {
    const [tenant, rows] = await Promise.all([prisma.tenant.findUnique({ where: { id: c.var.tenantId } }), projects()])
    const title = `Projects of ${escapeHtml(tenant?.name ?? c.var.tenantId)}`
    const items = rows.map((project) => `    <li data-tenant="${escapeHtml(project.tenantId)}">${escapeHtml(project.name)}</li>`).join('\n')
    return c.html(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${title}</title></head>
<body>
  <h1>${title}</h1>
  <ul id="projects">
${items}
  </ul>
</body>
</html>
`)
  })

  return app
}

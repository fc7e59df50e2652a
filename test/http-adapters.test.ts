import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import { SignJWT } from 'jose'
import { afterAll, describe, expect, it } from 'vitest'
import { PrismaClient } from '../prisma/generated/client.js'
import { tenantMiddleware as expressTenant } from '../src/adapters/express.js'
import { tenantHook } from '../src/adapters/fastify.js'
import { tenantMiddleware as honoTenant, type TenantVariables } from '../src/adapters/hono.js'
import { tenantMiddleware as nextMiddleware, withTenant } from '../src/adapters/next.js'
import { cachedRegistry, header, jwtClaim, tenantResolver } from '../src/http/index.js'
import { currentTenantId, tenancy } from '../src/index.js'
import { useTenancy } from '../src/testing/index.js'
import { requestLoopback, serveOnLoopback, type LoopbackServer } from './support/loopback.js'

const app = await useTenancy({
  client: (adapter) => new PrismaClient({ adapter }).$extends(tenancy()),
  admin: (adapter) => new PrismaClient({ adapter }),
  createTenant: (admin, id) => admin.tenant.create({ data: { id, name: id } }),
})
await app.createTenants(['acme', 'globex'])
await app.asTenant('acme').project.create({ data: { name: 'Acme roadmap' } })
await app.asTenant('globex').project.create({ data: { name: 'Globex launch' } })

const secret = 'adapter-test-secret-at-least-32-bytes!!'
const resolver = tenantResolver({
  from: [jwtClaim({ secret }), header()],
  registry: cachedRegistry({ lookup: async (id) => (await app.admin.tenant.count({ where: { id } })) > 0 }),
})
const prisma = app.client

// The same two routes in every framework: read and write through the tenancy client with no explicit tenant.
const listProjects = async () => ({ tenant: currentTenantId(), projects: (await prisma.project.findMany({ orderBy: { name: 'asc' } })).map((project) => project.name) })
const createProject = async (name: string) => {
  await new Promise((resolve) => setImmediate(resolve))
  const row = await prisma.project.create({ data: { name } })
  await prisma.project.delete({ where: { id: row.id } })
  return { tenant: currentTenantId(), stored: row.tenantId }
}

const servers: Record<string, () => Promise<LoopbackServer>> = {
  express: () => {
    const server = express()
    server.use(express.json())
    server.use(expressTenant(resolver))
    server.get('/projects', async (_request, response) => void response.json(await listProjects()))
    server.post('/projects', async (request, response) => void response.json(await createProject((request.body as { name: string }).name)))
    return serveOnLoopback(server)
  },
  fastify: async () => {
    const server = Fastify()
    server.addHook('preHandler', tenantHook(resolver))
    server.get('/projects', () => listProjects())
    server.post('/projects', (request) => createProject((request.body as { name: string }).name))
    await server.listen({ port: 0, host: '127.0.0.1' })
    const port = (server.server.address() as { port: number }).port
    return { port, url: `http://127.0.0.1:${port}`, close: () => server.close() }
  },
  hono: () => {
    const server = new Hono<{ Variables: TenantVariables }>()
    server.use('*', honoTenant(resolver))
    server.get('/projects', async (c) => c.json({ ...(await listProjects()), variable: c.var.tenantId }))
    server.post('/projects', async (c) => c.json(await createProject((await c.req.json<{ name: string }>()).name)))
    return serveOnLoopback(server.fetch, 'fetch')
  },
  next: () => {
    // As App Router would call them: middleware.ts first, then the route module's GET/POST.
    const middleware = nextMiddleware(resolver)
    const GET = withTenant(resolver, async () => Response.json(await listProjects()))
    const POST = withTenant(resolver, async (request: Request) => Response.json(await createProject(((await request.json()) as { name: string }).name)))
    return serveOnLoopback(async (request: Request) => (await middleware(request)) ?? (request.method === 'POST' ? POST(request) : GET(request)), 'fetch')
  },
}

describe.each(Object.keys(servers))('%s adapter over HTTP on loopback', async (framework) => {
  const server = await servers[framework]!()
  afterAll(() => server.close())
  const get = (headers: Record<string, string>) => requestLoopback(server.port, { path: '/projects', headers })

  it('runs the route as the request tenant: each sees only its own projects', async () => {
    const [acme, globex] = await Promise.all([get({ 'x-tenant-id': 'acme' }), get({ 'x-tenant-id': 'globex' })])
    expect([acme.status, acme.json()]).toEqual([200, expect.objectContaining({ tenant: 'acme', projects: ['Acme roadmap'], ...(framework === 'hono' ? { variable: 'acme' } : {}) })])
    expect([globex.status, globex.json()]).toEqual([200, expect.objectContaining({ tenant: 'globex', projects: ['Globex launch'] })])
  })

  it('keeps the tenant across body parsing and awaits in a write', async () => {
    const response = await requestLoopback(server.port, { method: 'POST', path: '/projects', headers: { 'x-tenant-id': 'globex', 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Temp' }) })
    expect([response.status, response.json()]).toEqual([200, { tenant: 'globex', stored: 'globex' }])
  })

  it('answers 400 with a JSON body when the request names no tenant, 404 for an unknown one', async () => {
    const missing = await get({})
    expect([missing.status, missing.headers['content-type']]).toEqual([400, expect.stringContaining('application/json')])
    expect(missing.json()).toMatchObject({ error: { code: 'tenant_missing', lookedFor: ['the "tenant_id" claim of a verified bearer token', 'the X-Tenant-ID header'] } })
    const unknown = await get({ 'x-tenant-id': 'initech' })
    expect([unknown.status, unknown.json()]).toEqual([404, { error: { code: 'tenant_unknown', message: 'There is no tenant "initech".' } }])
  })

  it('answers 403 to a token for one tenant with a header for another, and 401 with WWW-Authenticate to a bad token', async () => {
    const token = await new SignJWT({ tenant_id: 'acme' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret))
    const conflict = await get({ authorization: `Bearer ${token}`, 'x-tenant-id': 'globex' })
    expect([conflict.status, conflict.json()]).toEqual([403, expect.objectContaining({ error: expect.objectContaining({ code: 'tenant_conflict' }) })])
    const bad = await get({ authorization: `Bearer ${token.slice(0, -2)}xx`, 'x-tenant-id': 'acme' })
    expect([bad.status, bad.headers['www-authenticate']]).toEqual([401, 'Bearer error="invalid_token"'])
  })
})

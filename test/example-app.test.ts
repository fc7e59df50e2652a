import { getRequestListener } from '@hono/node-server'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { afterAll, describe, expect, it } from 'vitest'
import { createProjectsApp, createTenancyClient } from '../examples/projects-app.js'
import { PrismaClient } from '../prisma/generated/client.js'
import { databaseRegistry } from '../src/http/index.js'
import { useTestDatabase } from '../src/testing/index.js'
import { unscopedAdapter } from '../src/index.js'
import { requestLoopback, serveOnLoopback } from './support/loopback.js'

const database = await useTestDatabase()
const admin = new PrismaClient({ adapter: unscopedAdapter(database.adminUrl) })
const prisma = createTenancyClient(database.appUrl)
const registry = databaseRegistry({ connectionString: database.appUrl })
afterAll(() => Promise.allSettled([admin.$disconnect(), prisma.$disconnect(), registry.close()]))

const expected = { acme: ['Acme roadmap', 'Acme website'], globex: ['Globex hiring', 'Globex launch'] } as const
type Tenant = keyof typeof expected
for (const [tenant, names] of Object.entries(expected)) {
  await admin.tenant.create({ data: { id: tenant, name: tenant === 'acme' ? 'Acme Corp' : 'Globex Inc' } })
  for (const name of names) await prisma.forTenant(tenant).project.create({ data: { name } })
}

// Every request the server receives, as it arrived: which Host it named and where it came from.
const received: Array<{ host: string | undefined; remote: string | undefined; path: string | undefined }> = []
const listener = getRequestListener(createProjectsApp({ prisma, registry }).fetch)
const server = await serveOnLoopback((request, response) => {
  received.push({ host: request.headers.host, remote: request.socket.remoteAddress, path: request.url })
  return listener(request, response)
})
afterAll(() => server.close())

interface ProjectsBody {
  tenant: string
  projects: Array<{ name: string; tenantId: string }>
}

describe('example app over HTTP on loopback', () => {
  it('serves 200 interleaved requests of two tenants at concurrency 16 and never returns the other tenant’s row', async () => {
    const tenants = Array.from({ length: 200 }, (_, index): Tenant => (index % 2 === 0 ? 'acme' : 'globex'))
    const answers: Array<{ tenant: Tenant; status: number; body: ProjectsBody }> = []
    let next = 0
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < tenants.length) {
          const tenant = tenants[next++]!
          const response = await requestLoopback(server.port, { path: '/projects.json', host: `${tenant}.localhost:${server.port}` })
          answers.push({ tenant, status: response.status, body: response.json<ProjectsBody>() })
        }
      }),
    )
    expect(answers).toHaveLength(200)
    const wrong = answers.filter(({ tenant, status, body }) => status !== 200 || body.tenant !== tenant || body.projects.some((project) => project.tenantId !== tenant) || body.projects.map((project) => project.name).join() !== expected[tenant].join())
    expect(wrong).toEqual([])
  })

  it('answers 404 for a subdomain that is no tenant and 400 for the bare domain, and serves /healthz with no tenant', async () => {
    const unknown = await requestLoopback(server.port, { path: '/projects.json', host: `initech.localhost:${server.port}` })
    expect([unknown.status, unknown.json()]).toEqual([404, { error: { code: 'tenant_unknown', message: 'There is no tenant "initech".' } }])
    const bare = await requestLoopback(server.port, { path: '/', host: `localhost:${server.port}` })
    expect([bare.status, bare.json<{ error: { code: string; lookedFor: string[] } }>().error]).toEqual([400, expect.objectContaining({ code: 'tenant_missing', lookedFor: ['a subdomain of localhost', 'the X-Tenant-ID header'] })])
    expect((await requestLoopback(server.port, { path: '/healthz' })).body).toBe('ok')
  })
})

const chromiumPath = '/usr/bin/chromium'
const haveChromium = existsSync(chromiumPath)
if (!haveChromium) console.warn(`example-app.test.ts: browser test skipped, no Chromium at ${chromiumPath} (apt-get install chromium; .ci/run installs it)`)

describe.skipIf(!haveChromium)('example app in headless Chromium', () => {
  it('shows each tenant’s subdomain page with only that tenant’s projects', async () => {
    const userDataDir = await mkdtemp(join(tmpdir(), 'prisma-tenancy-chromium-'))
    const browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        // Chromium resolves *.localhost to loopback itself, to ::1 or 127.0.0.1; the server listens on 127.0.0.1 only.
        '--host-resolver-rules=MAP *.localhost 127.0.0.1',
      ],
    })
    try {
      const page = await browser.newPage()
      for (const tenant of ['acme', 'globex'] as const) {
        const url = `http://${tenant}.localhost:${server.port}/`
        received.length = 0
        const response = await page.goto(url)
        expect(response?.status()).toBe(200)
        expect(page.url()).toBe(url)
        // The page really came from this server, asked for by the tenant's host name over loopback.
        expect(received.filter((request) => request.path === '/')).toEqual([{ host: `${tenant}.localhost:${server.port}`, remote: '127.0.0.1', path: '/' }])
        expect(await page.textContent('h1')).toBe(`Projects of ${tenant === 'acme' ? 'Acme Corp' : 'Globex Inc'}`)
        expect(await page.locator('#projects li').allTextContents()).toEqual(expected[tenant])
        const other = tenant === 'acme' ? 'globex' : 'acme'
        const text = (await page.textContent('body')) ?? ''
        expect(expected[other].filter((name) => text.includes(name))).toEqual([])
      }
    } finally {
      await browser.close()
      await rm(userDataDir, { recursive: true, force: true })
    }
  })
})

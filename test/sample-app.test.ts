import { expect, it } from 'vitest'
import { PrismaClient } from '../prisma/generated/client.js'
import { tenancy } from '../src/index.js'
import { expectIsolation, expectNoTenantlessSql, useTenancy } from '../src/testing/index.js'

const app = await useTenancy({
  client: (adapter) => new PrismaClient({ adapter }).$extends(tenancy()),
  admin: (adapter) => new PrismaClient({ adapter }),
  createTenant: (admin, id) => admin.tenant.create({ data: { id, name: `Tenant ${id}` } }),
})
const [acme, globex] = await app.createTenants(['acme', 'globex'])

it('keeps projects isolated between tenants', async () => {
  await expectIsolation(app, { model: 'project', data: { name: 'Roadmap' }, tenants: [acme, globex] })
})

it('keeps project members (compound id, mapped table) isolated', async () => {
  const project = await app.asTenant(acme).project.create({ data: { name: 'Members' } })
  await expectIsolation(app, {
    model: 'projectMember',
    data: { projectId: project.id, userEmail: 'ann@example.com' },
    where: (row) => ({ projectId: row.projectId, userEmail: row.userEmail }),
    tenants: [acme, globex],
  })
})

it('sends no SQL without a tenant while serving a request', async () => {
  expect(await expectNoTenantlessSql(app, () => app.asTenant(globex).task.findMany())).toEqual([])
})

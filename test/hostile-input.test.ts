import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { PrismaClient } from '../prisma/generated/client.js'
import { isTenancyError, runWithTenant, tenancy } from '../src/index.js'
import { tenantIdValidator } from '../src/context/tenant-id.js'
import { useTenancy } from '../src/testing/index.js'

const app = await useTenancy({
  client: (adapter) => new PrismaClient({ adapter }).$extends(tenancy()),
  admin: (adapter) => new PrismaClient({ adapter }),
  createTenant: (admin, id) => admin.tenant.create({ data: { id, name: id } }),
})
const [acme, globex] = await app.createTenants(['acme', 'globex'])

beforeAll(async () => {
  await app.asTenant(globex).project.create({ data: { name: 'Globex secret' } })
})

/** What the caller sees: the TenancyError code, or that it got through. */
async function outcome(attempt: () => unknown): Promise<string> {
  try {
    await attempt()
    return 'ran'
  } catch (error) {
    return isTenancyError(error) ? error.code : `failed otherwise: ${(error as Error).message}`
  }
}

/** Runs `attempt` and proves it sent nothing to the server. */
async function refusedBeforeSql(attempt: () => unknown): Promise<string> {
  const before = app.wire.roundTrips.length
  const result = await outcome(attempt)
  expect(app.wire.roundTrips.slice(before)).toEqual([])
  return result
}

const hostileIds: Array<[string, unknown]> = [
  ['an SQL payload', "acme'; DROP TABLE \"Project\"; --"],
  ['a tautology', "' OR '1'='1"],
  ['a set_config payload', "acme', false); SELECT set_config('app.current_tenant', 'globex"],
  ['a single quote', "acme'"],
  ['a double quote', 'acme"'],
  ['a semicolon', 'acme;'],
  ['a NUL byte', 'acme\u0000'],
  ['a NUL byte inside', 'ac\u0000me'],
  ['CR/LF', 'acme\r\nglobex'],
  ['a trailing newline', 'acme\n'],
  ['a space', 'acme '],
  ['a tab', 'acme\t'],
  ['a Cyrillic а for the Latin a', '\u0430cme'],
  ['a fullwidth letter', '\uff41cme'],
  ['a zero-width space', 'ac\u200bme'],
  ['a combining accent', 'acme\u0301'],
  ['a right-to-left override', 'acme\u202e'],
  ['the empty string', ''],
  ['64 characters', 'a'.repeat(64)],
  ['a 10 kB string', 'a'.repeat(10_240)],
  ['a LIKE pattern', 'acme%'],
  ['a dot', 'app.current_tenant'],
  ['a number', 42],
  ['NaN', Number.NaN],
  ['a bigint', 42n],
  ['a boolean', true],
  ['null', null],
  ['an object', { id: 'acme' }],
  ['an array', ['acme']],
  ['an array of two tenants', ['acme', 'globex']],
  ['an object whose toString says acme', { toString: () => 'acme' }],
  ['an object whose valueOf says acme', { valueOf: () => 'acme' }],
  ['an object with Symbol.toPrimitive', { [Symbol.toPrimitive]: () => 'acme' }],
  [
    'an object that answers acme once, then globex',
    (() => {
      let calls = 0
      return { toString: () => (calls++ === 0 ? 'acme' : 'globex') }
    })(),
  ],
  ['a String object', new String('acme')],
  ['a function', () => 'acme'],
  ['a Symbol', Symbol('acme')],
  ['a promise of an id', Promise.resolve('acme')],
]

describe('no tenant at all', () => {
  it('refuses runWithTenant(undefined) as TENANT_MISSING and forTenant(undefined) as TENANT_INVALID, before any SQL', async () => {
    expect(await refusedBeforeSql(() => runWithTenant(undefined as unknown as string, () => app.client.project.findMany()))).toBe('TENANT_MISSING')
    expect(await refusedBeforeSql(() => app.client.forTenant(undefined as unknown as string).project.findMany())).toBe('TENANT_INVALID')
  })
})

describe('hostile tenant ids', () => {
  it.each(hostileIds)('refuses %s with TENANT_INVALID through forTenant, before any SQL', async (_, id) => {
    expect(await refusedBeforeSql(() => app.client.forTenant(id as string).project.findMany())).toBe('TENANT_INVALID')
  })

  it.each(hostileIds)('refuses %s with TENANT_INVALID through runWithTenant (queries, raw SQL, transactions), before any SQL', async (_, id) => {
    const tenant = id as string
    expect(await refusedBeforeSql(() => runWithTenant(tenant, () => app.client.project.findMany()))).toBe('TENANT_INVALID')
    expect(await refusedBeforeSql(() => runWithTenant(tenant, () => app.client.$queryRaw`SELECT 1`))).toBe('TENANT_INVALID')
    expect(await refusedBeforeSql(() => runWithTenant(tenant, () => app.client.project.create({ data: { name: 'x' } })))).toBe('TENANT_INVALID')
    expect(await refusedBeforeSql(() => runWithTenant(tenant, () => app.client.$transaction([app.client.project.count()])))).toBe('TENANT_INVALID')
    expect(await refusedBeforeSql(() => runWithTenant(tenant, () => app.client.$transaction((tx) => tx.project.findMany())))).toBe('TENANT_INVALID')
  })
})

describe('tenant-looking data inside rows', () => {
  const payloads = [
    "'; RESET app.current_tenant; --",
    "'); SELECT set_config('app.current_tenant', 'globex', false); --",
    "app.current_tenant = 'globex'",
    'globex',
    '\\\'; SET app.current_tenant TO DEFAULT; --',
  ]

  it('is stored and read back as data, and changes neither the tenant nor what the tenant sees', async () => {
    const client = app.asTenant(acme)
    for (const payload of payloads) {
      const project = await client.project.create({ data: { name: payload, tasks: { create: [{ title: payload }] } }, include: { tasks: true } })
      expect(project).toMatchObject({ name: payload, tenantId: acme, tasks: [{ title: payload, tenantId: acme }] })
      const [found, tenant] = await client.$transaction([
        client.project.findMany({ where: { name: payload } }),
        client.$queryRaw<Array<{ tenant: string }>>`SELECT current_setting('app.current_tenant', true) AS tenant`,
      ])
      expect(found.map((row) => [row.id, row.name, row.tenantId])).toEqual([[project.id, payload, acme]])
      expect(tenant).toEqual([{ tenant: acme }])
    }
    expect((await client.project.findMany()).every((project) => project.tenantId === acme)).toBe(true)
    expect(await app.asTenant(globex).project.findMany({ where: { name: { in: payloads } } })).toEqual([])
    expect((await app.asTenant(globex).project.findMany()).map((project) => project.name)).toEqual(['Globex secret'])
    expect(await app.admin.project.count({ where: { name: { in: payloads }, tenantId: acme } })).toBe(payloads.length)
  })
})

describe('the validator and the database agree', () => {
  const validate = tenantIdValidator()
  const accepts = (id: unknown) => {
    try {
      validate(id)
      return true
    } catch {
      return false
    }
  }
  const valid = fc.stringMatching(/^[A-Za-z0-9_-]{1,63}$/)
  const ids = fc.oneof(
    { weight: 3, arbitrary: valid },
    // Valid ids with one hostile character spliced in.
    fc.tuple(valid, fc.constantFrom("'", '"', ';', '\u0000', '\n', '\r', ' ', '%', '\\', '.', '\u0430', '\u200b', '$1'), fc.nat()).map(([id, bad, at]) => {
      const cut = at % (id.length + 1)
      return id.slice(0, cut) + bad + id.slice(cut)
    }),
    fc.string({ unit: 'binary', maxLength: 80 }),
    fc.string({ minLength: 62, maxLength: 66 }),
    fc.anything(),
  )

  it('an accepted id round-trips through the tenant column and set_config as itself and sees only its rows; a rejected one never reaches the database', async () => {
    let accepted = 0
    let rejected = 0
    await fc.assert(
      fc.asyncProperty(ids, async (id) => {
        if (!accepts(id)) {
          rejected += 1
          expect(await refusedBeforeSql(() => app.client.forTenant(id as string).project.findMany())).toBe('TENANT_INVALID')
          // runWithTenant(undefined, ...) is no tenant at all, which is refused as missing.
          expect(await refusedBeforeSql(() => runWithTenant(id as string, () => app.client.project.findMany()))).toBe(id === undefined ? 'TENANT_MISSING' : 'TENANT_INVALID')
          return
        }
        accepted += 1
        const tenantId = id as string
        await app.admin.tenant.upsert({ where: { id: tenantId }, create: { id: tenantId, name: tenantId }, update: {} })
        const client = app.asTenant(tenantId)
        const created = await client.project.create({ data: { name: `property ${tenantId}` } })
        expect(created.tenantId).toBe(tenantId)
        const [setting] = await runWithTenant(tenantId, () => app.client.$queryRaw<Array<{ tenant: string }>>`SELECT current_setting('app.current_tenant', true) AS tenant`)
        expect(setting?.tenant).toBe(tenantId)
        const seen = await client.project.findMany({ select: { tenantId: true } })
        expect(seen.length).toBeGreaterThan(0)
        expect(seen.every((row) => row.tenantId === tenantId)).toBe(true)
        expect(seen.length).toBe(await app.admin.project.count({ where: { tenantId } }))
      }),
      { numRuns: 200, seed: 20261201 },
    )
    // Both sides were exercised.
    expect(accepted).toBeGreaterThan(40)
    expect(rejected).toBeGreaterThan(40)
  })
})

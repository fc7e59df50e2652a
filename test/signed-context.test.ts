import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { withClient } from '../src/database/admin.js'
import { tenantSignature, tenantSigner, signatureSetting } from '../src/context/tenant-signature.js'
import { PrismaClient } from '../prisma/generated/client.js'
import { checkPolicies, generatePolicies, tenancy, tenancyAdapter } from '../src/index.js'
import { migrateDeploy } from '../src/migrate/migrate.js'
import { createTestDatabase, type TestDatabase } from '../src/testing/index.js'
import { verify } from '../src/verify/verify.js'
import { copyExampleProject } from './support/example-project.js'
import { runCliCaptured } from './support/cli.js'

const server = inject('prismaTenancy')
const setting = 'app.current_tenant'
const sigSetting = signatureSetting(setting)
let database: TestDatabase
let key = ''

/** The example project with `generate --app-role tenancy_app --signed` on top of its migrations, deployed to a fresh clone. */
beforeAll(async () => {
  const project = await copyExampleProject()
  const generated = await generatePolicies({ cwd: project.dir, appRole: 'tenancy_app', signed: true, now: new Date('2030-01-01T00:00:00Z') })
  expect(generated.created).toBe('20300101000000_rls')
  database = await createTestDatabase(server)
  await migrateDeploy({ cwd: project.dir, databaseUrl: database.adminUrl })
  const stored = await runCliCaptured(['signing-key', 'set', '--database-url', database.adminUrl, '--json'])
  expect(stored.code).toBe(0)
  key = (JSON.parse(stored.stdout) as { key: string }).key
  await withClient(database.adminUrl, async (client) => {
    for (const tenant of ['t_alpha', 't_beta']) {
      await client.query(`INSERT INTO "Tenant" (id, name) VALUES ($1, $1)`, [tenant])
      await client.query(`INSERT INTO "Project" (id, tenant_id, name) VALUES ('project-' || $1, $1, 'secret of ' || $1)`, [tenant])
    }
  })
})
afterAll(() => database?.drop())

const sign = (tenant: string, expiresAt = Math.floor(Date.now() / 1000) + 600) => tenantSignature(Buffer.from(key, 'base64url'), tenant, expiresAt)

/** As the plain app role, in one transaction set up as tenant B with a valid signature, then rolled back. */
async function asBeta<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  return withClient(database.appUrl, async (client) => {
    await client.query('BEGIN')
    try {
      await client.query('SELECT set_config($1, $2, true), set_config($3, $4, true)', [setting, 't_beta', sigSetting, sign('t_beta')])
      return await work(client)
    } finally {
      await client.query('ROLLBACK')
    }
  })
}

const failures = (report: Awaited<ReturnType<typeof verify>>) => report.results.filter((result) => result.status === 'fail').map((result) => result.check)

const tenantsSeen = async (client: pg.Client, sql = 'SELECT tenant_id FROM "Project" ORDER BY 1') => (await client.query<{ tenant_id: string }>(sql)).rows.map((row) => row.tenant_id)

describe('signed policies, as the application role', () => {
  it('show tenant B its own rows when the signature is valid', async () => {
    expect(await asBeta((client) => tenantsSeen(client))).toEqual(['t_beta'])
  })

  it("show nothing of A when B's SQL switches the plain setting to A, in a separate statement or in the same one", async () => {
    const seen = await asBeta(async (client) => {
      await client.query(`SELECT set_config('app.current_tenant', 't_alpha', true)`)
      const separate = await tenantsSeen(client)
      const oneStatement = (await client.query(`SELECT set_config('app.current_tenant', 't_alpha', true), (SELECT count(*)::int FROM "Project" WHERE tenant_id = 't_alpha') AS n`)).rows[0].n as number
      const local = await client.query(`SET LOCAL app.current_tenant = 't_alpha'`).then(() => tenantsSeen(client))
      return { separate, oneStatement, local }
    })
    expect(seen).toEqual({ separate: [], oneStatement: 0, local: [] })
  })

  it('show nothing of A with forged, re-used, expired or malformed signatures', async () => {
    const expired = sign('t_alpha', Math.floor(Date.now() / 1000) - 1)
    const forged = [
      randomBytes(32).toString('hex').replace(/^/, `${Math.floor(Date.now() / 1000) + 600}.`),
      sign('t_beta'), // B's own valid signature, re-used for A
      expired, // A's real signature, replayed after its expiry
      tenantSignature(randomBytes(32), 't_alpha', Math.floor(Date.now() / 1000) + 600), // signed with another key
      sign('t_alpha').toUpperCase(),
      `${sign('t_alpha')}x`,
      sign('t_alpha').replace(/^\d{10}/, '9999999999'), // A's signature with its expiry moved
      sign('t_alpha').replace(/^\d/, 'z'), // a letter where the expiry's digits belong
      `0${sign('t_alpha')}`,
      'not a signature',
      '99999999999999999999.00',
      '',
    ]
    const seen = await asBeta(async (client) => {
      const results: string[][] = []
      for (const value of forged) {
        await client.query('SELECT set_config($1, $2, true), set_config($3, $4, true)', [setting, 't_alpha', sigSetting, value])
        results.push(await tenantsSeen(client))
      }
      return results
    })
    expect(seen).toEqual(forged.map(() => []))
  })

  it('show nothing of A when the setting names are built with string functions, or the tenant is padded', async () => {
    const seen = await asBeta(async (client) => {
      const tricks = [
        `SELECT set_config(concat('app.', 'current_tenant'), 't_alpha', true), (SELECT count(*)::int FROM "Project") AS n`,
        `SELECT set_config(lower('APP.CURRENT_TENANT'), 't_alpha', true), set_config(replace('app.current_tenantXsig', 'X', '_'), '', true), (SELECT count(*)::int FROM "Project") AS n`,
        `SELECT set_config('app.current_tenant', 't_beta ', true), (SELECT count(*)::int FROM "Project") AS n`,
        `SELECT set_config('app.current_tenant', 't_beta' || chr(0 + 10), true), (SELECT count(*)::int FROM "Project") AS n`,
      ]
      const counts: number[] = []
      for (const sql of tricks) counts.push((await client.query(sql)).rows[0].n as number)
      return counts
    })
    expect(seen).toEqual([0, 0, 0, 0])
  })

  it("show B its own registry row only, and not A's when B's SQL switches the plain setting to A", async () => {
    const seen = await asBeta(async (client) => {
      const own = (await client.query<{ id: string }>('SELECT id FROM "Tenant" ORDER BY 1')).rows.map((row) => row.id)
      await client.query(`SELECT set_config('app.current_tenant', 't_alpha', true)`)
      const switched = (await client.query<{ id: string }>('SELECT id FROM "Tenant" ORDER BY 1')).rows.map((row) => row.id)
      return { own, switched }
    })
    expect(seen).toEqual({ own: ['t_beta'], switched: [] })
  })

  it("refuse B's writes into A: an insert carrying A's id, and updates or deletes of A's rows", async () => {
    const outcome = await asBeta(async (client) => {
      await client.query(`SELECT set_config('app.current_tenant', 't_alpha', true)`)
      await client.query('SAVEPOINT s')
      const insert = await client.query(`INSERT INTO "Project" (id, tenant_id, name) VALUES ('planted', 't_alpha', 'x')`).then(() => 'inserted', (error: { code?: string }) => error.code)
      await client.query('ROLLBACK TO SAVEPOINT s')
      const update = (await client.query(`UPDATE "Project" SET name = 'pwned' WHERE tenant_id = 't_alpha'`)).rowCount
      const remove = (await client.query(`DELETE FROM "Project" WHERE tenant_id = 't_alpha'`)).rowCount
      return { insert, update, remove }
    })
    expect(outcome).toEqual({ insert: '42501', update: 0, remove: 0 })
    expect(await withClient(database.adminUrl, async (client) => (await client.query(`SELECT name FROM "Project" WHERE id = 'project-t_alpha'`)).rows)).toEqual([{ name: 'secret of t_alpha' }])
  })

  it('keep the key out of reach: the app role can neither read nor replace it, nor call a way around the function', async () => {
    const codes = await withClient(database.appUrl, async (client) => {
      const attempt = (sql: string) => client.query(sql).then(() => 'ran', (error: { code?: string }) => error.code)
      return [
        await attempt('SELECT * FROM prisma_tenancy.signing_key'),
        await attempt(`UPDATE prisma_tenancy.signing_key SET inner_key = inner_key`),
        await attempt(`CREATE TEMP TABLE signing_key (inner_key bytea, outer_key bytea)`),
      ]
    })
    expect(codes).toEqual(['42501', '42501', '42501'])
  })

  it("with B's one-statement switch, the unsigned policies would have shown A's rows (what the signed mode closes)", async () => {
    // The same statement against the committed, unsigned example policies: the switch works there.
    const unsigned = await createTestDatabase(server)
    try {
      await withClient(unsigned.adminUrl, (client) => client.query(`INSERT INTO "Tenant" (id, name) VALUES ('t_alpha', 'a'); INSERT INTO "Project" (id, tenant_id, name) VALUES ('p', 't_alpha', 'secret')`))
      const n = await withClient(unsigned.appUrl, async (client) => {
        await client.query('BEGIN')
        await client.query(`SELECT set_config('app.current_tenant', 't_beta', true)`)
        return (await client.query(`SELECT set_config('app.current_tenant', 't_alpha', true), (SELECT count(*)::int FROM "Project") AS n`)).rows[0].n as number
      })
      expect(n).toBe(1)
    } finally {
      await unsigned.drop()
    }
  })
})

describe('the tenancy client with signingKey', () => {
  const clients: { $disconnect(): Promise<void> }[] = []
  afterAll(() => Promise.all(clients.map((client) => client.$disconnect())))
  const signedClient = (signingKey?: string, options: { preparedTenantStatement?: boolean } = {}) => {
    const base = new PrismaClient({ adapter: tenancyAdapter(database.appUrl, signingKey === undefined ? options : { ...options, signingKey }) })
    clients.push(base)
    return base.$extends(tenancy())
  }

  it('reads and writes its own tenant: the driver sends the signature in the same set_config statement', async () => {
    const beta = signedClient(key).forTenant('t_beta')
    const created = await beta.project.create({ data: { name: 'signed write' } })
    expect(created.tenantId).toBe('t_beta')
    expect((await beta.project.findMany({ orderBy: { name: 'asc' } })).map((project) => [project.tenantId, project.name])).toEqual([
      ['t_beta', 'secret of t_beta'],
      ['t_beta', 'signed write'],
    ])
    await beta.project.delete({ where: { id: created.id } })
  })

  it("keeps B's interactive transaction away from A whatever its raw SQL sets, in the same statement or before the next", async () => {
    const beta = signedClient(key).forTenant('t_beta')
    const seen = await beta.$transaction(async (tx) => {
      const [switched] = await tx.$queryRawUnsafe<{ n: number }[]>(`SELECT set_config('app.current_tenant', 't_alpha', true), (SELECT count(*)::int FROM "Project" WHERE tenant_id = 't_alpha') AS n`)
      await tx.$executeRawUnsafe(`SELECT set_config('app.current_tenant', 't_alpha', true), set_config('app.current_tenant_sig', '${sign('t_beta')}', true)`)
      const after = await tx.project.findMany()
      const renamed = await tx.$executeRawUnsafe(`UPDATE "Project" SET name = 'pwned' WHERE tenant_id = 't_alpha'`)
      return { switched: switched?.n, after: after.map((project) => project.tenantId), renamed }
    })
    expect(seen).toEqual({ switched: 0, after: ['t_beta'], renamed: 0 })
  })

  it('reads and writes its own tenant on the prepared fast path, the signed set_config parsed once as a named statement', async () => {
    const client = signedClient(key, { preparedTenantStatement: true })
    for (let round = 0; round < 3; round += 1) {
      for (const tenant of ['t_alpha', 't_beta']) {
        const scoped = client.forTenant(tenant)
        expect((await scoped.project.findMany()).map((project) => project.tenantId)).toEqual([tenant])
        expect(await scoped.$transaction(async (tx) => (await tx.project.findMany()).map((project) => project.name))).toEqual([`secret of ${tenant}`])
      }
    }
    const prepared = await client.forTenant('t_beta').$queryRawUnsafe<{ name: string }[]>('SELECT name FROM pg_prepared_statements ORDER BY name')
    expect(prepared.map((row) => row.name)).toEqual(['prisma_tenancy_set_signed_tenant'])
  })

  it('sees no row and writes none without the key, on signed policies (fails closed)', async () => {
    const unsigned = signedClient().forTenant('t_beta')
    expect(await unsigned.project.findMany()).toEqual([])
    await expect(unsigned.project.create({ data: { name: 'unsigned write' } })).rejects.toMatchObject({ code: 'TENANT_MISMATCH' })
  })
})

describe('tenantSigner, the client side', () => {
  it('reuses a signature until half its lifetime has passed, then signs with a later expiry, per tenant', () => {
    let clock = 1_000_000_000_000
    const signer = tenantSigner(randomBytes(32).toString('base64url'), { ttlSeconds: 600, now: () => clock })
    const first = signer('t_alpha')
    expect(first).toMatch(/^1000000600\.[0-9a-f]{64}$/)
    clock += 299_000
    expect(signer('t_alpha')).toBe(first)
    expect(signer('t_beta')).not.toBe(first)
    clock += 2_000
    expect(signer('t_alpha')).toMatch(/^1000000901\./)
  })

  it('refuses a key that is not what signing-key set prints, with CONFIG_INVALID', () => {
    for (const bad of ['', 'short', `${key}==`, randomBytes(16).toString('base64url')]) {
      expect(() => tenantSigner(bad)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
    }
  })
})

describe('upgrading a signed project whose registry policy still reads the plain setting', () => {
  it('generate --signed writes one migration for the registry alone, and once deployed it trusts the signed tenant only', async () => {
    const project = await copyExampleProject()
    const first = await generatePolicies({ cwd: project.dir, appRole: 'tenancy_app', signed: true, now: new Date('2030-01-01T00:00:00Z') })
    // What earlier versions wrote: signed tenant tables, but the registry on the bare setting and recorded without `signed`.
    const firstFile = join(project.migrations, first.created ?? '', 'migration.sql')
    const current = await readFile(firstFile, 'utf8')
    const old = current
      .replace(/("kind":"registry".*),"signed":true\}/, '$1}')
      .replace(`USING ("id" = (SELECT prisma_tenancy.current_tenant()));`, `USING ("id" = NULLIF(current_setting('app.current_tenant', true), ''));`)
    expect(old).not.toBe(current)
    await writeFile(firstFile, old)
    const upgraded = await createTestDatabase(server)
    try {
      await migrateDeploy({ cwd: project.dir, databaseUrl: upgraded.adminUrl })
      const registryPolicy = () =>
        withClient(upgraded.adminUrl, async (client) => (await client.query<{ using: string }>(`SELECT pg_get_expr(polqual, polrelid) AS using FROM pg_policy WHERE polrelid = '"Tenant"'::regclass`)).rows.map((row) => row.using))
      expect(await registryPolicy()).toEqual([`(id = NULLIF(current_setting('app.current_tenant'::text, true), ''::text))`])
      const pending = await checkPolicies({ cwd: project.dir, appRole: 'tenancy_app', signed: true })
      expect(pending.pending.map((table) => [table.table, table.detail])).toEqual([['Tenant', 'signed tenant context']])

      const second = await generatePolicies({ cwd: project.dir, appRole: 'tenancy_app', signed: true, now: new Date('2030-01-02T00:00:00Z') })
      expect(second.created).toBe('20300102000000_rls')
      const script = await readFile(join(project.migrations, second.created ?? '', 'migration.sql'), 'utf8')
      expect(script.match(/^CREATE POLICY .*/gm)).toEqual(['CREATE POLICY tenancy_registry_read ON "Tenant" AS PERMISSIVE FOR SELECT TO PUBLIC'])
      expect(script).not.toContain('CREATE OR REPLACE FUNCTION')
      await migrateDeploy({ cwd: project.dir, databaseUrl: upgraded.adminUrl })
      expect(await registryPolicy()).toEqual(['(id = ( SELECT prisma_tenancy.current_tenant() AS current_tenant))'])
      expect((await checkPolicies({ cwd: project.dir, appRole: 'tenancy_app', signed: true })).upToDate).toBe(true)
    } finally {
      await upgraded.drop()
    }
  })
})

describe('prisma-tenancy signing-key set', () => {
  it('refuses to replace the key without --rotate, and with it, old signatures stop matching', async () => {
    const again = await runCliCaptured(['signing-key', 'set', '--database-url', database.adminUrl])
    expect(again.code).toBe(2)
    expect(again.stderr).toContain('SIGNING_KEY_EXISTS')
    expect(again.stderr).toContain('--rotate')
    expect(again.stdout).toBe('')
    const oldSignature = sign('t_beta')
    const rotated = await runCliCaptured(['signing-key', 'set', '--database-url', database.adminUrl, '--rotate', '--json'])
    expect(rotated.code).toBe(0)
    const { key: newKey } = JSON.parse(rotated.stdout) as { key: string }
    expect(newKey).not.toBe(key)
    const seen = await withClient(database.appUrl, async (client) => {
      const as = async (signature: string) => {
        await client.query('BEGIN')
        await client.query('SELECT set_config($1, $2, true), set_config($3, $4, true)', [setting, 't_beta', sigSetting, signature])
        const rows = await tenantsSeen(client)
        await client.query('ROLLBACK')
        return rows
      }
      return { old: await as(oldSignature), current: await as(tenantSigner(newKey)('t_beta')) }
    })
    expect(seen).toEqual({ old: [], current: ['t_beta'] })
    key = newKey
  })

  it('says to generate and deploy first on a database without the key table (exit 2, stdout empty)', async () => {
    const plain = await createTestDatabase(server)
    try {
      const result = await runCliCaptured(['signing-key', 'set', '--database-url', plain.adminUrl])
      expect(result.code).toBe(2)
      expect(result.stderr).toContain('generate --signed')
      expect(result.stdout).toBe('')
    } finally {
      await plain.drop()
    }
  })
})

describe('verify on signed policies', () => {
  it('counts them as tenant-scoped, proves the key unreachable, and probes every table with signed probe tenants', async () => {
    const report = await verify({ databaseUrl: database.adminUrl, role: database.appRole.name })
    expect(report.results.filter((result) => result.status !== 'pass')).toEqual([])
    expect(report.results.filter((result) => result.check === 'signed-context').map((result) => result.status)).toEqual(['pass'])
    expect(report.probedTables.sort()).toEqual(report.tenantTables.sort())
  })

  it('catches, by probing, a signed table whose permissive policy lets every row through', async () => {
    const restrictive = `tenant_id = (SELECT prisma_tenancy.current_tenant())`
    await withClient(database.adminUrl, (client) => client.query('DROP POLICY tenancy_isolation ON tasks; CREATE POLICY everyone ON tasks FOR SELECT USING (true)'))
    const report = await verify({ databaseUrl: database.adminUrl, role: database.appRole.name }).finally(() =>
      withClient(database.adminUrl, (client) => client.query(`DROP POLICY everyone ON tasks; CREATE POLICY tenancy_isolation ON tasks AS RESTRICTIVE FOR ALL USING (${restrictive}) WITH CHECK (${restrictive})`)),
    )
    expect(report.results.filter((result) => result.check === 'probe-read' && result.status === 'fail').map((result) => result.table)).toEqual(['public.tasks'])
  })

  it('reports not-probed, never a pass, when the connecting user cannot sign the probe tenants', async () => {
    const report = await verify({ databaseUrl: database.appUrl })
    expect(report.probedTables).toEqual([])
    expect(report.results.find((result) => result.check === 'not-probed')?.message).toContain('cannot sign the probe tenants')
  })

  it('fails signed-context and definer-function when the function is replaced by one that skips the signature', async () => {
    const original = await withClient(database.adminUrl, async (client) => (await client.query<{ definition: string }>(`SELECT pg_get_functiondef('prisma_tenancy.current_tenant()'::regprocedure) AS definition`)).rows[0]!.definition)
    await withClient(database.adminUrl, (client) =>
      client.query(`CREATE OR REPLACE FUNCTION prisma_tenancy.current_tenant() RETURNS text LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$ BEGIN RETURN current_setting('app.current_tenant', true); END $$`),
    )
    try {
      const report = await verify({ databaseUrl: database.adminUrl, role: database.appRole.name, probes: false })
      expect(report.results.find((result) => result.check === 'signed-context')?.message).toContain('is not the one generate --signed writes')
      expect(failures(report)).toEqual(expect.arrayContaining(['signed-context', 'definer-function']))
    } finally {
      await withClient(database.adminUrl, (client) => client.query(original))
    }
  })

  it('fails signed-context when the app role can read the key table', async () => {
    await withClient(database.adminUrl, (client) => client.query('GRANT USAGE ON SCHEMA prisma_tenancy TO tenancy_app; GRANT SELECT ON prisma_tenancy.signing_key TO tenancy_app'))
    try {
      const report = await verify({ databaseUrl: database.adminUrl, role: database.appRole.name, probes: false })
      const signed = report.results.find((result) => result.check === 'signed-context')
      expect(signed?.status).toBe('fail')
      expect(signed?.message).toContain('SELECT')
    } finally {
      await withClient(database.adminUrl, (client) => client.query('REVOKE ALL ON prisma_tenancy.signing_key FROM tenancy_app; REVOKE USAGE ON SCHEMA prisma_tenancy FROM tenancy_app'))
    }
  })
})

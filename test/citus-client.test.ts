import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PrismaClient } from './fixtures/citus/prisma/generated/client.js'
import { appRoleUrl, withClient } from '../src/database/admin.js'
import { runWithTenant, tenancy, tenancyAdapter, type TenancyPg } from '../src/index.js'
import { citusAvailable, citusInstallScript, startCitusCluster, type CitusCluster } from '../src/testing/citus-cluster.js'
import { recordWire, type WireRecorder } from '../src/testing/wire-recorder.js'
import { splitStatements } from '../src/migrate/sql-statements.js'
import { verify } from '../src/verify/verify.js'
import { citusAppRole, deployCitusProject } from './support/citus-project.js'
import { refusal } from './support/refusal.js'

const citus = await citusAvailable()
if (!citus.available) console.warn(`test/citus-client.test.ts skipped: ${citus.reason} (script: ${citusInstallScript})`)

function tenantClient(url: string, options: { citus?: boolean } = {}) {
  const adapter = tenancyAdapter(url, options)
  const wire = recordWire(adapter.pool)
  const prisma = new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] })
  const queries: Array<{ query: string; params: string }> = []
  prisma.$on('query', (event) => queries.push({ query: event.query, params: event.params }))
  return { adapter, wire, queries, base: prisma, client: prisma.$extends(tenancy()) }
}

describe.skipIf(!citus.available)('the tenancy client on a Citus coordinator and two workers, as the app role', () => {
  let cluster: CitusCluster
  let url = ''
  let adapter: TenancyPg
  let wire: WireRecorder
  let queries: Array<{ query: string; params: string }>
  let prisma: ReturnType<typeof tenantClient>['client']
  let acme: typeof prisma
  let globex: typeof prisma
  let globexProject = ''
  let project: Awaited<ReturnType<typeof deployCitusProject>>

  beforeAll(async () => {
    cluster = await startCitusCluster()
    project = await deployCitusProject(cluster, 'citus_client')
    url = project.url
    await withClient(url, (client) => client.query(`INSERT INTO "Tenant" (id, name) VALUES ('acme', 'Acme'), ('globex', 'Globex')`))
    const tenant = tenantClient(appRoleUrl(url, citusAppRole))
    ;({ adapter, wire, queries } = tenant)
    prisma = tenant.client
    acme = prisma.forTenant('acme')
    globex = prisma.forTenant('globex')
    for (const name of ['Rocket', 'Magnet']) await acme.project.create({ data: { name, tasks: { create: [{ title: `Build ${name}` }] } } })
    globexProject = (await globex.project.create({ data: { name: 'Doomsday', tasks: { create: [{ title: 'Plan' }] } } })).id
  })
  afterAll(async () => {
    await prisma?.$disconnect()
    await cluster?.stop()
  })

  it('detects Citus on the first connection and sends BEGIN, SET LOCAL of the tenant, the query and COMMIT in one round trip', async () => {
    expect(adapter.citusKnown()).toBe(true)
    wire.clear()
    await acme.project.count()
    expect(wire.roundTrips).toHaveLength(1)
    const [statements = []] = wire.roundTrips.map((trip) => trip.statements)
    expect(statements).toHaveLength(4)
    expect(statements.slice(0, 2)).toEqual(['BEGIN', "SET LOCAL app.current_tenant = 'acme'"])
    expect(statements[2]).toMatch(/^SELECT COUNT/)
    expect(statements[3]).toBe('COMMIT')
  })

  it("reads only its tenant's rows, whatever the query asks for", async () => {
    const projects = await acme.project.findMany({ include: { tasks: true } })
    expect(projects.map((project) => project.tenantId)).toEqual(['acme', 'acme'])
    expect(projects.flatMap((project) => project.tasks.map((task) => task.tenantId))).toEqual(['acme', 'acme'])
    expect(await acme.project.findUnique({ where: { tenantId_id: { tenantId: 'globex', id: globexProject } } })).toBeNull()
    expect(await acme.project.findFirst({ where: { name: 'Doomsday' } })).toBeNull()
    expect(await acme.task.count({ where: { projectId: globexProject } })).toBe(0)
    expect(await globex.project.count()).toBe(1)
    expect(await runWithTenant('globex', () => prisma.project.findMany())).toEqual([expect.objectContaining({ id: globexProject, tenantId: 'globex' })])
  })

  it('creates rows for its tenant, singly, nested and in bulk, and refuses a row that names another tenant', async () => {
    const created = await acme.project.create({ data: { name: 'Anvil', tasks: { create: [{ title: 'Drop' }] } }, include: { tasks: true } })
    expect(created.tenantId).toBe('acme')
    expect(created.tasks.map((task) => task.tenantId)).toEqual(['acme'])
    expect((await acme.task.createMany({ data: [{ projectId: created.id, title: 'a' }, { projectId: created.id, title: 'b' }] })).count).toBe(2)
    const error = await refusal(() => acme.project.create({ data: { tenantId: 'globex', name: 'Trojan' } }))
    expect(error.code).toBe('TENANT_MISMATCH')
    expect(await refusal(() => acme.task.createMany({ data: [{ tenantId: 'globex', projectId: globexProject, title: 'Trojan' }] }))).toMatchObject({ code: 'TENANT_MISMATCH' })
    expect(await globex.project.count()).toBe(1)
    expect(await globex.task.count()).toBe(1)
  })

  it("cannot update, delete or upsert another tenant's rows, nor move a row to another tenant", async () => {
    expect((await acme.project.updateMany({ where: { id: globexProject }, data: { name: 'pwned' } })).count).toBe(0)
    expect((await acme.task.deleteMany({ where: { projectId: globexProject } })).count).toBe(0)
    await expect(acme.project.update({ where: { tenantId_id: { tenantId: 'globex', id: globexProject } }, data: { name: 'pwned' } })).rejects.toThrow()
    const upserted = await acme.project.upsert({ where: { tenantId_id: { tenantId: 'globex', id: globexProject } }, create: { id: globexProject, name: 'Mine now' }, update: { name: 'pwned' } })
    expect(upserted.tenantId).toBe('acme')
    const [own] = await acme.project.findMany({ where: { name: 'Rocket' } })
    await expect(acme.project.update({ where: { tenantId_id: { tenantId: 'acme', id: own?.id ?? '' } }, data: { tenantId: 'globex' } })).rejects.toThrow()
    expect(await globex.project.findMany()).toEqual([expect.objectContaining({ id: globexProject, name: 'Doomsday' })])
    expect((await acme.project.updateMany({ where: { name: 'Rocket' }, data: { country: 'de' } })).count).toBe(1)
    expect((await acme.project.deleteMany({ where: { id: globexProject } })).count).toBe(1)
    expect(await globex.task.count()).toBe(1)
  })

  it('runs batch transactions as one tenant and refuses one that mixes tenants', async () => {
    const [project, count] = await acme.$transaction([acme.project.create({ data: { name: 'Batch' } }), acme.project.count()])
    expect(project.tenantId).toBe('acme')
    expect(count).toBe(await acme.project.count())
    expect(await refusal(() => prisma.$transaction([acme.project.count(), globex.project.count()]))).toMatchObject({ code: 'TENANT_MISMATCH' })
  })

  it("runs interactive transactions as the tenant, with SET LOCAL after BEGIN, and rolls them back on error", async () => {
    wire.clear()
    const seen = await acme.$transaction(async (tx) => {
      await tx.project.create({ data: { name: 'Interactive' } })
      return tx.project.findMany({ where: { name: 'Interactive' } })
    })
    expect(seen.map((project) => project.tenantId)).toEqual(['acme'])
    const [first = []] = wire.roundTrips.map((trip) => trip.statements)
    expect(first.slice(0, 2)).toEqual(['BEGIN', "SET LOCAL app.current_tenant = 'acme'"])
    expect(wire.statements().filter((text) => text.startsWith('SET LOCAL'))).toHaveLength(1)
    await expect(
      acme.$transaction(async (tx) => {
        await tx.project.create({ data: { name: 'Gone' } })
        throw new Error('changed my mind')
      }),
    ).rejects.toThrow('changed my mind')
    expect(await acme.project.count({ where: { name: 'Gone' } })).toBe(0)
    await expect(globex.$transaction(async (tx) => tx.project.create({ data: { tenantId: 'acme', name: 'Trojan' } }))).rejects.toMatchObject({ code: 'TENANT_MISMATCH' })
  })

  it('rolls back the transaction a failed statement leaves open, first thing on its connection', async () => {
    const single = tenancyAdapter({ connectionString: appRoleUrl(url, citusAppRole), max: 1 })
    const recorded = recordWire(single.pool)
    const client = new PrismaClient({ adapter: single }).$extends(tenancy())
    try {
      const one = client.forTenant('acme')
      expect(await refusal(() => one.project.create({ data: { tenantId: 'globex', name: 'Trojan' } }))).toMatchObject({ code: 'TENANT_MISMATCH' })
      // pg-pool drops a connection whose query failed, so the rollback comes first on the connection that failed.
      expect(await one.project.count({ where: { name: 'Trojan' } })).toBe(0)
      const trips = recorded.roundTrips.map((trip) => trip.statements)
      const insert = trips.findIndex((statements) => statements.some((text) => text.startsWith('INSERT')))
      expect(trips[insert]?.at(-1)).toBe('COMMIT')
      expect(trips[insert + 1]).toEqual(['ROLLBACK'])
    } finally {
      await client.$disconnect()
    }
  })

  it('scopes raw SQL to the tenant, inside and outside transactions', async () => {
    expect(await acme.$queryRaw<Array<{ tenant_id: string }>>`SELECT DISTINCT tenant_id FROM "Project"`).toEqual([{ tenant_id: 'acme' }])
    expect(await acme.$executeRaw`UPDATE "Project" SET name = 'pwned' WHERE id = ${globexProject}`).toBe(0)
    expect(await acme.$transaction(async (tx) => tx.$queryRaw<Array<{ n: bigint }>>`SELECT count(*) AS n FROM "Project" WHERE tenant_id = 'globex'`)).toEqual([{ n: 0n }])
    expect(await refusal(() => acme.$executeRaw`INSERT INTO "Project" (id, tenant_id, name) VALUES ('raw', 'globex', 'Trojan')`)).toMatchObject({ code: 'TENANT_MISMATCH' })
  })

  it('fails closed: an operation with no tenant is refused before any SQL', async () => {
    wire.clear()
    expect(await refusal(() => prisma.project.findMany())).toMatchObject({ code: 'TENANT_MISSING' })
    expect(wire.statements()).toEqual([])
  })

  it("routes each model query to the tenant's one shard (EXPLAIN: Task Count: 1)", async () => {
    const [own] = await acme.project.findMany({ where: { name: 'Rocket' } })
    const operations = [
      () => acme.project.findUnique({ where: { tenantId_id: { tenantId: 'acme', id: own?.id ?? '' } } }),
      () => acme.project.findMany({ where: { name: 'Rocket' } }),
      () => acme.project.findMany({ where: { name: 'Rocket' }, include: { tasks: true } }),
      () => acme.project.count(),
      () => acme.project.updateMany({ where: { name: 'Rocket' }, data: { country: 'fr' } }),
      () => acme.project.deleteMany({ where: { name: 'nothing' } }),
      () => acme.project.create({ data: { name: 'Routed' } }),
    ]
    for (const operation of operations) {
      queries.length = 0
      await operation()
      const modelQueries = queries.filter((entry) => /"Project"|"tasks"/.test(entry.query) && !/^(BEGIN|COMMIT)/.test(entry.query))
      expect(modelQueries.length).toBeGreaterThan(0)
      for (const { query, params } of modelQueries) {
        const plan = await acme.$queryRawUnsafe<Array<{ 'QUERY PLAN': string }>>(`EXPLAIN ${query}`, ...(JSON.parse(params) as unknown[]))
        expect({ query, taskCount: /Task Count: (\d+)/.exec(plan.map((row) => row['QUERY PLAN']).join('\n'))?.[1] }).toEqual({ query, taskCount: '1' })
      }
    }
  })

  it('refuses the signed tenant context on Citus with CONFIG_INVALID, naming the fix', async () => {
    const adapter = tenancyAdapter(appRoleUrl(url, citusAppRole), { signingKey: 'a'.repeat(43) })
    const signed = new PrismaClient({ adapter }).$extends(tenancy())
    try {
      const error = await refusal(() => signed.forTenant('acme').project.count())
      expect(error.code).toBe('CONFIG_INVALID')
      expect(error.message).toContain('generate --citus')
    } finally {
      await signed.$disconnect()
    }
  })

  it("refuses a role without citus.propagate_set_commands = 'local' with CONFIG_INVALID, rather than return no rows", async () => {
    const role = { name: 'tenancy_app_unset', password: 'unset' }
    await withClient(url, async (client) => {
      await client.query(`CREATE ROLE ${role.name} LOGIN PASSWORD '${role.password}'`)
      await client.query(`GRANT SELECT ON "Project" TO ${role.name}`)
    })
    const unset = new PrismaClient({ adapter: tenancyAdapter(appRoleUrl(url, role)) }).$extends(tenancy())
    try {
      const error = await refusal(() => unset.forTenant('acme').project.count())
      expect(error.code).toBe('CONFIG_INVALID')
      expect(error.message).toContain(`ALTER ROLE ${role.name} SET citus.propagate_set_commands = 'local'`)
    } finally {
      await unset.$disconnect()
    }
  })

  it('sends the tenant as SET LOCAL when Citus mode is forced, which one server runs the same way', async () => {
    const forced = tenantClient(appRoleUrl(url, citusAppRole), { citus: true })
    try {
      expect(forced.adapter.citusKnown()).toBe(true)
      expect(await forced.client.forTenant('globex').project.findMany()).toEqual([expect.objectContaining({ id: globexProject })])
      expect(forced.wire.statements()).toContain("SET LOCAL app.current_tenant = 'globex'")
    } finally {
      await forced.client.$disconnect()
    }
  })

  it('applies the generate --citus migration with migrate deploy (statement by statement, in one transaction)', () => {
    expect(project.applied).toHaveLength(2)
    expect(project.applied[1]).toMatch(/_rls$/)
  })

  it('verifies the cluster: tenant tables distributed on the tenant column, policies on every shard, the propagation setting, the probes through the coordinator', async () => {
    const report = await verify({ cwd: project.dir, schema: project.schema, databaseUrl: url, role: citusAppRole.name })
    const failed = report.results.filter((result) => result.status !== 'pass')
    expect(failed).toEqual([])
    expect(report.ok).toBe(true)
    const passed = (check: string) => report.results.filter((result) => result.check === check && result.status === 'pass').map((result) => result.table)
    expect(passed('citus-distributed')).toEqual(['public.Project', 'public.tasks'])
    expect(passed('citus-shard-policies')).toEqual(['public.Project', 'public.tasks'])
    expect(passed('citus-propagation')).toEqual([null])
    expect(passed('probe-read')).toEqual(['public.Project', 'public.tasks'])
    expect(passed('probe-move')).toEqual(['public.Project', 'public.tasks'])
  })

  it("fails verify for a role without citus.propagate_set_commands = 'local', and for a shard that lost a policy", async () => {
    await withClient(url, (client) => client.query(`ALTER ROLE ${citusAppRole.name} RESET citus.propagate_set_commands`))
    try {
      const report = await verify({ cwd: project.dir, schema: project.schema, databaseUrl: url, role: citusAppRole.name, probes: false })
      expect(report.results.find((result) => result.check === 'citus-propagation')).toMatchObject({ status: 'fail', fix: expect.stringContaining("SET citus.propagate_set_commands = 'local'") })
    } finally {
      await withClient(url, (client) => client.query(`ALTER ROLE ${citusAppRole.name} SET citus.propagate_set_commands = 'local'`))
    }
    const shard = await withClient(url, async (client) => (await client.query<{ name: string; port: number }>(`SELECT 'Project_' || shardid AS name, nodeport AS port FROM citus_shards WHERE table_name = '"Project"'::regclass ORDER BY shardid LIMIT 1`)).rows[0])
    const worker = cluster.workers.find((node) => node.port === shard?.port)
    await withClient(worker!.adminUrl.replace(/\/postgres$/, '/citus_client'), (client) => client.query(`DROP POLICY tenancy_access ON "${shard!.name}"`))
    const report = await verify({ cwd: project.dir, schema: project.schema, databaseUrl: url, role: citusAppRole.name, probes: false })
    expect(report.ok).toBe(false)
    expect(report.results.find((result) => result.check === 'citus-shard-policies' && result.table === 'public.Project')).toMatchObject({ status: 'fail', message: expect.stringContaining(`127.0.0.1:${shard!.port}`) })
  })
})

describe('migration scripts cut into statements for Citus', () => {
  it('cuts at top-level semicolons only, past strings, quoted names, dollar quotes and comments', () => {
    const script = [
      '-- a comment; with a semicolon',
      `CREATE TABLE "a;b" (v text DEFAULT 'x;y', w text DEFAULT E'it\\'s;');`,
      '/* block; /* nested; */ still; */ SELECT 1;',
      'CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;',
      'DO $$ BEGIN PERFORM 1; END $$;',
      ';',
      '-- trailing comment only',
    ].join('\n')
    expect(splitStatements(script)).toEqual([
      "-- a comment; with a semicolon\nCREATE TABLE \"a;b\" (v text DEFAULT 'x;y', w text DEFAULT E'it\\'s;')",
      '/* block; /* nested; */ still; */ SELECT 1',
      'CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql',
      'DO $$ BEGIN PERFORM 1; END $$',
    ])
  })
})

import { spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import pg from 'pg'
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { adopt } from '../src/adopt/adopt.js'
import { tenancyAdapter } from '../src/client/tenancy-adapter.js'
import { tenancy } from '../src/client/tenancy.js'
import { withClient } from '../src/database/admin.js'
import { isTenancyError } from '../src/errors.js'
import { markRolledBack, migrateDeploy, migrateDev, migrateStatus } from '../src/migrate/migrate.js'
import { useTestDatabase } from '../src/testing/index.js'
import { verify } from '../src/verify/verify.js'
import { runCliCaptured } from './support/cli.js'
import { createLegacyProject, stageMigrations, tableChecksums, tenantSchema, type LegacyProject } from './support/legacy-project.js'

const db = await useTestDatabase()
const legacy = 'legacy'

/** The parts of the generated client for the multi-tenant schema these tests use. */
interface Delegate {
  count(args?: object): Promise<number>
  findFirst(args: object): Promise<Record<string, unknown> | null>
  create(args: object): Promise<Record<string, unknown>>
  updateMany(args: object): Promise<{ count: number }>
  deleteMany(args: object): Promise<{ count: number }>
}
interface TenantClient {
  project: Delegate
  task: Delegate
  member: Delegate
  forTenant(tenantId: string): TenantClient
  $disconnect(): Promise<void>
}

let PrismaClient: new (options: { adapter: unknown }) => { $extends(extension: unknown): TenantClient }
beforeAll(async () => {
  // The app's new client, generated from the multi-tenant schema (into the ignored .tmp folder).
  const generated = spawnSync(process.execPath, ['scripts/prisma-generate.mjs', '--schema', tenantSchema], { encoding: 'utf8' })
  if (generated.status !== 0) throw new Error(`prisma generate failed: ${generated.stderr}`)
  const clientPath = resolve('.tmp/adopt-tenant-client/client.ts')
  ;({ PrismaClient } = (await import(clientPath)) as { PrismaClient: typeof PrismaClient })
})

// Closed when the test finishes, before its database is dropped (vitest runs those callbacks last registered, first).
function tenancyClient(project: LegacyProject): TenantClient {
  const client = new PrismaClient({ adapter: tenancyAdapter(project.appUrl) }).$extends(tenancy())
  onTestFinished(() => client.$disconnect())
  return client
}

function appPool(project: LegacyProject): pg.Pool {
  const pool = new pg.Pool({ connectionString: project.appUrl, max: 2 })
  onTestFinished(() => pool.end())
  return pool
}

/** The single-tenant app's own queries, as it sends them (no tenant anywhere), as the application role. */
async function oldAppWorks(pool: pg.Pool, projects: number): Promise<void> {
  expect((await pool.query('SELECT count(*)::int AS n FROM "Project"')).rows).toEqual([{ n: projects }])
  const joined = await pool.query(`SELECT p.name, count(t.id)::int AS tasks FROM "Project" p JOIN tasks t ON t.project_id = p.id WHERE p.id = 'p1' GROUP BY p.name`)
  expect(joined.rows).toEqual([{ name: 'Project 1', tasks: 10 }])
  const id = randomUUID()
  await pool.query(`INSERT INTO "Project" (id, slug, name) VALUES ($1, 'old-app', 'From the old app')`, [id])
  const task = (await pool.query<{ id: number }>(`INSERT INTO tasks (project_id, title) VALUES ($1, 'old task') RETURNING id`, [id])).rows[0]!.id
  await pool.query('UPDATE tasks SET done = true WHERE id = $1', [task])
  expect((await pool.query('SELECT done FROM tasks WHERE id = $1', [task])).rows).toEqual([{ done: true }])
  expect((await pool.query('DELETE FROM "Project" WHERE id = $1', [id])).rowCount).toBe(1)
  expect((await pool.query('SELECT 1 FROM tasks WHERE id = $1', [task])).rowCount).toBe(0)
  const member = (await pool.query<{ id: number }>(`INSERT INTO "Member" (email) VALUES ($1) RETURNING id`, [`old-${id}@example.com`])).rows[0]!.id
  expect((await pool.query('DELETE FROM "Member" WHERE id = $1', [member])).rowCount).toBe(1)
}

/** The new app's queries through the tenancy client, bound to the default tenant. */
async function newAppWorks(client: TenantClient, projects: number): Promise<void> {
  const tenant = client.forTenant(legacy)
  expect(await tenant.project.count()).toBe(projects)
  const first = await tenant.project.findFirst({ where: { id: 'p1' }, include: { tasks: true } })
  expect((first?.tasks as unknown[]).length).toBe(10)
  const created = await tenant.project.create({ data: { slug: 'new-app', name: 'From the new app', tasks: { create: [{ title: 'new task' }] } } })
  expect(created.tenantId).toBe(legacy)
  expect(await tenant.task.updateMany({ where: { projectId: created.id }, data: { done: true } })).toEqual({ count: 1 })
  expect(await tenant.project.deleteMany({ where: { id: created.id } })).toEqual({ count: 1 })
  const member = await tenant.member.create({ data: { email: `new-${randomUUID()}@example.com` } })
  expect(await tenant.member.deleteMany({ where: { id: member.id } })).toEqual({ count: 1 })
}

describe('adopt', () => {
  it('takes a seeded single-tenant database to full isolation step by step: no row lost, old and new clients work after every step, verify passes', async () => {
    const project = await createLegacyProject(db, 'full')
    const before = await tableChecksums(project.url)
    const oldApp = appPool(project)
    const newApp = tenancyClient(project)
    await oldAppWorks(oldApp, 40)
    await project.useTenantSchema()

    const now = new Date('2030-01-01T00:00:00Z')
    const result = await adopt({ cwd: project.dir, databaseUrl: project.url, defaultTenant: legacy, batchSize: 100, appRole: db.appRole.name, now })
    const scripts = await Promise.all(result.written.map(async (folder) => `-- ${folder}\n${await readFile(join(project.migrations, folder, 'migration.sql'), 'utf8')}`))
    await expect(scripts.join('\n')).toMatchFileSnapshot('__snapshots__/adopt-legacy.sql')

    const staged = await stageMigrations(project, result.written)
    const rls = result.written.findIndex((folder) => folder.endsWith('_adopt_rls'))
    // Relations join on the tenant column, so the new client reads correctly once every existing row has its tenant.
    const backfilled = result.written.findLastIndex((folder) => folder.includes('_adopt_backfill_'))
    expect(backfilled).toBeGreaterThan(0)
    expect(rls).toBeGreaterThan(backfilled)
    for (const [index, folder] of result.written.entries()) {
      expect(await staged.deployNext()).toEqual([folder])
      if (index >= backfilled) await newAppWorks(newApp, 40)
      // Until row-level security is on, the old client runs as before; from then on it has no tenant and sees nothing.
      if (index < rls) await oldAppWorks(oldApp, 40)
      else expect((await oldApp.query('SELECT count(*)::int AS n FROM "Project"')).rows).toEqual([{ n: 0 }])
    }

    expect(await tableChecksums(project.url)).toEqual(before)
    await withClient(project.url, async (client) => {
      for (const table of ['Project', 'tasks', 'Member']) {
        const { rows } = await client.query(`SELECT tenant_id, count(*)::int AS n FROM "${table}" GROUP BY tenant_id`)
        expect(rows).toEqual([{ tenant_id: legacy, n: before[table]!.rows }])
      }
      const leftovers = await client.query(`SELECT to_regprocedure('prisma_tenancy_backfill(regclass, text, text, integer)') AS procedure`)
      expect(leftovers.rows).toEqual([{ procedure: null }])
    })
    // A second tenant sees none of the legacy rows and keeps its own.
    const globex = newApp.forTenant('globex')
    expect(await globex.project.count()).toBe(0)
    await globex.project.create({ data: { slug: 'slug-1', name: 'Globex 1', tasks: { create: [{ title: 'Globex task' }] } } })
    expect(await globex.project.count()).toBe(1)
    expect(await newApp.forTenant(legacy).project.count()).toBe(40)

    const report = await verify({ cwd: project.dir, databaseUrl: project.url, role: db.appRole.name })
    expect(report.results.filter((check) => check.status === 'fail')).toEqual([])
    expect(report.ok).toBe(true)
    // The migrations now describe the schema exactly: nothing for migrate dev to write, nothing left to adopt.
    expect((await migrateDev({ cwd: project.dir, databaseUrl: project.url, name: 'drift' })).created).toBeNull()
    expect((await migrateStatus({ cwd: project.dir, databaseUrl: project.url })).upToDate).toBe(true)
    expect((await adopt({ cwd: project.dir, databaseUrl: project.url, defaultTenant: legacy })).written).toEqual([])
  })

  it('deploys every step before row-level security while the old app keeps reading and writing, and none of its queries fails', async () => {
    const project = await createLegacyProject(db, 'traffic')
    const before = await tableChecksums(project.url)
    const oldApp = appPool(project)
    await project.useTenantSchema()
    const result = await adopt({ cwd: project.dir, databaseUrl: project.url, defaultTenant: legacy, batchSize: 50 })
    const staged = await stageMigrations(project, result.written)
    const errors: unknown[] = []
    let rounds = 0
    let running = true
    const load = (async () => {
      while (running) {
        await oldAppWorks(oldApp, 40).catch((error: unknown) => errors.push(error))
        rounds++
      }
    })()
    try {
      for (const folder of result.written.slice(0, result.written.findIndex((name) => name.endsWith('_adopt_rls')))) expect(await staged.deployNext()).toEqual([folder])
    } finally {
      running = false
      await load
    }
    // The first errors, as text: a later round fails too once one has left its row behind.
    expect(errors.slice(0, 3).map(String)).toEqual([])
    expect(rounds).toBeGreaterThan(0)
    expect(await tableChecksums(project.url)).toEqual(before)
  })

  it('adopts a uuid tenant column: the default tenant must be a uuid, and the result passes verify with no drift', async () => {
    const project = await createLegacyProject(db, 'uuid')
    const before = await tableChecksums(project.url)
    await project.useTenantSchema()
    const uuidField = `tenantId String @db.Uuid @default(dbgenerated("(NULLIF(current_setting('app.current_tenant'::text, true), ''::text))::uuid")) @map("tenant_id")`
    await writeFile(project.schema, (await readFile(project.schema, 'utf8')).replace(/tenantId +String +@default\(dbgenerated\("current_setting\('app.current_tenant'::text, true\)"\)\) @map\("tenant_id"\)/g, uuidField))
    const refused = await adopt({ cwd: project.dir, databaseUrl: project.url, defaultTenant: legacy }).catch((caught: unknown) => caught)
    expect(isTenancyError(refused, 'TENANT_INVALID')).toBe(true)
    const tenant = randomUUID()
    await adopt({ cwd: project.dir, databaseUrl: project.url, defaultTenant: tenant, appRole: db.appRole.name })
    await migrateDeploy({ cwd: project.dir, databaseUrl: project.url })
    expect(await tableChecksums(project.url)).toEqual(before)
    await withClient(project.url, async (client) => {
      const { rows } = await client.query(`SELECT tenant_id::text AS tenant, count(*)::int AS n FROM tasks GROUP BY 1`)
      expect(rows).toEqual([{ tenant, n: 400 }])
    })
    expect((await verify({ cwd: project.dir, databaseUrl: project.url, role: db.appRole.name })).ok).toBe(true)
    expect((await migrateDev({ cwd: project.dir, databaseUrl: project.url, name: 'drift' })).created).toBeNull()
  })

  it('resumes a backfill that failed part-way: committed batches stay, the rerun fills the rest', async () => {
    // Enough rows to span pages, so that the backfill takes several batches.
    const project = await createLegacyProject(db, 'resume', { projects: 2_000, tasksPerProject: 1 })
    await project.useTenantSchema()
    const result = await adopt({ cwd: project.dir, databaseUrl: project.url, defaultTenant: legacy, batchSize: 100 })
    const staged = await stageMigrations(project, result.written)
    await staged.deployNext()
    const backfill = result.written.find((folder) => folder.endsWith('_adopt_backfill_Project'))!
    await withClient(project.url, async (client) => {
      // A row that cannot be written makes the backfill fail half-way, as a crash or a killed session would.
      await client.query(`CREATE FUNCTION refuse_p1500() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.id = 'p1500' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$`)
      await client.query(`CREATE TRIGGER refuse_p1500 BEFORE UPDATE ON "Project" FOR EACH ROW EXECUTE FUNCTION refuse_p1500()`)
    })
    await staged.deployNext() // Member
    const error = await staged.deployNext().catch((caught: unknown) => caught)
    expect(isTenancyError(error, 'MIGRATION_FAILED')).toBe(true)
    expect((error as Error).message).toContain(backfill)
    const filled = async () =>
      withClient(project.url, async (client) => (await client.query<{ filled: number; empty: number }>(`SELECT count(tenant_id)::int AS filled, count(*) FILTER (WHERE tenant_id IS NULL)::int AS empty FROM "Project"`)).rows[0]!)
    const partial = await filled()
    expect(partial.filled).toBeGreaterThan(0)
    expect(partial.empty).toBeGreaterThan(0)

    await withClient(project.url, (client) => client.query('DROP TRIGGER refuse_p1500 ON "Project"'))
    await markRolledBack({ cwd: project.dir, databaseUrl: project.url, migration: backfill })
    expect((await migrateDeploy({ cwd: project.dir, databaseUrl: project.url })).applied).toEqual([backfill])
    expect(await filled()).toEqual({ filled: 2_000, empty: 0 })
  })

  it('prints the plan table by table with row counts and locks, and --dry-run writes nothing', async () => {
    const project = await createLegacyProject(db, 'plan')
    await project.useTenantSchema()
    const foldersBefore = await readdir(project.migrations)
    const { code, stdout, stderr } = await runCliCaptured(['adopt', '--default-tenant', legacy, '--dry-run', '--json', '--schema', project.schema, '--migrations', project.migrations, '--database-url', project.url])
    expect(code).toBe(0)
    const plan = JSON.parse(stdout).plan as { tables: Array<{ table: string; rows: number }>; sharedTables: string[] }
    expect(plan.tables.map(({ table, rows }) => ({ table, rows }))).toEqual([
      { table: 'Member', rows: 20 },
      { table: 'Project', rows: 40 },
      { table: 'tasks', rows: 400 },
    ])
    expect(plan.sharedTables).toEqual(['Country'])
    expect(stderr).toContain('tasks (model Task): 400 rows')
    expect(stderr).toContain('build index tasks_tenant_id_project_id_idx concurrently (lock: SHARE UPDATE EXCLUSIVE while it builds: reads and writes go on)')
    expect(stderr).toContain('Country: shared, left alone')
    expect(stderr).toContain('Dry run: nothing written')
    expect(await readdir(project.migrations)).toEqual(foldersBefore)
  })

  describe('refuses bad input with a clear error and changes nothing', () => {
    async function expectNothingChanged(project: LegacyProject, run: () => Promise<unknown>, code: string, message: RegExp) {
      const folders = await readdir(project.migrations)
      const before = await tableChecksums(project.url)
      const error = await run().catch((caught: unknown) => caught)
      expect(isTenancyError(error) && error.code).toBe(code)
      expect((error as Error).message).toMatch(message)
      expect(await readdir(project.migrations)).toEqual(folders)
      expect(await tableChecksums(project.url)).toEqual(before)
      await withClient(project.url, async (client) => {
        expect((await client.query(`SELECT 1 FROM information_schema.columns WHERE column_name = 'tenant_id'`)).rowCount).toBe(0)
      })
    }

    it('a new unique key that the existing rows violate', async () => {
      const project = await createLegacyProject(db, 'dupes')
      await project.useTenantSchema()
      await withClient(project.url, (client) => client.query(`UPDATE "Project" SET slug = 'same' WHERE id IN ('p1', 'p2')`))
      const schema = (await readFile(project.schema, 'utf8')).replace('@@index([tenantId, slug])', '@@unique([tenantId, slug])')
      await writeFile(project.schema, schema)
      await expectNothingChanged(project, () => adopt({ cwd: project.dir, databaseUrl: project.url, defaultTenant: legacy }), 'ADOPT_DATA_CONFLICT', /2 rows share \(tenant_id, slug\) = \(same\)/)
    })

    it('an invalid default tenant id', async () => {
      const project = await createLegacyProject(db, 'badid')
      await project.useTenantSchema()
      await expectNothingChanged(project, () => adopt({ cwd: project.dir, databaseUrl: project.url, defaultTenant: "acme'; DROP TABLE tasks" }), 'TENANT_INVALID', /--default-tenant/)
      const cli = await runCliCaptured(['adopt', '--default-tenant', '', '--schema', project.schema, '--migrations', project.migrations, '--database-url', project.url])
      expect(cli.code).toBe(2)
      expect(cli.stderr).toContain('error TENANT_INVALID')
    })

    it('a table too large to backfill in one transaction without --batch-size', async () => {
      const project = await createLegacyProject(db, 'large', { projects: 1_001 })
      await project.useTenantSchema()
      await expectNothingChanged(project, () => adopt({ cwd: project.dir, databaseUrl: project.url, defaultTenant: legacy }), 'ADOPT_BATCH_SIZE_REQUIRED', /tasks \(10010 rows\).*--batch-size/)
      const planned = await adopt({ cwd: project.dir, databaseUrl: project.url, defaultTenant: legacy, batchSize: 2_000, dryRun: true })
      expect(planned.plan.steps.find((step) => step.name === 'adopt_backfill_tasks')?.lock).toContain('about 2000 rows at a time')
    })

    it('a schema that changes more than tenancy', async () => {
      const project = await createLegacyProject(db, 'extra')
      await project.useTenantSchema()
      const schema = (await readFile(project.schema, 'utf8')).replace('  name String\n}', '  name String\n  capital String?\n}')
      await writeFile(project.schema, schema)
      await expectNothingChanged(project, () => adopt({ cwd: project.dir, databaseUrl: project.url, defaultTenant: legacy }), 'ADOPT_UNSUPPORTED_CHANGE', /"capital".*shared table: adopt leaves it alone/s)
    })

    it('migrations not deployed yet', async () => {
      const project = await createLegacyProject(db, 'pending')
      await project.useTenantSchema()
      const { written } = await adopt({ cwd: project.dir, databaseUrl: project.url, defaultTenant: legacy })
      const error = await adopt({ cwd: project.dir, databaseUrl: project.url, defaultTenant: legacy }).catch((caught: unknown) => caught)
      expect(isTenancyError(error, 'ADOPT_NOT_READY')).toBe(true)
      expect((error as Error).message).toContain(written[0])
      expect(await readdir(project.migrations)).toHaveLength(1 + written.length + 1)
    })
  })
})

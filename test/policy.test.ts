import { mkdtemp, readFile, readdir, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCliCaptured } from './support/cli.js'
import { copyExampleProject } from './support/example-project.js'
import { appRoleUrl, createDatabase, dropDatabase, grantAppRole, withClient } from '../src/database/admin.js'
import { withDatabase } from '../src/database/connection-url.js'
import { isTenancyError } from '../src/errors.js'
import { checkPolicies, generatePolicies } from '../src/index.js'
import { migrateDeploy, migrateDev } from '../src/migrate/migrate.js'
import { classifyModels } from '../src/policy/classify-models.js'
import { renderPolicyMigration } from '../src/policy/policy-sql.js'
import { parseDatamodel, parseDatamodelInWorker } from '../src/policy/prisma-schema.js'
import { useTestDatabase } from '../src/testing/index.js'
import { inRolledBackTenant } from './support/tenants.js'

const db = await useTestDatabase()

type Tenant = string | null

/** Runs work as the application role in a transaction with the tenant set (null: never set), then rolls back. */
async function asTenant<T>(tenant: Tenant, work: (client: pg.Client) => Promise<T>): Promise<T> {
  return inRolledBackTenant(db.appUrl, tenant, work)
}

async function errorCode(promise: Promise<unknown>): Promise<string | undefined> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught as { code?: string },
  )
  return error?.code
}

/** Each tenant table of the example schema, with how to insert a row for a tenant (its parents exist for both tenants). */
const tenantTables = [
  { table: '"Project"', key: 'id', insert: `INSERT INTO "Project" (id, tenant_id, name) VALUES ('new-' || $1, $1, 'new')` },
  { table: '"tasks"', key: 'id', insert: `INSERT INTO "tasks" (id, tenant_id, project_id, title) VALUES ('new-' || $1, $1, 'project-' || $1, 'new')` },
  { table: '"Comment"', key: 'id', insert: `INSERT INTO "Comment" (id, tenant_id, task_id, body) VALUES ('new-' || $1, $1, 'task-' || $1, 'new')` },
  {
    table: '"project_members"',
    key: 'user_email',
    insert: `INSERT INTO "project_members" (tenant_id, project_id, user_email) VALUES ($1, 'project-' || $1, 'new-' || $1)`,
  },
] as const

beforeAll(async () => {
  // A superuser bypasses row-level security: fixtures for both tenants in one go.
  await withClient(db.adminUrl, async (client) => {
    for (const tenant of ['a', 'b']) {
      await client.query(`INSERT INTO "Tenant" (id, name) VALUES ($1, $1)`, [tenant])
      await client.query(`INSERT INTO "Project" (id, tenant_id, name) VALUES ('project-' || $1, $1, 'p')`, [tenant])
      await client.query(`INSERT INTO "tasks" (id, tenant_id, project_id, title) VALUES ('task-' || $1, $1, 'project-' || $1, 't')`, [tenant])
      await client.query(`INSERT INTO "Comment" (id, tenant_id, task_id, body) VALUES ('comment-' || $1, $1, 'task-' || $1, 'c')`, [tenant])
      await client.query(`INSERT INTO "project_members" (tenant_id, project_id, user_email) VALUES ($1, 'project-' || $1, $1 || '@example.com')`, [tenant])
    }
  })
})

describe.each(tenantTables)('the generated policies on $table, as the application role', ({ table, key, insert }) => {
  it("shows a tenant only its own rows", async () => {
    const rows = await asTenant('b', async (client) => (await client.query<{ tenant_id: string }>(`SELECT tenant_id FROM ${table}`)).rows)
    expect(rows).toEqual([{ tenant_id: 'b' }])
  })

  it("does not let a tenant update or delete another tenant's rows", async () => {
    const counts = await asTenant('b', async (client) => [
      (await client.query(`UPDATE ${table} SET ${key} = ${key} WHERE tenant_id = 'a'`)).rowCount,
      (await client.query(`DELETE FROM ${table} WHERE tenant_id = 'a'`)).rowCount,
    ])
    expect(counts).toEqual([0, 0])
    const stillThere = await withClient(db.adminUrl, async (client) => (await client.query(`SELECT 1 FROM ${table} WHERE tenant_id = 'a'`)).rowCount)
    expect(stillThere).toBe(1)
  })

  it("refuses an insert with another tenant's id", async () => {
    expect(await errorCode(asTenant('b', (client) => client.query(insert, ['a'])))).toBe('42501')
  })

  it('accepts an insert for the current tenant', async () => {
    const inserted = await asTenant('b', async (client) => (await client.query(insert, ['b'])).rowCount)
    expect(inserted).toBe(1)
  })

  it("refuses moving a row into another tenant", async () => {
    expect(await errorCode(asTenant('b', (client) => client.query(`UPDATE ${table} SET tenant_id = 'a'`)))).toBe('42501')
  })

  it('shows no rows when no tenant is set, and when the setting is empty', async () => {
    const unset = await asTenant(null, async (client) => (await client.query(`SELECT 1 FROM ${table}`)).rowCount)
    const empty = await asTenant('', async (client) => (await client.query(`SELECT 1 FROM ${table}`)).rowCount)
    expect([unset, empty]).toEqual([0, 0])
  })

  it('refuses inserts when no tenant is set', async () => {
    expect(await errorCode(asTenant(null, (client) => client.query(insert, ['a'])))).toBe('42501')
  })
})

describe('the generated policies, as the application role', () => {
  it('fills tenant_id from the current tenant when an insert leaves it out', async () => {
    const row = await asTenant('b', async (client) => {
      const result = await client.query<{ tenant_id: string }>(`INSERT INTO "Project" (id, name) VALUES ('defaulted', 'd') RETURNING tenant_id`)
      return result.rows[0]
    })
    expect(row).toEqual({ tenant_id: 'b' })
  })

  it('refuses an insert that leaves tenant_id out when no tenant is set', async () => {
    expect(await errorCode(asTenant(null, (client) => client.query(`INSERT INTO "Project" (id, name) VALUES ('orphan', 'o')`)))).toBe('42501')
  })

  it('refuses an insert that leaves tenant_id out after the setting was emptied', async () => {
    expect(await errorCode(asTenant('', (client) => client.query(`INSERT INTO "Project" (id, name) VALUES ('orphan', 'o')`)))).toBe('42501')
  })

  it('leaves shared tables without row-level security', async () => {
    const countries = await asTenant(null, async (client) => (await client.query(`SELECT count(*)::int AS n FROM "Country"`)).rows)
    expect(countries).toEqual([{ n: 0 }])
  })

  it('shows a tenant its own registry row only, and none without a tenant', async () => {
    expect(await asTenant('a', async (client) => (await client.query(`SELECT id FROM "Tenant" ORDER BY id`)).rows)).toEqual([{ id: 'a' }])
    expect(await asTenant(null, async (client) => (await client.query(`SELECT id FROM "Tenant"`)).rowCount)).toBe(0)
  })

  it('lets the application role insert, update or delete no registry row, its own included', async () => {
    expect(await errorCode(asTenant('c', (client) => client.query(`INSERT INTO "Tenant" (id, name) VALUES ('c', 'c')`)))).toBe('42501')
    expect(await asTenant('a', async (client) => (await client.query(`UPDATE "Tenant" SET name = 'x'`)).rowCount)).toBe(0)
    expect(await asTenant('a', async (client) => (await client.query(`DELETE FROM "Tenant"`)).rowCount)).toBe(0)
    const names = await withClient(db.adminUrl, async (client) => (await client.query(`SELECT id, name FROM "Tenant" ORDER BY id`)).rows)
    expect(names).toEqual([{ id: 'a', name: 'a' }, { id: 'b', name: 'b' }])
  })
})

const tenantDefault = `@default(dbgenerated("current_setting('app.current_tenant'::text, true)"))`
const defaults = { tenantField: 'tenantId', setting: 'app.current_tenant' }

function analyze(schema: string) {
  return classifyModels(parseDatamodel([{ path: 'schema.prisma', content: `datasource db {\n  provider = "postgresql"\n}\n${schema}` }]), defaults)
}

function render(schema: string, appRole: string | null = null): string {
  const analysis = analyze(schema)
  return renderPolicyMigration({
    setting: defaults.setting,
    appRole,
    tenantTables: analysis.tenantTables,
    sharedTables: appRole === null ? [] : analysis.sharedTables.filter((table) => table.model !== analysis.registry?.model),
    liftedTables: [],
    registry: analysis.registry,
  })
}

async function exampleSchema(): Promise<string> {
  return readFile('prisma/schema.prisma', 'utf8')
}

describe('the committed policy migration', () => {
  it('enables and forces row-level security, with one restrictive and one permissive policy, on every tenant table and no shared one', async () => {
    const tables = await withClient(db.adminUrl, async (client) => {
      const { rows } = await client.query<{ table: string; rls: boolean; forced: boolean; policies: string | null }>(`
        SELECT c.relname AS table, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
               string_agg(p.polname || ':' || CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END || ':' || p.polcmd::text, ',' ORDER BY p.polname) AS policies
        FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND c.relname <> '_prisma_migrations'
        GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity ORDER BY c.relname`)
      return rows
    })
    const policies = 'tenancy_access:permissive:*,tenancy_isolation:restrictive:*'
    expect(tables).toEqual([
      { table: 'Comment', rls: true, forced: true, policies },
      { table: 'Country', rls: false, forced: false, policies: null },
      { table: 'Project', rls: true, forced: true, policies },
      { table: 'Tenant', rls: true, forced: true, policies: 'tenancy_registry_read:permissive:r' },
      { table: 'project_members', rls: true, forced: true, policies },
      { table: 'tasks', rls: true, forced: true, policies },
    ])
  })

  it('is exactly what the generator renders for the example schema', async () => {
    const folders = (await readdir('prisma/migrations')).filter((name) => name.endsWith('_rls'))
    expect(folders).toHaveLength(1)
    const committed = await readFile(join('prisma/migrations', folders[0] ?? '', 'migration.sql'), 'utf8')
    const analysis = classifyModels(parseDatamodel([{ path: 'schema.prisma', content: await exampleSchema() }]), defaults)
    expect(committed).toBe(renderPolicyMigration({ ...defaults, appRole: null, tenantTables: analysis.tenantTables, sharedTables: [], liftedTables: [], registry: null }))
    const registryFolder = (await readdir('prisma/migrations')).find((name) => name.endsWith('_tenant_registry'))
    const registryScript = await readFile(join('prisma/migrations', registryFolder ?? '', 'migration.sql'), 'utf8')
    expect(registryScript).toBe(renderPolicyMigration({ ...defaults, appRole: null, tenantTables: [], sharedTables: [], liftedTables: [], registry: analysis.registry }))
  })

  it('narrows to the tenant through the tenant index: the setting is an index condition, read once per scan, not a per-row filter', async () => {
    const plan = await asTenant('a', async (client) => {
      // The test table is tiny, so a sequential scan would win; real tables are where the index plan matters.
      await client.query('SET LOCAL enable_seqscan = off')
      return (await client.query<{ 'QUERY PLAN': string }>('EXPLAIN SELECT * FROM "tasks"')).rows.map((row) => row['QUERY PLAN']).join('\n')
    })
    expect(plan).toMatch(/Index Cond: \(tenant_id = NULLIF\(current_setting\('app\.current_tenant'::text, true\), ''::text\)\)/)
    expect(plan).not.toMatch(/Filter: .*current_setting/)
  })

  it('leaves Prisma nothing to diff: migrate dev after the policy migration creates no migration', async () => {
    const project = await copyExampleProject()
    const url = withDatabase(db.adminUrl, `${db.name}_nodiff`)
    try {
      const result = await migrateDev({ cwd: project.dir, databaseUrl: url, name: 'nothing' })
      expect(result.created).toBeNull()
    } finally {
      await dropDatabase(db.adminUrl, `${db.name}_nodiff`)
    }
  })
})

describe('the generated SQL', () => {
  it('applies in one transaction: run as one script with a failing statement after it, nothing remains', async () => {
    const scripts = await Promise.all((await readdir('prisma/migrations')).filter((name) => /^\d/.test(name)).sort().map((name) => readFile(join('prisma/migrations', name, 'migration.sql'), 'utf8')))
    const name = `${db.name}_txn`
    await withClient(db.adminUrl, (client) => client.query(`CREATE DATABASE "${name}"`))
    try {
      const url = withDatabase(db.adminUrl, name)
      // One simple-protocol query holding several statements runs as one implicit transaction, as prisma migrate deploy runs a migration.
      const failure = await withClient(url, (client) => client.query(`${scripts.join('\n')}\nSELECT 1 / 0;`)).then(() => null, (error: { code?: string }) => error.code)
      expect(failure).toBe('22012')
      const left = await withClient(url, async (client) => (await client.query(`SELECT count(*)::int AS n FROM pg_class WHERE relname IN ('Project', 'tasks')`)).rows[0])
      expect(left).toEqual({ n: 0 })
      await withClient(url, (client) => client.query(scripts.join('\n')))
      const policies = await withClient(url, async (client) => (await client.query(`SELECT count(*)::int AS n FROM pg_policy`)).rows[0])
      expect(policies).toEqual({ n: 9 })
    } finally {
      await dropDatabase(db.adminUrl, name)
    }
  })

  it('can run twice: every statement is idempotent', async () => {
    const folders = (await readdir('prisma/migrations')).filter((entry) => entry.endsWith('_rls') || entry.endsWith('_tenant_registry'))
    const scripts = await Promise.all(folders.map((folder) => readFile(join('prisma/migrations', folder, 'migration.sql'), 'utf8')))
    await withClient(db.adminUrl, async (client) => {
      await client.query('BEGIN')
      try {
        await client.query(scripts.join('\n'))
        const { rows } = await client.query(`SELECT count(*)::int AS n FROM pg_policy`)
        expect(rows[0]).toEqual({ n: 9 })
      } finally {
        await client.query('ROLLBACK')
      }
    })
  })

  it('has a semicolon only at the end of each statement (the driver adapter splits scripts at every semicolon)', () => {
    const script = render(`model Note {\n  id String @id\n  tenantId String ${tenantDefault}\n  @@index([tenantId])\n}`, 'app')
    for (const line of script.split('\n')) {
      if (line.startsWith('--')) expect(line).not.toContain(';')
      else expect(line.slice(0, -1)).not.toContain(';')
    }
  })

  it('refuses a mapped name with a line break, which would end a comment and start SQL of its own', () => {
    expect(() => render(`model Note {\n  id String @id\n  tenantId String ${tenantDefault}\n  @@index([tenantId])\n  @@map("notes\\nDROP TABLE x")\n}`, null)).toThrow(/line break/)
  })

  it('with an app role, grants reads and writes on tenant tables and reads on shared ones (file snapshot)', async () => {
    await expect(render((await exampleSchema()).replace(/^datasource db \{[^}]*\}/m, ''), 'tenancy_app')).toMatchFileSnapshot('./__snapshots__/policy-example-app-role.sql')
  })

  it('with --signed and an app role, revokes TEMPORARY, creates the key table and the verifying function, and compares with it (file snapshot)', async () => {
    const analysis = analyze((await exampleSchema()).replace(/^datasource db \{[^}]*\}/m, ''))
    const script = renderPolicyMigration({
      setting: defaults.setting,
      appRole: 'tenancy_app',
      tenantTables: analysis.tenantTables,
      sharedTables: analysis.sharedTables.filter((table) => table.model !== analysis.registry?.model),
      liftedTables: [],
      registry: analysis.registry,
      revokeTemporary: true,
      signed: true,
      createSignedContext: true,
    })
    await expect(script).toMatchFileSnapshot('./__snapshots__/policy-example-signed.sql')
  })

  it('compares a uuid tenant column through NULLIF, so an empty setting denies instead of failing the cast', () => {
    const script = render(`model Doc {\n  id String @id\n  tenantId String @db.Uuid @default(dbgenerated("(NULLIF(current_setting('app.current_tenant'::text, true), ''::text))::uuid")) @map("tenant_id")\n  @@index([tenantId])\n}`)
    expect(script.split('\n').filter((line) => /^\s+(USING|WITH CHECK)/.test(line))).toMatchInlineSnapshot(`
      [
        "  USING ("tenant_id" = (NULLIF(current_setting('app.current_tenant', true), ''))::uuid)",
        "  WITH CHECK ("tenant_id" = (NULLIF(current_setting('app.current_tenant', true), ''))::uuid);",
        "  USING ("tenant_id" = (NULLIF(current_setting('app.current_tenant', true), ''))::uuid)",
        "  WITH CHECK ("tenant_id" = (NULLIF(current_setting('app.current_tenant', true), ''))::uuid);",
      ]
    `)
  })
})

/** Runs SQL as the superuser in a transaction that is rolled back; `asApp` switches to the application role inside it. */
async function inRolledBackTransaction<T>(work: (client: pg.Client, asApp: (tenant: string) => Promise<void>) => Promise<T>): Promise<T> {
  return withClient(db.adminUrl, async (client) => {
    await client.query('BEGIN')
    try {
      return await work(client, async (tenant) => {
        await client.query(`SET LOCAL ROLE ${db.appRole.name}`)
        await client.query("SELECT set_config('app.current_tenant', $1, true)", [tenant])
      })
    } finally {
      await client.query('ROLLBACK')
    }
  })
}

describe('the generated SQL on real PostgreSQL', () => {
  it('isolates a uuid tenant column and denies an empty setting without a cast error', async () => {
    const script = render(`model Doc {\n  id String @id\n  tenantId String @db.Uuid @map("tenant_id")\n  @@index([tenantId])\n}`, db.appRole.name)
    const tenant = '0b7e1a52-8a44-4f4e-9f39-2f6f1b7f3a10'
    const counts = await inRolledBackTransaction(async (client, asApp) => {
      await client.query(`CREATE TABLE "Doc" (id text PRIMARY KEY, tenant_id uuid NOT NULL)`)
      await client.query(script)
      await client.query(`INSERT INTO "Doc" VALUES ('mine', $1), ('other', gen_random_uuid())`, [tenant])
      await asApp('')
      const empty = (await client.query('SELECT id FROM "Doc"')).rowCount
      await client.query("SELECT set_config('app.current_tenant', $1, true)", [tenant])
      const own = (await client.query('SELECT id FROM "Doc"')).rows
      return { empty, own }
    })
    expect(counts).toEqual({ empty: 0, own: [{ id: 'mine' }] })
  })

  it('grants the app role DML and sequence USAGE on tenant tables, never TRUNCATE, REFERENCES or TRIGGER, and only SELECT on shared ones', async () => {
    const script = render(`model Counter {\n  id Int @id @default(autoincrement())\n  tenantId String ${tenantDefault} @map("tenant_id")\n  @@index([tenantId])\n}\nmodel Unit {\n  code String @id\n}`, 'policy_grantee')
    const privileges = await inRolledBackTransaction(async (client) => {
      await client.query('CREATE ROLE policy_grantee NOLOGIN')
      await client.query(`CREATE TABLE "Counter" (id SERIAL PRIMARY KEY, tenant_id text NOT NULL)`)
      await client.query(`CREATE TABLE "Unit" (code text PRIMARY KEY)`)
      await client.query(`GRANT ALL ON "Counter" TO policy_grantee`)
      await client.query(script)
      const { rows } = await client.query<{ table: string; privilege: string }>(`
        SELECT t.name AS table, p.privilege FROM (VALUES ('"Counter"'), ('"Unit"')) AS t(name),
          unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']) AS p(privilege)
        WHERE has_table_privilege('policy_grantee', t.name, p.privilege) ORDER BY 1, 2`)
      const sequence = (await client.query(`SELECT has_sequence_privilege('policy_grantee', '"Counter_id_seq"', 'USAGE') AS usage`)).rows[0]
      return { rows, sequence }
    })
    expect(privileges).toEqual({
      rows: [
        { table: '"Counter"', privilege: 'DELETE' },
        { table: '"Counter"', privilege: 'INSERT' },
        { table: '"Counter"', privilege: 'SELECT' },
        { table: '"Counter"', privilege: 'UPDATE' },
        { table: '"Unit"', privilege: 'SELECT' },
      ],
      sequence: { usage: true },
    })
  })
})

describe('classification and schema findings', () => {
  it('classifies models with the tenant field as tenant tables, others as shared, and honours /// @tenancy.shared', () => {
    const { models } = analyze(`model Plan {\n  id String @id\n}\n/// Global templates. @tenancy.shared\nmodel Template {\n  id String @id\n  tenantId String\n}\nmodel Invoice {\n  id String @id\n  tenantId String ${tenantDefault} @map("tenant_id")\n  @@index([tenantId])\n  @@map("invoices")\n}`)
    expect(models.map(({ model, table, class: kind, reason }) => ({ model, table, kind, reason }))).toEqual([
      { model: 'Plan', table: 'Plan', kind: 'shared', reason: 'no tenantId field' },
      { model: 'Template', table: 'Template', kind: 'shared', reason: 'marked @tenancy.shared' },
      { model: 'Invoice', table: 'invoices', kind: 'tenant', reason: 'has tenantId (column tenant_id, text)' },
    ])
  })

  it('finds nothing to report in the example schema', async () => {
    const analysis = classifyModels(parseDatamodel([{ path: 'schema.prisma', content: await exampleSchema() }]), defaults)
    expect(analysis.findings).toEqual([])
  })

  it('parses in a worker thread to the same datamodel, and refuses an invalid schema with the same SCHEMA_INVALID message', async () => {
    const files = [{ path: 'schema.prisma', content: await exampleSchema() }]
    expect(await parseDatamodelInWorker(files)).toEqual(parseDatamodel(files))
    const invalid = [{ path: 'schema.prisma', content: 'model Note {\n  id String @id\n  body Strin\n}\n' }]
    const inProcess = (() => {
      try {
        return parseDatamodel(invalid)
      } catch (error) {
        return error
      }
    })()
    const inWorker = await parseDatamodelInWorker(invalid).catch((error: unknown) => error)
    expect(isTenancyError(inWorker, 'SCHEMA_INVALID')).toBe(true)
    expect((inWorker as Error).message).toBe((inProcess as Error).message)
    expect((inWorker as Error).message).toContain('Strin')
  })

  it('reports a tenant model without the tenant default, with the exact field line to write', () => {
    const { findings } = analyze(`model Note {\n  id String @id\n  tenantId String @map("tenant_id")\n  @@index([tenantId])\n}`)
    expect(findings.map((finding) => [finding.code, finding.fix])).toEqual([
      ['TENANT_DEFAULT_MISSING', `In model Note, write the field as: tenantId String ${tenantDefault} @map("tenant_id")`],
    ])
  })

  it('suggests a uuid tenant default in the form PostgreSQL prints back, so migrate dev sees no drift after creating it', async () => {
    const model = (field: string) => `model Doc {\n  id String @id\n  ${field}\n  @@index([tenantId])\n}\n`
    const { findings } = analyze(model('tenantId String @db.Uuid @map("tenant_id")'))
    const line = findings[0]?.fix.replace('In model Doc, write the field as: ', '') ?? ''
    expect(line).toBe(`tenantId String @db.Uuid @default(dbgenerated("(NULLIF(current_setting('app.current_tenant'::text, true), ''::text))::uuid")) @map("tenant_id")`)
    const dir = await mkdtemp(join(tmpdir(), 'prisma-tenancy-uuid-'))
    await mkdir(join(dir, 'prisma'))
    await writeFile(join(dir, 'prisma', 'schema.prisma'), `datasource db {\n  provider = "postgresql"\n}\n${model(line)}`)
    const url = withDatabase(db.adminUrl, `${db.name}_uuid`)
    try {
      expect((await migrateDev({ cwd: dir, databaseUrl: url, name: 'init' })).created).not.toBeNull()
      expect((await migrateDev({ cwd: dir, databaseUrl: url, name: 'again' })).created).toBeNull()
    } finally {
      await dropDatabase(db.adminUrl, `${db.name}_uuid`)
    }
  })

  it('reports a tenant model without an index that leads with the tenant column', () => {
    const { findings } = analyze(`model Note {\n  id String @id\n  tenantId String ${tenantDefault}\n  @@index([id, tenantId])\n}`)
    expect(findings.map((finding) => [finding.code, finding.fix])).toEqual([
      ['TENANT_INDEX_MISSING', 'In model Note, add: @@index([tenantId])  (or lead an existing @@id/@@unique/@@index with tenantId)'],
    ])
  })

  it('reports a relation into a tenant table whose foreign key leaves the tenant column out', () => {
    const { findings } = analyze(`model Folder {\n  id String @id\n  tenantId String ${tenantDefault}\n  files File[]\n  @@unique([tenantId, id])\n}\nmodel File {\n  id String @id\n  tenantId String ${tenantDefault}\n  folderId String\n  folder Folder @relation(fields: [folderId], references: [id])\n  @@index([tenantId])\n}`)
    expect(findings.map((finding) => [finding.code, finding.model, finding.fix])).toEqual([
      ['FOREIGN_KEY_WITHOUT_TENANT', 'File', 'Write the relation as @relation(fields: [tenantId, folderId], references: [tenantId, id]) and give Folder @@unique([tenantId, id]).'],
    ])
  })

  it('refuses a schema where no model has the tenant field, with NO_TENANT_COLUMN', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'prisma-tenancy-shared-only-'))
    await mkdir(join(dir, 'prisma'))
    await writeFile(join(dir, 'prisma', 'schema.prisma'), `datasource db {\n  provider = "postgresql"\n}\nmodel Plan {\n  id String @id\n}\n`)
    const error = await checkPolicies({ cwd: dir }).catch((caught: unknown) => caught)
    expect(isTenancyError(error, 'NO_TENANT_COLUMN')).toBe(true)
    expect((error as Error).message).toContain('--tenant-field')
  })
})

describe('a tenant model whose table no migration creates yet', () => {
  it('makes generate write nothing for it and exit 1, so a script stops before deploying', async () => {
    const project = await copyExampleProject()
    await writeFile(project.schema, `${await exampleSchema()}\nmodel Note {\n  id       String @id @default(uuid())\n  tenantId String ${tenantDefault} @map("tenant_id")\n\n  @@unique([tenantId, id])\n}\n`)
    const result = await runCliCaptured(['generate', '--schema', project.schema, '--migrations', project.migrations])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('Not written: Note')
  })
})

describe('adding a tenant model later', () => {
  const attachment = `\nmodel Attachment {\n  id       String @id @default(uuid())\n  tenantId String ${tenantDefault} @map("tenant_id")\n  name     String\n\n  @@unique([tenantId, id])\n  @@map("attachments")\n}\n`
  const databaseName = `${db.name}_later`
  const url = withDatabase(db.adminUrl, databaseName)
  let project: Awaited<ReturnType<typeof copyExampleProject>>
  const cli = (...extra: string[]) => runCliCaptured(['generate', '--schema', project.schema, '--migrations', project.migrations, ...extra])

  beforeAll(async () => {
    project = await copyExampleProject()
    await writeFile(project.schema, `${await exampleSchema()}${attachment}`)
    await migrateDev({ cwd: project.dir, databaseUrl: url, name: 'attachments' })
  })
  afterAll(() => dropDatabase(db.adminUrl, databaseName))

  it('makes generate --check exit 1, naming the table without a policy migration', async () => {
    const result = await cli('--check')
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('attachments (model Attachment): no policy migration')
    expect(result.stderr).not.toContain('tasks (model Task)')
  })

  it('makes generate write a migration for the new table only', async () => {
    const result = await generatePolicies({ cwd: project.dir, now: new Date('2030-01-01T00:00:00Z') })
    expect(result.created).toBe('20300101000000_rls')
    const script = await readFile(join(project.migrations, '20300101000000_rls', 'migration.sql'), 'utf8')
    expect(script.split('\n').filter((line) => line.startsWith('-- prisma-tenancy:table'))).toEqual([
      '-- prisma-tenancy:table {"kind":"tenant","schema":null,"table":"attachments","column":"tenant_id","type":"text","setting":"app.current_tenant","grants":[]}',
    ])
    expect(script).not.toContain('"tasks"')
  })

  it('lets generate --check pass afterwards', async () => {
    const result = await cli('--check')
    expect(result.code).toBe(0)
    expect(result.stderr).toContain('Policies are up to date.')
  })

  it('writes nothing when generate runs again, and says so', async () => {
    const result = await cli('--json')
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ created: null, upToDate: true })
    expect(result.stderr).toContain('nothing written')
  })

  it('isolates the new table once the migration is deployed', async () => {
    await migrateDeploy({ cwd: project.dir, databaseUrl: url })
    await grantAppRole(url, db.appRole.name)
    await withClient(url, (client) => client.query(`INSERT INTO "Tenant" (id, name) VALUES ('a', 'a'), ('b', 'b'); INSERT INTO attachments (id, tenant_id, name) VALUES ('x', 'a', 'x')`))
    const appUrl = new URL(db.appUrl)
    appUrl.pathname = `/${databaseName}`
    const seen = await withClient(appUrl.toString(), async (client) => {
      await client.query('BEGIN')
      await client.query("SELECT set_config('app.current_tenant', 'b', true)")
      return (await client.query('SELECT id FROM attachments')).rowCount
    })
    expect(seen).toBe(0)
  })
})

describe('a tenant field that goes away', () => {
  const note = (field: string, doc = '') => `datasource db {\n  provider = "postgresql"\n}\n${doc}model Note {\n  id String @id\n${field}}\n`
  const withField = `  tenantId String ${tenantDefault} @map("tenant_id")\n  @@index([tenantId])\n`

  async function noteProject(): Promise<{ dir: string; schema: string }> {
    const dir = await mkdtemp(join(tmpdir(), 'prisma-tenancy-note-'))
    await mkdir(join(dir, 'prisma', 'migrations', '20200101000000_init'), { recursive: true })
    await writeFile(join(dir, 'prisma', 'migrations', '20200101000000_init', 'migration.sql'), 'CREATE TABLE "Note" ("id" TEXT NOT NULL, "tenant_id" TEXT NOT NULL, CONSTRAINT "Note_pkey" PRIMARY KEY ("id"));\n')
    const schema = join(dir, 'prisma', 'schema.prisma')
    await writeFile(schema, note(withField))
    await generatePolicies({ cwd: dir, now: new Date('2020-01-02T00:00:00Z') })
    return { dir, schema }
  }

  it('is reported, and fails the check, when the model loses the field', async () => {
    const { dir, schema } = await noteProject()
    await writeFile(schema, note(''))
    const result = await checkPolicies({ cwd: dir })
    expect(result.upToDate).toBe(false)
    expect(result.findings.map((finding) => finding.code)).toEqual(['TENANT_FIELD_REMOVED'])
  })

  it('is reported when the tenant column is renamed', async () => {
    const { dir, schema } = await noteProject()
    await writeFile(schema, note(withField.replace('@map("tenant_id")', '@map("org_id")')))
    const result = await checkPolicies({ cwd: dir })
    expect(result.findings.map((finding) => finding.code)).toEqual(['TENANT_COLUMN_CHANGED'])
    expect(result.pending).toMatchObject([{ table: 'Note', reason: 'changed', detail: 'column tenant_id → org_id' }])
  })

  it('generates the removal of the policies once the model is marked /// @tenancy.shared', async () => {
    const { dir, schema } = await noteProject()
    await writeFile(schema, note(withField, '/// @tenancy.shared\n'))
    const result = await generatePolicies({ cwd: dir, now: new Date('2020-01-03T00:00:00Z') })
    const script = await readFile(join(dir, 'prisma', 'migrations', result.created ?? '', 'migration.sql'), 'utf8')
    expect(script).toContain('ALTER TABLE "Note" DISABLE ROW LEVEL SECURITY;')
    expect((await checkPolicies({ cwd: dir })).upToDate).toBe(true)
    const rls = await inRolledBackTransaction(async (client) => {
      for (const folder of (await readdir(join(dir, 'prisma', 'migrations'))).filter((name) => /^\d/.test(name)).sort()) {
        await client.query(await readFile(join(dir, 'prisma', 'migrations', folder, 'migration.sql'), 'utf8'))
      }
      return (await client.query(`SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = '"Note"'::regclass`)).rows[0]
    })
    expect(rls).toEqual({ relrowsecurity: false, relforcerowsecurity: false })
  })
})

describe('generate --app-role and temporary tables', () => {
  it('revokes TEMPORARY from PUBLIC and the app role in the database the migration runs in, also when a runner splits it at semicolons', async () => {
    const project = await copyExampleProject()
    const generated = await generatePolicies({ cwd: project.dir, appRole: db.appRole.name, now: new Date('2030-01-01T00:00:00Z') })
    const script = await readFile(join(project.migrations, generated.created ?? '', 'migration.sql'), 'utf8')
    const name = `${db.name}_temp`
    const url = await createDatabase(db.adminUrl, name)
    try {
      // The earlier migrations as one script each, the new one piece by piece, as @prisma/adapter-pg's executeScript runs it.
      const folders = (await readdir(project.migrations)).filter((folder) => /^\d/.test(folder) && folder !== generated.created).sort()
      await withClient(url, async (client) => {
        for (const folder of folders) await client.query(await readFile(join(project.migrations, folder, 'migration.sql'), 'utf8'))
        for (const statement of script.split(';').map((piece) => piece.trim()).filter((piece) => piece.length > 0)) await client.query(statement)
      })
      const privileges = await withClient(url, async (client) => (await client.query(`SELECT has_database_privilege($1, current_database(), 'TEMPORARY') AS app, has_database_privilege('public', current_database(), 'TEMPORARY') AS public`, [db.appRole.name])).rows[0])
      expect(privileges).toEqual({ app: false, public: false })
      const refused = await withClient(appRoleUrl(url, db.appRole), (client) => client.query('CREATE TEMP TABLE carried_over (note text)')).then(() => null, (error: { code?: string }) => error.code)
      expect(refused).toBe('42501')
      expect((await checkPolicies({ cwd: project.dir, appRole: db.appRole.name })).upToDate).toBe(true)
    } finally {
      await dropDatabase(db.adminUrl, name)
    }
  })
})

describe('generate --signed', () => {
  it('rewrites every tenant table and the registry once; afterwards --check passes with --signed and reports the switch back without it', async () => {
    const project = await copyExampleProject()
    const options = ['--schema', project.schema, '--migrations', project.migrations]
    const first = await runCliCaptured(['generate', ...options, '--signed', '--json'])
    expect(first.code).toBe(0)
    const script = await readFile(join(project.migrations, (JSON.parse(first.stdout) as { created: string }).created, 'migration.sql'), 'utf8')
    expect(script.match(/^CREATE POLICY .* ON "?\w+"?/gm)).toHaveLength(9)
    expect(script).toContain('CREATE OR REPLACE FUNCTION prisma_tenancy.current_tenant() RETURNS text')
    // The registry's read policy trusts the signed tenant only, like the tenant tables'.
    expect(script).toContain(`CREATE POLICY tenancy_registry_read ON "Tenant" AS PERMISSIVE FOR SELECT TO PUBLIC\n  USING ("id" = (SELECT prisma_tenancy.current_tenant()));`)
    // No key in the migration (signing-key set stores it), and no grants without --app-role.
    expect(script).not.toMatch(/^(INSERT|GRANT)/m)
    expect((await runCliCaptured(['generate', '--check', ...options, '--signed'])).code).toBe(0)
    const unsigned = await checkPolicies({ schema: project.schema, migrations: project.migrations })
    expect(unsigned.upToDate).toBe(false)
    expect(unsigned.pending.map((table) => table.detail)).toEqual(['unsigned tenant setting', 'unsigned tenant setting', 'unsigned tenant setting', 'unsigned tenant setting', 'unsigned tenant setting'])
  })
})

describe('prisma-tenancy generate', () => {
  it('prints the classification of every model', async () => {
    const project = await copyExampleProject()
    const result = await runCliCaptured(['generate', '--check', '--schema', project.schema, '--migrations', project.migrations])
    expect(result.code).toBe(0)
    expect(result.stderr).toContain('shared Tenant: tenant registry (id column id)')
    expect(result.stderr).toContain('tenant ProjectMember (table project_members): has tenantId (column tenant_id, text)')
  })

  it('exits 2 with CONFIG_INVALID for a setting name PostgreSQL would not accept as a custom setting', async () => {
    const project = await copyExampleProject()
    const result = await runCliCaptured(['generate', '--schema', project.schema, '--migrations', project.migrations, '--setting', 'current_tenant'])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('error CONFIG_INVALID')
  })

  it('writes no policies for a tenant model that no migration creates yet, and says to run migrate dev first', async () => {
    const project = await copyExampleProject()
    await writeFile(project.schema, `${await exampleSchema()}\nmodel Label {\n  id String @id\n  tenantId String ${tenantDefault} @map("tenant_id")\n  @@unique([tenantId, id])\n}\n`)
    const result = await generatePolicies({ cwd: project.dir })
    expect(result.created).toBeNull()
    expect(result.upToDate).toBe(false)
    expect(result.findings).toMatchObject([{ code: 'TABLE_NOT_MIGRATED', table: 'Label' }])
    expect(result.findings[0]?.fix).toContain('migrate dev')
  })

  it('with --app-role on a project whose policies exist, writes the grants for every table, after which the check passes with or without the role', async () => {
    const project = await copyExampleProject()
    const options = ['--schema', project.schema, '--migrations', project.migrations]
    const generated = await runCliCaptured(['generate', ...options, '--app-role', 'tenancy_app', '--json'])
    const created = JSON.parse(generated.stdout) as { created: string }
    const script = await readFile(join(project.migrations, created.created, 'migration.sql'), 'utf8')
    expect(script.match(/^GRANT .*$/gm)).toEqual([
      'GRANT SELECT, INSERT, UPDATE, DELETE ON "Comment" TO "tenancy_app";',
      'GRANT SELECT, INSERT, UPDATE, DELETE ON "Project" TO "tenancy_app";',
      'GRANT SELECT, INSERT, UPDATE, DELETE ON "project_members" TO "tenancy_app";',
      'GRANT SELECT, INSERT, UPDATE, DELETE ON "tasks" TO "tenancy_app";',
      'GRANT SELECT ON "Country" TO "tenancy_app";',
      'GRANT SELECT ON "Tenant" TO "tenancy_app";',
    ])
    expect(script).toContain('REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON "Tenant" FROM "tenancy_app";')
    expect((await runCliCaptured(['generate', '--check', ...options, '--app-role', 'tenancy_app'])).code).toBe(0)
    expect((await runCliCaptured(['generate', '--check', ...options])).code).toBe(0)
    expect((await runCliCaptured(['generate', '--check', ...options, '--app-role', 'reporting'])).code).toBe(1)
  })

  it('refuses a tenant table without a leading tenant index: an error that writes nothing, names the line to add, and fails --check', async () => {
    const project = await copyExampleProject()
    await writeFile(project.schema, `${await exampleSchema()}\nmodel Tag {\n  id String @id\n  tenantId String ${tenantDefault} @map("tenant_id")\n}\n`)
    await mkdir(join(project.migrations, '20290101000000_tags'))
    await writeFile(join(project.migrations, '20290101000000_tags', 'migration.sql'), 'CREATE TABLE "Tag" ("id" TEXT NOT NULL, "tenant_id" TEXT NOT NULL, CONSTRAINT "Tag_pkey" PRIMARY KEY ("id"));\n')
    const options = ['--schema', project.schema, '--migrations', project.migrations]
    const before = await readdir(project.migrations)
    const generated = await runCliCaptured(['generate', ...options, '--json'])
    expect(generated.code).toBe(1)
    expect(JSON.parse(generated.stdout)).toMatchObject({ created: null, upToDate: false })
    expect(generated.stderr).toContain('error TENANT_INDEX_MISSING Tag')
    expect(generated.stderr).toContain('@@index([tenantId])')
    expect(await readdir(project.migrations)).toEqual(before)
    const check = await runCliCaptured(['generate', '--check', ...options])
    expect(check.code).toBe(1)
    expect(check.stderr).toContain('error TENANT_INDEX_MISSING Tag')
  })

  it('with --check --strict, also exits 1 on warnings such as a tenant column without its default', async () => {
    const project = await copyExampleProject()
    await writeFile(project.schema, `${await exampleSchema()}\nmodel Tag {\n  id String @id\n  tenantId String @map("tenant_id")\n  @@unique([tenantId, id])\n}\n`)
    await mkdir(join(project.migrations, '20290101000000_tags'))
    await writeFile(join(project.migrations, '20290101000000_tags', 'migration.sql'), 'CREATE TABLE "Tag" ("id" TEXT NOT NULL, "tenant_id" TEXT NOT NULL, CONSTRAINT "Tag_pkey" PRIMARY KEY ("id"));\nCREATE UNIQUE INDEX "Tag_tenant_id_id_key" ON "Tag"("tenant_id", "id");\n')
    const options = ['--schema', project.schema, '--migrations', project.migrations]
    expect((await runCliCaptured(['generate', ...options])).code).toBe(0)
    const lenient = await runCliCaptured(['generate', '--check', ...options])
    expect(lenient.code).toBe(0)
    expect(lenient.stderr).toContain('warning TENANT_DEFAULT_MISSING Tag')
    expect((await runCliCaptured(['generate', '--check', '--strict', ...options])).code).toBe(1)
  })
})

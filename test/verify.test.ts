import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, inject, it, onTestFinished } from 'vitest'
import { runCli } from '../src/cli/program.js'
import { grantAppRole, withClient } from '../src/database/admin.js'
import { isTenancyError } from '../src/errors.js'
import { createTestDatabase, useTestDatabase, type TestDatabase } from '../src/testing/index.js'
import type { CheckId, VerifyReport } from '../src/verify/report.js'
import { isTenantScoped } from '../src/verify/tenant-expression.js'
import { verify } from '../src/verify/verify.js'

const db = await useTestDatabase()
const server = inject('prismaTenancy')
const isolation = (table: string) => `"tenant_id" = NULLIF(current_setting('app.current_tenant', true), '')`.replace('"tenant_id"', `${table}."tenant_id"`)

/** A database of its own for one test, cloned from the correctly migrated template, broken as superuser by `sql`. */
async function brokenDatabase(sql: string | ((role: string) => string), options: { throwawayRole?: boolean } = {}): Promise<{ database: TestDatabase; role: string }> {
  const database = await createTestDatabase(server)
  let role = database.appRole.name
  if (options.throwawayRole === true) {
    // Roles are cluster-wide: role-level breakage gets a role of its own, never tenancy_app.
    role = `verify_app_${randomBytes(4).toString('hex')}`
    await withClient(database.adminUrl, (client) => client.query(`CREATE ROLE ${role} LOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT`))
    await grantAppRole(database.adminUrl, role)
  }
  // Hooks registered inside a test must be per-test: afterAll here would never run. Database first, then its roles.
  onTestFinished(async () => {
    await database.drop()
    if (options.throwawayRole === true) await withClient(server.adminUrl, (client) => client.query(`DROP ROLE IF EXISTS ${role}; DROP ROLE IF EXISTS ${role}_admin`))
  })
  await withClient(database.adminUrl, (client) => client.query(typeof sql === 'string' ? sql : sql(role)))
  return { database, role }
}

async function verifyBroken(sql: string | ((role: string) => string), options: { throwawayRole?: boolean } = {}): Promise<VerifyReport> {
  const { database, role } = await brokenDatabase(sql, options)
  return verify({ databaseUrl: database.adminUrl, role })
}

function failures(report: VerifyReport, check: CheckId): (string | null)[] {
  return report.results.filter((result) => result.check === check && result.status === 'fail').map((result) => result.table)
}

describe('verify on the correctly generated policies', () => {
  it('passes every check and probes every tenant table', async () => {
    const report = await verify({ databaseUrl: db.adminUrl, role: db.appRole.name })
    expect(report.results.filter((result) => result.status !== 'pass')).toEqual([])
    expect(report.ok).toBe(true)
    expect(report.tenantTables.sort()).toEqual(['public.Comment', 'public.Project', 'public.project_members', 'public.tasks'])
    expect(report.probedTables.sort()).toEqual(report.tenantTables.sort())
    const probeChecks = new Set(report.results.filter((result) => result.check.startsWith('probe-')).map((result) => result.check))
    expect([...probeChecks].sort()).toEqual(['probe-delete', 'probe-insert', 'probe-move', 'probe-no-tenant', 'probe-read', 'probe-update'])
  })

  it('passes when connected as the application role itself, which cannot write the tenant registry: an existing tenant is tenant A', async () => {
    const { database } = await brokenDatabase(`INSERT INTO "Tenant" (id, name) VALUES ('acme', 'Acme')`)
    const report = await verify({ databaseUrl: database.appUrl })
    expect(report.role).toBe(database.appRole.name)
    expect(report.results.filter((result) => result.status === 'fail')).toEqual([])
    expect(report.probedTables).toHaveLength(4)
  })

  it('fails, naming the fix, when connected as the application role to an empty registry it cannot write', async () => {
    const { database } = await brokenDatabase('SELECT 1')
    const report = await verify({ databaseUrl: database.appUrl })
    expect(report.ok).toBe(false)
    expect(report.probedTables).toEqual([])
    const nothing = report.results.find((result) => result.check === 'nothing-probed')
    expect(nothing?.fix).toContain(`GRANT ${database.appRole.name} TO <migration role>`)
    expect(report.results.find((result) => result.check === 'not-probed' && result.table === 'public.Project')?.fix).toContain('"Tenant"')
  })

  it('leaves every row count as it was', async () => {
    const tables = ['"Tenant"', '"Country"', '"Project"', 'tasks', '"Comment"', 'project_members']
    const counts = () =>
      withClient(db.adminUrl, async (client) => (await client.query(`SELECT ${tables.map((table) => `(SELECT count(*) FROM ${table})::int`).join(', ')}`)).rows[0] as unknown)
    await withClient(db.adminUrl, async (client) => {
      await client.query(`INSERT INTO "Tenant" (id, name) VALUES ('acme', 'Acme') ON CONFLICT DO NOTHING`)
      await client.query(`SELECT set_config('app.current_tenant', 'acme', false)`)
      await client.query(`INSERT INTO "Project" (id, name) VALUES ('p1', 'One') ON CONFLICT DO NOTHING`)
      await client.query(`INSERT INTO tasks (id, project_id, title) VALUES ('t1', 'p1', 'Task') ON CONFLICT DO NOTHING`)
    })
    const before = await counts()
    await verify({ databaseUrl: db.adminUrl, role: db.appRole.name })
    expect(await counts()).toEqual(before)
  })
})

describe('verify fails with the check id naming the table', () => {
  it('rls-disabled: row-level security switched off', async () => {
    const report = await verifyBroken('ALTER TABLE "Project" DISABLE ROW LEVEL SECURITY')
    expect(failures(report, 'rls-disabled')).toEqual(['public.Project'])
    expect(failures(report, 'probe-read')).toContain('public.Project')
    expect(report.ok).toBe(false)
  })

  it('rls-not-forced: the owner bypasses the policies', async () => {
    const report = await verifyBroken('ALTER TABLE tasks NO FORCE ROW LEVEL SECURITY')
    expect(failures(report, 'rls-not-forced')).toEqual(['public.tasks'])
  })

  it('no-policy: row-level security on with every policy dropped', async () => {
    const report = await verifyBroken('DROP POLICY tenancy_isolation ON "Comment"; DROP POLICY tenancy_access ON "Comment"')
    expect(failures(report, 'no-policy')).toEqual(['public.Comment'])
  })

  it('command-uncovered: the only permissive policy is for SELECT', async () => {
    const report = await verifyBroken(`DROP POLICY tenancy_access ON "Comment"; CREATE POLICY reads ON "Comment" FOR SELECT USING (${isolation('"Comment"')})`)
    expect(failures(report, 'command-uncovered')).toEqual(['public.Comment'])
    expect(report.results.find((result) => result.check === 'command-uncovered' && result.status === 'fail')?.message).toContain('INSERT, UPDATE, DELETE')
  })

  it('policy-not-tenant-scoped: a USING (true) permissive policy with the restrictive one dropped', async () => {
    const report = await verifyBroken('DROP POLICY tenancy_isolation ON "Project"; CREATE POLICY everyone ON "Project" FOR ALL USING (true)')
    expect(failures(report, 'policy-not-tenant-scoped')).toEqual(['public.Project'])
    expect(failures(report, 'probe-read')).toEqual(['public.Project'])
  })

  it('policy-not-tenant-scoped: a bypass setting ORed into the policy', async () => {
    const report = await verifyBroken(
      `DROP POLICY tenancy_isolation ON tasks; DROP POLICY tenancy_access ON tasks;
       CREATE POLICY bypass ON tasks FOR ALL USING (${isolation('tasks')} OR current_setting('app.bypass', true) = 'on')`,
    )
    expect(failures(report, 'policy-not-tenant-scoped')).toEqual(['public.tasks'])
  })

  it('policy-not-tenant-scoped: a WITH CHECK weaker than USING lets tenant B write rows into tenant A', async () => {
    const report = await verifyBroken(
      `DROP POLICY tenancy_isolation ON "Project"; DROP POLICY tenancy_access ON "Project";
       CREATE POLICY loose_check ON "Project" FOR ALL USING (${isolation('"Project"')}) WITH CHECK (true)`,
    )
    expect(failures(report, 'policy-not-tenant-scoped')).toEqual(['public.Project'])
    expect(failures(report, 'probe-insert')).toEqual(['public.Project'])
  })

  it('policy-not-tenant-scoped: with a restrictive tenant policy in place, an extra USING (true) policy passes', async () => {
    const report = await verifyBroken('CREATE POLICY everyone ON "Project" FOR ALL USING (true)')
    expect(failures(report, 'policy-not-tenant-scoped')).toEqual([])
    expect(report.ok).toBe(true)
  })

  it('role-bypasses-rls: the application role has BYPASSRLS', async () => {
    const report = await verifyBroken((role) => `ALTER ROLE ${role} BYPASSRLS`, { throwawayRole: true })
    expect(failures(report, 'role-bypasses-rls')).toEqual([null])
    expect(failures(report, 'probe-read')).toHaveLength(4)
  })

  it('role-bypasses-rls: the application role is a member of a BYPASSRLS role', async () => {
    const report = await verifyBroken(
      (role) => `CREATE ROLE ${role}_admin NOLOGIN BYPASSRLS; GRANT ${role}_admin TO ${role}`,
      { throwawayRole: true },
    )
    expect(failures(report, 'role-bypasses-rls')).toEqual([null])
    expect(report.results.find((result) => result.check === 'role-bypasses-rls')?.message).toContain('_admin')
  })

  it('role-owns-table: the application role owns a tenant table', async () => {
    const report = await verifyBroken((role) => `ALTER TABLE tasks OWNER TO ${role}`, { throwawayRole: true })
    expect(failures(report, 'role-owns-table')).toEqual(['public.tasks'])
  })

  it('partition-unprotected: an inheritance child without row-level security', async () => {
    const report = await verifyBroken(`CREATE TABLE comment_archive () INHERITS ("Comment"); GRANT SELECT ON comment_archive TO tenancy_app`)
    expect(failures(report, 'partition-unprotected')).toEqual(['public.Comment'])
    expect(report.results.find((result) => result.check === 'partition-unprotected' && result.status === 'fail')?.message).toContain('public.comment_archive')
  })

  it('partition-unprotected: a partition of a partitioned tenant table without row-level security', async () => {
    const schema = join(await mkdtemp(join(tmpdir(), 'verify-schema-')), 'schema.prisma')
    const events = `
model Event {
  id       String
  tenantId String @default(dbgenerated("current_setting('app.current_tenant'::text, true)")) @map("tenant_id")
  name     String

  @@id([tenantId, id])
  @@map("events")
}
`
    await writeFile(schema, `${await readFile('prisma/schema.prisma', 'utf8')}${events}`)
    const { database } = await brokenDatabase(
      `CREATE TABLE events (id text NOT NULL, tenant_id text NOT NULL DEFAULT current_setting('app.current_tenant', true), name text NOT NULL, PRIMARY KEY (tenant_id, id)) PARTITION BY LIST (tenant_id);
       ALTER TABLE events ENABLE ROW LEVEL SECURITY; ALTER TABLE events FORCE ROW LEVEL SECURITY;
       CREATE POLICY tenancy_isolation ON events AS RESTRICTIVE FOR ALL USING (${isolation('events')}) WITH CHECK (${isolation('events')});
       CREATE POLICY tenancy_access ON events FOR ALL USING (${isolation('events')}) WITH CHECK (${isolation('events')});
       CREATE TABLE events_acme PARTITION OF events FOR VALUES IN ('acme');
       CREATE TABLE events_rest PARTITION OF events DEFAULT;
       GRANT SELECT, INSERT, UPDATE, DELETE ON events, events_acme, events_rest TO tenancy_app`,
    )
    const report = await verify({ databaseUrl: database.adminUrl, role: database.appRole.name, schema })
    expect(failures(report, 'partition-unprotected')).toEqual(['public.events'])
    expect(report.results.find((result) => result.check === 'partition-unprotected' && result.status === 'fail')?.message).toContain('public.events_acme')
    expect(failures(report, 'untracked-table')).toEqual([])
    expect(report.probedTables).toContain('public.events')
  })

  it('immutable-policy-function: a policy calls an IMMUTABLE function', async () => {
    const report = await verifyBroken(
      `CREATE FUNCTION tenant_now() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT current_setting('app.current_tenant', true) $$;
       CREATE POLICY cached ON tasks AS RESTRICTIVE FOR SELECT USING (tenant_id = tenant_now())`,
    )
    expect(failures(report, 'immutable-policy-function')).toEqual(['public.tasks'])
  })

  it('default-tenant-setting: the database sets a default tenant', async () => {
    const { database } = await brokenDatabase(() => 'SELECT 1')
    await withClient(database.adminUrl, (client) => client.query(`ALTER DATABASE ${database.name} SET app.current_tenant = 'acme'`))
    const report = await verify({ databaseUrl: database.adminUrl, role: database.appRole.name })
    expect(failures(report, 'default-tenant-setting')).toEqual([null])
  })

  it('default-tenant-setting: ALTER ROLE ... SET for the application role', async () => {
    const report = await verifyBroken((role) => `ALTER ROLE ${role} SET app.current_tenant = 'acme'`, { throwawayRole: true })
    expect(failures(report, 'default-tenant-setting')).toEqual([null])
    expect(report.results.find((result) => result.check === 'default-tenant-setting' && result.status === 'fail')?.message).toContain('acme')
  })

  it('view-bypasses-rls: a view without security_invoker over a tenant table', async () => {
    const report = await verifyBroken(`CREATE VIEW project_names AS SELECT id, name FROM "Project"; GRANT SELECT ON project_names TO tenancy_app`)
    expect(failures(report, 'view-bypasses-rls')).toEqual(['public.project_names'])
  })

  it('view-bypasses-rls: a security_invoker view passes', async () => {
    const report = await verifyBroken(`CREATE VIEW project_names WITH (security_invoker = true) AS SELECT id, name FROM "Project"; GRANT SELECT ON project_names TO tenancy_app`)
    expect(failures(report, 'view-bypasses-rls')).toEqual([])
  })

  it('view-bypasses-rls: a materialized view over a tenant table readable by the role', async () => {
    const report = await verifyBroken(`CREATE MATERIALIZED VIEW task_titles AS SELECT tenant_id, title FROM tasks; GRANT SELECT ON task_titles TO tenancy_app`)
    expect(failures(report, 'view-bypasses-rls')).toEqual(['public.task_titles'])
  })

  it('definer-function: a SECURITY DEFINER function without a pinned search_path', async () => {
    const report = await verifyBroken(`CREATE FUNCTION answer() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 42'`)
    expect(failures(report, 'definer-function')).toEqual(['public.answer()'])
    expect(report.results.find((result) => result.check === 'definer-function' && result.status === 'fail')?.message).toContain('search_path')
  })

  it('definer-function: a SECURITY DEFINER function reading a tenant table', async () => {
    const report = await verifyBroken(`CREATE FUNCTION count_tasks() RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = public AS 'SELECT count(*) FROM tasks'`)
    expect(failures(report, 'definer-function')).toEqual(['public.count_tasks()'])
  })

  it('leakproof-function: a user function marked LEAKPROOF', async () => {
    const report = await verifyBroken(`CREATE FUNCTION same_text(a text, b text) RETURNS boolean LANGUAGE sql IMMUTABLE LEAKPROOF AS 'SELECT a = b'`)
    expect(failures(report, 'leakproof-function')).toEqual(['public.same_text(a text, b text)'])
  })

  it('dangerous-privilege: TRUNCATE granted to the application role', async () => {
    const report = await verifyBroken('GRANT TRUNCATE ON "Project" TO tenancy_app')
    expect(failures(report, 'dangerous-privilege')).toEqual(['public.Project'])
  })

  it('dangerous-privilege: CREATE on the schema of tenant tables', async () => {
    const report = await verifyBroken('GRANT CREATE ON SCHEMA public TO tenancy_app')
    expect(failures(report, 'dangerous-privilege')).toHaveLength(4)
    expect(report.results.find((result) => result.check === 'dangerous-privilege' && result.status === 'fail')?.message).toContain('CREATE on schema public')
  })

  it('fk-not-tenant-scoped: a foreign key into a tenant table without the tenant column', async () => {
    const report = await verifyBroken(`ALTER TABLE "Comment" ADD COLUMN project_id text REFERENCES "Project" (id)`)
    expect(failures(report, 'fk-not-tenant-scoped')).toEqual(['public.Comment'])
  })

  it('untracked-table: a table the schema does not declare, reachable by the role', async () => {
    const report = await verifyBroken('CREATE TABLE audit_log (id int PRIMARY KEY, note text); GRANT SELECT ON audit_log TO tenancy_app')
    expect(failures(report, 'untracked-table')).toEqual(['public.audit_log'])
  })

  it('tenant-column: a nullable tenant column', async () => {
    const report = await verifyBroken('ALTER TABLE "Comment" ALTER COLUMN tenant_id DROP NOT NULL')
    expect(failures(report, 'tenant-column')).toEqual(['public.Comment'])
  })
})

describe('the behavioural probes catch what the catalogs cannot prove', () => {
  it('probe-update and probe-delete: permissive UPDATE and DELETE policies without a tenant condition', async () => {
    const report = await verifyBroken(
      `DROP POLICY tenancy_isolation ON tasks; DROP POLICY tenancy_access ON tasks;
       CREATE POLICY reads ON tasks FOR SELECT USING (${isolation('tasks')});
       CREATE POLICY writes ON tasks FOR INSERT WITH CHECK (${isolation('tasks')});
       CREATE POLICY changes ON tasks FOR UPDATE USING (true) WITH CHECK (true);
       CREATE POLICY removals ON tasks FOR DELETE USING (true)`,
    )
    expect(failures(report, 'probe-update')).toEqual(['public.tasks'])
    expect(failures(report, 'probe-delete')).toEqual(['public.tasks'])
    expect(failures(report, 'policy-not-tenant-scoped')).toEqual(['public.tasks'])
  })

  it("probe-no-tenant: a policy comparing with the raw setting accepts rows for the empty tenant ''", async () => {
    const raw = `tenant_id = current_setting('app.current_tenant', true)`
    const report = await verifyBroken(
      `ALTER TABLE "Project" DROP CONSTRAINT "Project_tenant_id_fkey";
       DROP POLICY tenancy_isolation ON "Project"; DROP POLICY tenancy_access ON "Project";
       CREATE POLICY raw ON "Project" FOR ALL USING (${raw}) WITH CHECK (${raw})`,
    )
    expect(failures(report, 'policy-not-tenant-scoped')).toEqual([])
    expect(failures(report, 'probe-no-tenant')).toEqual(['public.Project'])
    expect(report.results.find((result) => result.check === 'probe-no-tenant' && result.status === 'fail')?.message).toContain('default')
  })
})

describe('probe rows', () => {
  it('take an existing row of a shared lookup table the application role cannot write', async () => {
    const { database } = await brokenDatabase(
      `INSERT INTO "Country" (code, name) VALUES ('nl', 'Netherlands');
       INSERT INTO "Tenant" (id, name) VALUES ('acme', 'Acme');
       ALTER TABLE "Project" ADD COLUMN country_code text NOT NULL REFERENCES "Country" (code);
       REVOKE INSERT ON "Country" FROM tenancy_app`,
    )
    const report = await verify({ databaseUrl: database.appUrl })
    expect(report.probedTables).toContain('public.Project')
    expect(report.results.filter((result) => result.status === 'fail')).toEqual([])
  })
})

describe('verify warns without failing', () => {
  it('unique-not-tenant-scoped: a unique index without the tenant column', async () => {
    const report = await verifyBroken('CREATE UNIQUE INDEX project_name_key ON "Project" (name)')
    expect(report.results.filter((result) => result.check === 'unique-not-tenant-scoped' && result.status === 'warn').map((result) => result.table)).toEqual(['public.Project'])
    expect(report.ok).toBe(true)
  })

  it('tenant-column: no index leads with the tenant column', async () => {
    const report = await verifyBroken('DROP INDEX "Comment_tenant_id_id_key"; DROP INDEX "Comment_tenant_id_task_id_idx"')
    expect(report.results.filter((result) => result.check === 'tenant-column' && result.status === 'warn').map((result) => result.table)).toEqual(['public.Comment'])
    expect(report.ok).toBe(true)
  })

  it('sequence-readable: a sequence the application role can advance', async () => {
    const report = await verifyBroken('CREATE SEQUENCE invoice_numbers; GRANT USAGE ON SEQUENCE invoice_numbers TO tenancy_app')
    expect(report.results.filter((result) => result.check === 'sequence-readable').map((result) => [result.status, result.table])).toEqual([['warn', 'public.invoice_numbers']])
    expect(report.ok).toBe(true)
  })

  it('not-probed: a required column the verifier cannot fill is reported with the reason, never passed', async () => {
    const report = await verifyBroken('ALTER TABLE project_members ADD COLUMN spot point NOT NULL')
    const notProbed = report.results.find((result) => result.check === 'not-probed')
    expect(notProbed).toMatchObject({ status: 'warn', table: 'public.project_members' })
    expect(notProbed?.message).toContain('spot')
    expect(report.probedTables).not.toContain('public.project_members')
    expect(report.results.filter((result) => result.table === 'public.project_members' && result.check.startsWith('probe-'))).toEqual([])
  })
})

describe('tenant-scoped policy expressions, as PostgreSQL prints them back', () => {
  const expressions: [string, boolean][] = [
    [`tenant_id = (SELECT NULLIF(current_setting('app.current_tenant', true), ''))`, true],
    [`tenant_id = (SELECT current_setting('app.current_tenant', true))`, true],
    [`tenant_id = current_setting('app.current_tenant')`, true],
    [`tenant_key = (SELECT NULLIF(current_setting('app.current_tenant', true), '')::uuid)`, true],
    [`tenant_id::text = current_setting('app.current_tenant', true)::text`, true],
    [`current_setting('app.current_tenant', true) = tenant_id AND name <> 'archived'`, true],
    [`true`, false],
    [`tenant_id IS NULL OR tenant_id = current_setting('app.current_tenant', true)`, false],
    [`tenant_id = COALESCE(current_setting('app.current_tenant', true), 'acme')`, false],
    [`tenant_id = current_setting('app.current_tenant', true) OR current_setting('app.bypass', true) = 'on'`, false],
    [`tenant_id = current_setting('app.other_setting', true)`, false],
    [`name = current_setting('app.current_tenant', true)`, false],
    [`tenant_id <> current_setting('app.current_tenant', true)`, false],
  ]

  it('recognises the tenant comparison through casts, the subquery wrapper and NULLIF, and nothing weaker', async () => {
    const printed = await withClient(db.adminUrl, async (client) => {
      await client.query('CREATE TABLE expression_probe (tenant_id text, tenant_key uuid, name text)')
      for (const [index, [expression]] of expressions.entries()) await client.query(`CREATE POLICY p${index} ON expression_probe USING (${expression})`)
      const { rows } = await client.query<{ expression: string }>(`SELECT pg_get_expr(polqual, polrelid) AS expression FROM pg_policy WHERE polrelid = 'expression_probe'::regclass ORDER BY substr(polname, 2)::int`)
      await client.query('DROP TABLE expression_probe')
      return rows.map((row) => row.expression)
    })
    const verdicts = printed.map((expression) => isTenantScoped(expression, expression.includes('tenant_key') ? 'tenant_key' : 'tenant_id', 'app.current_tenant'))
    expect(verdicts).toEqual(expressions.map(([, scoped]) => scoped))
  })
})

describe('verify refuses bad input', () => {
  it('fails with CONFIG_INVALID when the role does not exist', async () => {
    const error = await verify({ databaseUrl: db.adminUrl, role: 'no_such_role_here' }).catch((caught: unknown) => caught)
    expect(isTenancyError(error, 'CONFIG_INVALID')).toBe(true)
  })

  it('fails with NO_TENANT_COLUMN instead of passing when no model has the tenant field', async () => {
    const error = await verify({ databaseUrl: db.adminUrl, role: db.appRole.name, tenantField: 'tenantKey' }).catch((caught: unknown) => caught)
    expect(isTenancyError(error, 'NO_TENANT_COLUMN')).toBe(true)
    expect((error as Error).message).toContain('tenantKey')
  })

  it('fails with CONFIG_INVALID for a setting name PostgreSQL would not accept', async () => {
    const error = await verify({ databaseUrl: db.adminUrl, role: db.appRole.name, setting: 'current_tenant' }).catch((caught: unknown) => caught)
    expect(isTenancyError(error, 'CONFIG_INVALID')).toBe(true)
    expect((error as Error).message).toContain('app.current_tenant')
  })
})

describe('prisma-tenancy verify', () => {
  const capture = () => {
    const out = { stdout: '', stderr: '' }
    return { out, io: { stdout: (text: string) => void (out.stdout += text), stderr: (text: string) => void (out.stderr += text) } }
  }

  it('exits 0 and prints the report as JSON on stdout with --json', async () => {
    const { out, io } = capture()
    const code = await runCli(['verify', '--database-url', db.adminUrl, '--role', db.appRole.name, '--json'], io)
    expect(code).toBe(0)
    const report = JSON.parse(out.stdout) as VerifyReport
    expect(report.ok).toBe(true)
    expect(out.stderr).toContain('OK: 0 failed')
  })

  it('exits 1 and names the check and table when a check fails', async () => {
    const { database } = await brokenDatabase('ALTER TABLE tasks DISABLE ROW LEVEL SECURITY')
    const { out, io } = capture()
    const code = await runCli(['verify', '--database-url', database.adminUrl, '--role', database.appRole.name], io)
    expect(code).toBe(1)
    expect(out.stderr).toMatch(/public\.tasks\n\s+fail\s+rls-disabled/)
    expect(out.stdout).toBe('')
  })

  it('runs the catalog checks only with --no-probes', async () => {
    const { out, io } = capture()
    expect(await runCli(['verify', '--database-url', db.adminUrl, '--role', db.appRole.name, '--no-probes', '--json'], io)).toBe(0)
    const report = JSON.parse(out.stdout) as VerifyReport
    expect(report.probedTables).toEqual([])
    expect(report.results.some((result) => result.check.startsWith('probe-'))).toBe(false)
  })

  it('exits 2 when the database is unreachable', async () => {
    const { io } = capture()
    expect(await runCli(['verify', '--database-url', 'postgresql://postgres@127.0.0.1:1/app'], io)).toBe(2)
  })
})

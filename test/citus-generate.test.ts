import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCliCaptured } from './support/cli.js'
import { copyExampleProject } from './support/example-project.js'
import { citusAppRole, deployCitusProject } from './support/citus-project.js'
import { appRoleUrl, withClient } from '../src/database/admin.js'
import { generatePolicies } from '../src/index.js'
import { citusAvailable, citusInstallScript, startCitusCluster, type CitusCluster } from '../src/testing/citus-cluster.js'

const citus = await citusAvailable()
if (!citus.available) console.warn(`test/citus-generate.test.ts: the tests on a cluster are skipped: ${citus.reason} (script: ${citusInstallScript})`)

const now = new Date('2026-12-02T12:00:00Z')
const appRole = citusAppRole

async function generatedCitusProject() {
  const project = await copyExampleProject('test/fixtures/citus/prisma')
  const result = await generatePolicies({ schema: project.schema, migrations: project.migrations, appRole: appRole.name, citus: true, now })
  if (result.created === null) throw new Error('generate --citus wrote nothing')
  return { ...project, script: await readFile(join(project.migrations, result.created, 'migration.sql'), 'utf8') }
}

describe('generate --citus', () => {
  it('refuses a schema whose primary or unique keys lack the tenant column, or whose tenant relations cascade updates, naming each schema change', async () => {
    const project = await copyExampleProject()
    const { code, stderr } = await runCliCaptured(['generate', '--citus', '--app-role', 'app', '--schema', project.schema, '--migrations', project.migrations])
    expect(code).toBe(2)
    expect(stderr).toContain('In model Project, make the primary key @@id([tenantId, id]) (drop @id from the field id).')
    expect(stderr).toContain('In model Task, make the primary key @@id([tenantId, id]) (drop @id from the field id).')
    expect(stderr).toContain('In model Comment, make the primary key @@id([tenantId, id]) (drop @id from the field id).')
    expect(stderr).not.toContain('In model ProjectMember, make')
    expect(stderr).toContain('In model Task, add onUpdate: NoAction to the @relation of the field project (Citus refuses ON UPDATE Cascade on a foreign key that includes the tenant column).')
    expect(stderr).toContain('prisma-tenancy migrate dev --name citus-keys')
  })

  it('needs --app-role, the role that gets the propagation setting', async () => {
    const project = await copyExampleProject('test/fixtures/citus/prisma')
    const { code, stderr } = await runCliCaptured(['generate', '--citus', '--schema', project.schema, '--migrations', project.migrations])
    expect(code).toBe(2)
    expect(stderr).toContain('generate --citus needs --app-role <role>')
  })

  it('distributes tenant tables co-located and shared ones as reference tables, in dependency order, after the policies (file snapshot)', async () => {
    const { script } = await generatedCitusProject()
    await expect(script).toMatchFileSnapshot('./__snapshots__/citus-generate-app-role.sql')
    const order = ['CREATE POLICY', 'create_reference_table(\'"Country"\')', 'create_reference_table(\'"Tenant"\')', 'create_distributed_table(\'"Project"\'', 'create_distributed_table(\'"tasks"\'']
    const positions = order.map((needle) => script.indexOf(needle))
    expect(positions.every((position) => position >= 0)).toBe(true)
    expect([...positions].sort((a, b) => a - b)).toEqual(positions)
  })
})

describe.skipIf(!citus.available)('the generate --citus migration on a coordinator and two workers', () => {
  let cluster: CitusCluster
  let url = ''

  beforeAll(async () => {
    cluster = await startCitusCluster()
    // generate --citus, applied with migrate deploy as a user does it.
    url = (await deployCitusProject(cluster, 'citus_generate')).url
    await withClient(url, async (client) => {
      await client.query(`INSERT INTO "Tenant" (id, name) VALUES ('acme', 'Acme'), ('globex', 'Globex')`)
      await client.query(`INSERT INTO "Project" (id, tenant_id, name) SELECT 'p' || n, CASE WHEN n % 2 = 0 THEN 'acme' ELSE 'globex' END, 'project ' || n FROM generate_series(1, 20) n`)
    })
  })
  afterAll(() => cluster?.stop())

  it('distributes the tenant tables on tenant_id in one colocation group and makes the shared tables reference tables', async () => {
    const tables = await withClient(url, async (client) => {
      const { rows } = await client.query<{ table_name: string; citus_table_type: string; distribution_column: string; colocation_id: number }>(
        'SELECT table_name::text, citus_table_type, distribution_column, colocation_id FROM citus_tables ORDER BY table_name::text',
      )
      return rows
    })
    const byName = Object.fromEntries(tables.map((row) => [row.table_name, row]))
    expect(byName['"Tenant"']?.citus_table_type).toBe('reference')
    expect(byName['"Country"']?.citus_table_type).toBe('reference')
    expect(byName['"Project"']).toMatchObject({ citus_table_type: 'distributed', distribution_column: 'tenant_id' })
    expect(byName.tasks).toMatchObject({ citus_table_type: 'distributed', distribution_column: 'tenant_id' })
    expect(byName.tasks?.colocation_id).toBe(byName['"Project"']?.colocation_id)
  })

  it('has both policies, forced row-level security, on every shard of every worker', async () => {
    const shards = await withClient(url, async (client) => {
      const { rows } = await client.query<{ nodeport: number; result: string }>(
        `SELECT s.nodeport, r.result FROM run_command_on_shards('"Project"', $$SELECT (SELECT count(*) FROM pg_policy WHERE polrelid = '%1$s'::regclass) || ' ' || relforcerowsecurity FROM pg_class WHERE oid = '%1$s'::regclass$$) r JOIN citus_shards s ON s.shardid = r.shardid`,
      )
      return rows
    })
    expect(shards.length).toBeGreaterThan(1)
    expect(new Set(shards.map((shard) => shard.nodeport))).toEqual(new Set(cluster.workers.map((worker) => worker.port)))
    expect(new Set(shards.map((shard) => shard.result))).toEqual(new Set(['2 true']))
  })

  it("gives the app role citus.propagate_set_commands = 'local'", async () => {
    const setting = await withClient(appRoleUrl(url, appRole), async (client) => (await client.query<{ value: string }>("SELECT current_setting('citus.propagate_set_commands') AS value")).rows[0]?.value)
    expect(setting).toBe('local')
  })

  it('shows the app role, through the coordinator, only the rows of the tenant it SET LOCAL, and refuses a row for another tenant', async () => {
    const client = new pg.Client({ connectionString: appRoleUrl(url, appRole) })
    await client.connect()
    try {
      await client.query('BEGIN')
      await client.query("SET LOCAL app.current_tenant = 'acme'")
      const rows = (await client.query<{ tenant_id: string }>('SELECT DISTINCT tenant_id FROM "Project"')).rows
      const inserted = (await client.query(`INSERT INTO "Project" (id, name) VALUES ('new', 'mine')`)).rowCount
      await client.query('COMMIT')
      expect(rows).toEqual([{ tenant_id: 'acme' }])
      expect(inserted).toBe(1)
      await client.query('BEGIN')
      await client.query("SET LOCAL app.current_tenant = 'acme'")
      await expect(client.query(`INSERT INTO "Project" (id, tenant_id, name) VALUES ('x', 'globex', 'theirs')`)).rejects.toThrow(/row-level security/)
      await client.query('ROLLBACK')
      await client.query('BEGIN')
      const none = (await client.query('SELECT 1 FROM "Project"')).rowCount
      await client.query('COMMIT')
      expect(none).toBe(0)
    } finally {
      await client.end()
    }
  })

  it('routes a query to one shard when it names the tenant, and fans out to every shard under the setting alone', async () => {
    const taskCounts = await withClient(appRoleUrl(url, appRole), async (client) => {
      await client.query('BEGIN')
      await client.query("SET LOCAL app.current_tenant = 'acme'")
      const plan = async (sql: string) => ((await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`)).rows.map((row) => row['QUERY PLAN']).join('\n').match(/Task Count: (\d+)/) ?? [])[1]
      const counts = [await plan(`SELECT * FROM "Project" WHERE tenant_id = 'acme' AND id = 'p2'`), await plan(`SELECT * FROM "Project" WHERE id = 'p2'`)]
      await client.query('COMMIT')
      return counts
    })
    expect(taskCounts[0]).toBe('1')
    expect(Number(taskCounts[1])).toBeGreaterThan(1)
  })

  it("never carries set_config(..., true) to the workers, which is why the driver's single-server form sees no rows on Citus", async () => {
    const rows = await withClient(appRoleUrl(url, appRole), async (client) => {
      await client.query('BEGIN')
      await client.query("SELECT set_config('app.current_tenant', 'acme', true)")
      const { rowCount } = await client.query(`SELECT 1 FROM "Project" WHERE tenant_id = 'acme'`)
      await client.query('COMMIT')
      return rowCount
    })
    expect(rows).toBe(0)
  })
})

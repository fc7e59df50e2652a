// What the tenant roles' policies cost the shared application role. The
// RESTRICTIVE policy tenancy_tenant_role is scoped TO the tenant roles' group, so
// for the app role PostgreSQL drops it before planning (a role-membership check
// per policy). Measured inside the server, with no network and no Prisma in
// between, as the app role: a primary-key lookup run through EXECUTE (planned
// every time, row security included) on `tasks`, which has the policy after
// `tenant create --credentials`, and on its twin, the same rows, indexes and
// tenant policies without it. One PL/pgSQL loop alternates blocks of queries on
// the two tables (which one goes first alternates too), so load from other
// processes falls on both alike; switching the policy by DDL between separate
// runs, as this bench first did, let such load land on one state only (samples
// spread over 15-39 µs). Short blocks, many rounds. Reported: µs per query on
// each, the median of the per-round differences and its 95% confidence interval
// (order statistics n/2 ± 1.96·√n/2), which says whether the figure can tell
// +3 µs from 0 on this machine at this load (target: ≤ +3 µs).
//   npx tsx scripts/bench/tenant-role-policy.ts [rounds] [queries per block]
import { withClient } from '../../src/database/admin.js'
import { startPostgres } from '../../src/testing/postgres-provider.js'
import { createTenant } from '../../src/tenants/create-tenant.js'
import { groupRoleName, TENANT_ROLE_POLICY, tenantRoleName } from '../../src/tenants/tenant-roles.js'
import { benchRoles, createBenchDatabase, createRoles, dropRoles } from './database.js'
import { median, percentile } from './stats.js'

const rounds = Number(process.argv[2] ?? 2_000)
const queries = Number(process.argv[3] ?? 200)
const twin = 'tasks_without_tenant_role'
const server = await startPostgres({})
const roles = benchRoles()
await createRoles(server.adminUrl, roles)
const database = await createBenchDatabase(server.adminUrl, roles)
const round2 = (value: number) => Math.round(value * 100) / 100
try {
  await withClient(database.adminUrl, async (client) => {
    await client.query(`INSERT INTO "Tenant" (id, name) SELECT 't' || g, 't' || g FROM generate_series(0, 9) g`)
    await client.query(`INSERT INTO "Project" (id, tenant_id, name) SELECT 't' || g || '-p', 't' || g, 'p' FROM generate_series(0, 9) g`)
    await client.query(`INSERT INTO "tasks" (id, tenant_id, project_id, title) SELECT 't' || (g % 10) || '-t' || g, 't' || (g % 10), 't' || (g % 10) || '-p', 'x' FROM generate_series(1, 100000) g`)
  })
  await createTenant('t0', { databaseUrl: database.adminUrl, credentials: true, appRole: roles.app.name })
  await withClient(database.adminUrl, async (client) => {
    const { rows: policies } = await client.query<{ name: string; permissive: string; command: string; using: string; check: string | null }>(
      `SELECT policyname AS name, permissive, cmd AS command, qual AS using, with_check AS check FROM pg_policies WHERE tablename = 'tasks' AND policyname <> $1`,
      [TENANT_ROLE_POLICY],
    )
    await client.query(`CREATE TABLE ${twin} (LIKE tasks INCLUDING ALL); INSERT INTO ${twin} SELECT * FROM tasks; ALTER TABLE ${twin} ENABLE ROW LEVEL SECURITY; ALTER TABLE ${twin} FORCE ROW LEVEL SECURITY`)
    for (const policy of policies) {
      await client.query(`CREATE POLICY ${policy.name} ON ${twin} AS ${policy.permissive} FOR ${policy.command} USING (${policy.using})${policy.check === null ? '' : ` WITH CHECK (${policy.check})`}`)
    }
    await client.query(`GRANT SELECT ON ${twin} TO "${roles.app.name}"`)
    const present = await client.query(`SELECT 1 FROM pg_policies WHERE tablename = 'tasks' AND policyname = $1`, [TENANT_ROLE_POLICY])
    if (present.rowCount !== 1) throw new Error(`tasks has no ${TENANT_ROLE_POLICY} policy after tenant create --credentials`)
    await client.query('VACUUM ANALYZE')
  })
  const block = (table: string) =>
    `t := clock_timestamp(); FOR i IN 1..${queries} LOOP EXECUTE 'SELECT title FROM ${table} WHERE id = $1' INTO x USING 't3-t' || (i % 10000 * 10 + 3); END LOOP; d := extract(epoch FROM clock_timestamp() - t);`
  // Each round: both blocks, the first one alternating; the notice carries both durations (seconds).
  const loop = `DO $$ DECLARE t timestamptz; x text; d float8; present float8; absent float8; BEGIN
    PERFORM set_config('app.current_tenant', 't3', true);
    FOR r IN 0..${rounds} LOOP
      IF r % 2 = 0 THEN ${block('tasks')} present := d; ${block(twin)} absent := d;
      ELSE ${block(twin)} absent := d; ${block('tasks')} present := d; END IF;
      IF x IS DISTINCT FROM 'x' THEN RAISE EXCEPTION 'the lookup found no row: the bench measures nothing'; END IF;
      IF r > 0 THEN RAISE NOTICE '% %', present, absent; END IF;
    END LOOP; END $$`
  const samples = { present: [] as number[], absent: [] as number[], difference: [] as number[] }
  await withClient(database.appUrl, async (client) => {
    client.on('notice', (notice) => {
      const [present, absent] = (notice.message ?? '').split(' ').map((seconds) => (Number(seconds) * 1e6) / queries)
      if (present === undefined || absent === undefined) return
      samples.present.push(present)
      samples.absent.push(absent)
      samples.difference.push(present - absent)
    })
    // Round 0 warms the connection's caches and is not reported.
    await client.query(loop)
  })
  const sorted = [...samples.difference].sort((a, b) => a - b)
  const halfWidth = 1.96 * Math.sqrt(sorted.length) / 2
  const interval = [percentile(sorted, (100 * (sorted.length / 2 - halfWidth)) / sorted.length), percentile(sorted, (100 * (sorted.length / 2 + halfWidth)) / sorted.length)]
  const report = {
    queriesPerBlock: queries,
    rounds,
    absentMicros: round2(median(samples.absent)),
    presentMicros: round2(median(samples.present)),
    differenceMicros: round2(median(samples.difference)),
    differenceCi95Micros: interval.map(round2),
    differenceIqrMicros: [round2(percentile(sorted, 25)), round2(percentile(sorted, 75))],
    server: server.kind,
  }
  process.stdout.write(`${JSON.stringify(report)}\n`)
  process.stderr.write(
    `app role, primary-key lookup planned each time: ${report.absentMicros} µs without the tenant-role policy, ${report.presentMicros} µs with it; difference ${report.differenceMicros >= 0 ? '+' : ''}${report.differenceMicros} µs (median of ${sorted.length} rounds; 95% CI ${report.differenceCi95Micros.join('..')} µs; target ≤ +3 µs)\n`,
  )
} finally {
  await database.drop()
  // Roles are cluster-wide and outlive the database.
  await withClient(server.adminUrl, (client) => client.query(`DROP ROLE IF EXISTS "${tenantRoleName(database.name, 't0')}"; DROP ROLE IF EXISTS "${groupRoleName(database.name)}"`)).catch(() => undefined)
  await dropRoles(server.adminUrl, roles)
  await server.stop()
}

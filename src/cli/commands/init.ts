import { resolveProject, type ProjectOptions } from '../../config/project-config.js'
import { databaseName, parseDatabaseUrl } from '../../database/connection-url.js'
import { initRoles, type InitResult } from '../../database/roles.js'
import type { CliIo } from '../output.js'
import { exitCodes } from '../output.js'

export interface InitCommandOptions extends ProjectOptions {
  database?: string | undefined
  migrationRole: string
  appRole: string
  adminRole: string
  dryRun?: boolean | undefined
  json?: boolean | undefined
}

function describe(result: InitResult): string {
  const lines = [result.dryRun ? '-- prisma-tenancy init --dry-run: nothing was run. The SQL:' : '-- prisma-tenancy init ran:', ...result.sql, '']
  for (const role of result.roles) lines.push(`${role.status === 'created' ? (result.dryRun ? 'would create' : 'created') : 'kept (created by an earlier init; password unchanged)'}: ${role.kind} role ${role.name}`)
  if (result.roles.some((role) => role.status === 'created')) lines.push('', 'The passwords are shown once, here: store them now (a password manager, your secrets store).')
  lines.push(
    '',
    '# .env',
    `DATABASE_URL="${result.urls.app}"            # the application (tenancyAdapter)`,
    `MIGRATE_DATABASE_URL="${result.urls.migration}"  # migrations, generate, verify`,
    `SHADOW_DATABASE_URL="${result.urls.shadow}"   # migrate dev's shadow database`,
    `ADMIN_DATABASE_URL="${result.urls.admin}"     # unscopedAdapter: admin screens, cross-tenant jobs`,
    '',
    '// prisma.config.ts',
    "datasource: { url: process.env.MIGRATE_DATABASE_URL ?? '', shadowDatabaseUrl: process.env.SHADOW_DATABASE_URL },",
    '',
    'Next:',
    '  npx prisma-tenancy migrate dev --name init',
    `  npx prisma-tenancy generate --app-role ${result.roles.find((role) => role.kind === 'app')!.name}`,
    '  npx prisma-tenancy migrate deploy',
    `  npx prisma-tenancy verify --role ${result.roles.find((role) => role.kind === 'app')!.name}`,
  )
  return lines.join('\n')
}

/**
 * `init`: the roles, databases and grants of a new app, run (or printed with
 * --dry-run) as the superuser of --database-url; the database defaults to
 * the one that URL names when it is not `postgres`, else `app`.
 */
export async function initCommand(options: InitCommandOptions, io: CliIo): Promise<number> {
  const project = await resolveProject(options)
  const adminUrl = parseDatabaseUrl(project.databaseUrl)
  const named = databaseName(adminUrl)
  const result = await initRoles({
    adminUrl,
    database: options.database ?? (named === 'postgres' ? 'app' : named),
    migrationRole: options.migrationRole,
    appRole: options.appRole,
    adminRole: options.adminRole,
    dryRun: options.dryRun === true,
  })
  if (options.json === true) io.stdout(JSON.stringify(result))
  io.stderr(describe(result))
  return exitCodes.ok
}

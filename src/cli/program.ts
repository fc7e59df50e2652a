import { Command, CommanderError } from 'commander'
import { defaultTenantField, defaultTenantSetting } from '../context/tenant-setting.js'
import { generateCommand } from './commands/generate.js'
import { migrateDeployCommand, migrateDevCommand, migrateResolveCommand, migrateStatusCommand } from './commands/migrate.js'
import { tenantCreateCommand, tenantExportCommand, tenantImportCommand, tenantListCommand, tenantRemoveCommand, tenantRotateCommand } from './commands/tenant.js'
import { verifyCommand } from './commands/verify.js'
import { exitCodes, formatError, processIo, type CliIo } from './output.js'

type Action = (io: CliIo) => Promise<number>

/**
 * The command-line interface as a function: parses argv, runs one command and
 * returns its exit code. Nothing here calls process.exit, so it is testable
 * in-process.
 */
export async function runCli(argv: string[], io: CliIo = processIo): Promise<number> {
  let action: Action | undefined
  const program = new Command('prisma-tenancy')
    .description('Multi-tenancy for Prisma on PostgreSQL row-level security')
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.stderr(text), writeErr: (text) => io.stderr(text) })
    .showHelpAfterError()

  // Options several commands share, each defined once.
  const schemaOptions = (command: Command) =>
    command
      .option('--config <path>', 'prisma.config.ts to read (default: found like the Prisma CLI does)')
      .option('--schema <path>', 'Prisma schema file or folder (overrides the config)')
  const databaseOption = (command: Command) => command.option('--database-url <url>', 'the database (overrides the config and DATABASE_URL)')
  const migrationsOption = (command: Command) => command.option('--migrations <path>', 'migrations folder (overrides the config)')
  const tenantOptions = (command: Command) =>
    command
      .option('--tenant-field <field>', 'Prisma field holding the tenant', defaultTenantField)
      .option('--setting <name>', 'PostgreSQL setting holding the current tenant', defaultTenantSetting)
  const jsonOption = (command: Command) => command.option('--json', 'print the result as JSON on stdout (human-readable text still goes to stderr)')
  const migrateCommand = (command: Command) => jsonOption(databaseOption(migrationsOption(schemaOptions(command))))

  const migrate = program.command('migrate').description('Prisma migrations without the native schema engine')
  migrateCommand(migrate.command('deploy').description('apply pending migrations')).action((options) => {
    action = (cliIo) => migrateDeployCommand(options, cliIo)
  })
  migrateCommand(migrate.command('dev').description('create a migration from the schema diff, then apply it'))
    .requiredOption('-n, --name <name>', 'name of the new migration')
    .action((options) => {
      action = (cliIo) => migrateDevCommand(options, cliIo)
    })
  migrateCommand(migrate.command('status').description('compare the database with the migrations folder')).action((options) => {
    action = (cliIo) => migrateStatusCommand(options, cliIo)
  })
  migrateCommand(migrate.command('resolve').description('mark a failed migration as rolled back'))
    .requiredOption('--rolled-back <name>', 'the failed migration')
    .action((options) => {
      action = (cliIo) => migrateResolveCommand(options, cliIo)
    })

  jsonOption(tenantOptions(migrationsOption(schemaOptions(program.command('generate')))))
    .description('write the row-level security migration for tenant tables (policies, grants) from the schema')
    .option('-n, --name <name>', 'name of the migration folder', 'rls')
    .option('--app-role <role>', 'grant this role DML on tenant tables and SELECT on shared tables')
    .option('--check', 'write nothing; exit 1 when a tenant table has no policy migration (CI drift gate)')
    .option('--strict', 'with --check, also exit 1 on warnings (missing tenant default or index, foreign keys without the tenant column)')
    .action((options) => {
      action = (cliIo) => generateCommand(options, cliIo)
    })

  jsonOption(tenantOptions(databaseOption(schemaOptions(program.command('verify')))))
    .description('prove every tenant table is isolated for the app role: catalog checks and rolled-back probes (exit 1 when a check fails)')
    .option('--role <role>', 'the role the application connects as (default: the connecting user)')
    .option('--no-probes', 'catalog checks only; skip the behavioural probes')
    .action((options) => {
      action = (cliIo) => verifyCommand(options, cliIo)
    })

  // The tenant lifecycle: every subcommand connects with the admin URL and reads the schema for the registry and tenant tables.
  const tenant = program.command('tenant').description('tenant lifecycle: create, list, remove, export, import, rotate credentials (as an admin role)')
  const lifecycle = (command: Command) => jsonOption(tenantOptions(databaseOption(schemaOptions(command))))
  lifecycle(tenant.command('create <id>').description('register a tenant (idempotent; a rerun repairs what is missing)'))
    .option('--data <json>', "the registry row's other fields, as a JSON object")
    .option('--credentials', "also create the tenant's own login role; prints its connection string once, on stdout")
    .option('--app-role <role>', 'with --credentials: the application role, whose table privileges the tenant role gets')
    .action((id: string, options) => {
      action = (cliIo) => tenantCreateCommand(id, options, cliIo)
    })
  lifecycle(tenant.command('list').description('every tenant: id, created, whether it has credentials'))
    .option('--rows', 'also count its rows per tenant table')
    .action((options) => {
      action = (cliIo) => tenantListCommand(options, cliIo)
    })
  lifecycle(tenant.command('remove <id>').description('delete every row of a tenant in batches (resumable), then its registry row and login role'))
    .option('--yes', 'confirm: without it nothing is changed')
    .option('--batch-size <n>', 'rows deleted per transaction', '1000')
    .action((id: string, options) => {
      action = (cliIo) => tenantRemoveCommand(id, options, cliIo)
    })
  lifecycle(tenant.command('export <id>').description("stream a tenant's rows as JSON Lines"))
    .option('--out <file>', 'write to this file (default: stdout)')
    .action((id: string, options) => {
      action = (cliIo) => tenantExportCommand(id, options, cliIo)
    })
  lifecycle(tenant.command('import <file>').description('load an export in one transaction'))
    .option('--as <id>', 'import under this tenant id')
    .option('--replace', 'replace the tenant if it exists')
    .action((file: string, options) => {
      action = (cliIo) => tenantImportCommand(file, options, cliIo)
    })
  lifecycle(tenant.command('rotate <id>').description("new password for a tenant's login role; prints its connection string once, on stdout")).action((id: string, options) => {
    action = (cliIo) => tenantRotateCommand(id, options, cliIo)
  })

  try {
    await program.parseAsync(argv, { from: 'user' })
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? exitCodes.ok : exitCodes.usage
    throw error
  }
  if (action === undefined) {
    io.stderr(program.helpInformation())
    return exitCodes.usage
  }
  try {
    return await action(io)
  } catch (error) {
    const { text, exitCode } = formatError(error)
    io.stderr(text)
    return exitCode
  }
}

import { Command, CommanderError } from 'commander'
import { defaultTenantField, defaultTenantSetting } from '../context/tenant-setting.js'
import { generateCommand } from './commands/generate.js'
import { migrateDeployCommand, migrateDevCommand, migrateResolveCommand, migrateStatusCommand } from './commands/migrate.js'
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
    .option('--citus', 'also distribute on Citus: tenant tables on the tenant column (co-located), shared tables as reference tables; needs --app-role')
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

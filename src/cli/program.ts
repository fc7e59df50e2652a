import { Command, CommanderError } from 'commander'
import { defaultTenantField, defaultTenantSetting } from '../context/tenant-setting.js'
import { UNBATCHED_BACKFILL_LIMIT } from '../adopt/backfill-limit.js'
import { exitCodes, formatError, packageVersion, processIo, type CliIo } from './output.js'

type Action = (io: CliIo) => Promise<number>

// Each action imports its command's module when it runs, so a command loads only
// what it uses: `tenant export` does not pay for the schema engine, the migration
// and adoption code or their dependencies (its peak memory is measured, README).

/**
 * Every command and option, with the action a parse selects. Built per run
 * (commander keeps parsed values on the command), and exported so tests can
 * check that every command a message names exists.
 */
export function buildProgram(io: CliIo, select: (action: Action) => void): Command {
  const program = new Command('prisma-tenancy')
    .description('Multi-tenancy for Prisma on PostgreSQL row-level security')
    .version(packageVersion(), '-V, --version', 'print the version of prisma-tenancy')
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
    select(async (cliIo) => (await import('./commands/migrate.js')).migrateDeployCommand(options, cliIo))
  })
  migrateCommand(migrate.command('dev').description('create a migration from the schema diff, then apply it'))
    .requiredOption('-n, --name <name>', 'name of the new migration')
    .action((options) => {
      select(async (cliIo) => (await import('./commands/migrate.js')).migrateDevCommand(options, cliIo))
    })
  migrateCommand(migrate.command('status').description('compare the database with the migrations folder')).action((options) => {
    select(async (cliIo) => (await import('./commands/migrate.js')).migrateStatusCommand(options, cliIo))
  })
  migrateCommand(migrate.command('resolve').description('mark a failed migration as rolled back'))
    .requiredOption('--rolled-back <name>', 'the failed migration')
    .action((options) => {
      select(async (cliIo) => (await import('./commands/migrate.js')).migrateResolveCommand(options, cliIo))
    })

  jsonOption(databaseOption(program.command('init')))
    .description('create the migration, app and admin roles, the database and its shadow database, and print their URLs')
    .option('--config <path>', 'prisma.config.ts to read the server URL from (default: found like the Prisma CLI does)')
    .option('--database <name>', "the app's database (default: the URL's, or app when that is postgres)")
    .option('--migration-role <role>', 'owns the tables; runs migrate, generate and verify', 'app_migrator')
    .option('--app-role <role>', 'the application connects as it: no BYPASSRLS, owns nothing', 'app_user')
    .option('--admin-role <role>', 'BYPASSRLS, for unscoped work (unscopedAdapter)', 'app_admin')
    .option('--dry-run', 'print the SQL and the URLs; run nothing')
    .action((options) => {
      select(async (cliIo) => (await import('./commands/init.js')).initCommand(options, cliIo))
    })

  jsonOption(tenantOptions(migrationsOption(schemaOptions(program.command('generate')))))
    .description('write the row-level security migration for tenant tables (policies, grants) from the schema')
    .option('-n, --name <name>', 'name of the migration folder', 'rls')
    .option('--app-role <role>', 'grant this role DML on tenant tables and SELECT on shared tables, and revoke TEMPORARY on the database from it and PUBLIC')
    .option('--signed', 'policies trust the tenant only with a valid signature (signed tenant context; provision the key with `signing-key set`)')
    .option('--check', 'write nothing; exit 1 when a tenant table has no policy migration (CI drift gate)')
    .option('--strict', 'also exit 1 on warnings (missing tenant default, foreign keys without the tenant column)')
    .option('--citus', 'also distribute on Citus: tenant tables on the tenant column (co-located), shared tables as reference tables; needs --app-role')
    .action((options) => {
      select(async (cliIo) => (await import('./commands/generate.js')).generateCommand(options, cliIo))
    })

  jsonOption(tenantOptions(databaseOption(schemaOptions(program.command('verify')))))
    .description('prove every tenant table is isolated for the app role: catalog checks and rolled-back probes (exit 1 when a check fails)')
    .option('--role <role>', 'the role the application connects as (default: the connecting user)')
    .option('--no-probes', 'catalog checks only; skip the behavioural probes')
    .option('--strict', 'also exit 1 on warnings (e.g. write grants on shared tables)')
    .action((options) => {
      select(async (cliIo) => (await import('./commands/verify.js')).verifyCommand(options, cliIo))
    })

  jsonOption(tenantOptions(databaseOption(migrationsOption(schemaOptions(program.command('adopt'))))))
    .description('plan and write the migrations that take an existing single-tenant database to row-level security, step by step, safe under traffic')
    .requiredOption('--default-tenant <id>', 'the tenant every existing row belongs to')
    .option('--batch-size <rows>', `rows per backfill transaction (required for tables of more than ${UNBATCHED_BACKFILL_LIMIT} rows)`)
    .option('--app-role <role>', 'grant this role DML on tenant tables and SELECT on shared tables in the policy step')
    .option('--dry-run', 'print the plan and write nothing')
    .action((options) => {
      select(async (cliIo) => (await import('./commands/adopt.js')).adoptCommand(options, cliIo))
    })

  const signingKey = program.command('signing-key').description('the key of the signed tenant context (generate --signed)')
  jsonOption(databaseOption(schemaOptions(signingKey.command('set'))))
    .description('generate a signing key, store it in the database and print it once for the app (refuses to replace one without --rotate)')
    .option('--rotate', 'replace an existing key (the running app sees no rows until it has the new key)')
    .action((options) => {
      select(async (cliIo) => (await import('./commands/signing-key.js')).signingKeySetCommand(options, cliIo))
    })

  // The tenant lifecycle: every subcommand connects with the admin URL and reads the schema for the registry and tenant tables.
  const tenant = program.command('tenant').description('tenant lifecycle: create, list, remove, partition, export, import, rotate credentials (as an admin role)')
  const lifecycle = (command: Command) => jsonOption(tenantOptions(databaseOption(schemaOptions(command))))
  lifecycle(tenant.command('create <id>').description('register a tenant (idempotent; a rerun repairs what is missing)'))
    .option('--data <json>', "the registry row's other fields, as a JSON object")
    .option('--credentials', "also create the tenant's own login role; prints its connection string once, on stdout")
    .option('--app-role <role>', 'with --credentials: the application role, whose table privileges the tenant role gets')
    .action((id: string, options) => {
      select(async (cliIo) => (await import('./commands/tenant.js')).tenantCreateCommand(id, options, cliIo))
    })
  lifecycle(tenant.command('list').description('every tenant: id, created, whether it has credentials'))
    .option('--rows', 'also count its rows per tenant table')
    .action((options) => {
      select(async (cliIo) => (await import('./commands/tenant.js')).tenantListCommand(options, cliIo))
    })
  lifecycle(tenant.command('remove <id>').description('delete every row of a tenant in batches (resumable), then its registry row and login role'))
    .option('--yes', 'confirm: without it nothing is changed')
    .option('--batch-size <n>', 'rows deleted per transaction', '1000')
    .action((id: string, options) => {
      select(async (cliIo) => (await import('./commands/tenant.js')).tenantRemoveCommand(id, options, cliIo))
    })
  lifecycle(tenant.command('partition <id>').description("move a tenant's rows out of the DEFAULT partition into partitions of its own (tables marked @tenancy.partitioned), keeping every row")).action((id: string, options) => {
    select(async (cliIo) => (await import('./commands/tenant.js')).tenantPartitionCommand(id, options, cliIo))
  })
  lifecycle(tenant.command('export <id>').description("stream a tenant's rows as JSON Lines"))
    .option('--out <file>', 'write to this file (default: stdout)')
    .action((id: string, options) => {
      select(async (cliIo) => (await import('./commands/tenant.js')).tenantExportCommand(id, options, cliIo))
    })
  lifecycle(tenant.command('import <file>').description('load an export in one transaction, or resumably in batches (--batch-size)'))
    .option('--as <id>', 'import under this tenant id')
    .option('--replace', 'replace the tenant if it exists')
    .option('--batch-size <n>', 'commit every n rows; a rerun with the same file continues after the last committed batch')
    .action((file: string, options) => {
      select(async (cliIo) => (await import('./commands/tenant.js')).tenantImportCommand(file, options, cliIo))
    })
  lifecycle(tenant.command('rotate <id>').description("new password for a tenant's login role; prints its connection string once, on stdout")).action((id: string, options) => {
    select(async (cliIo) => (await import('./commands/tenant.js')).tenantRotateCommand(id, options, cliIo))
  })

  return program
}

/**
 * The command-line interface as a function: parses argv, runs one command and
 * returns its exit code. Nothing here calls process.exit, so it is testable
 * in-process. With --json, a failure is also printed on stdout as
 * `{ "error": { "code", "message", "fix" } }`.
 */
export async function runCli(argv: string[], io: CliIo = processIo): Promise<number> {
  // The version is machine output (stdout); commander would print it with the help text, on stderr.
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    io.stdout(packageVersion())
    return exitCodes.ok
  }
  let action: Action | undefined
  let json = false
  const program = buildProgram(io, (next) => (action = next))
  program.hook('preAction', (_, command) => {
    json = command.opts().json === true
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
    const { text, exitCode, error: failure } = formatError(error)
    if (json) io.stdout(JSON.stringify({ error: failure }))
    io.stderr(text)
    return exitCode
  }
}

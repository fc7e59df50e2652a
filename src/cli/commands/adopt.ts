import { adopt, type AdoptResult, type AdoptRunOptions } from '../../adopt/adopt.js'
import type { CliIo } from '../output.js'
import { exitCodes } from '../output.js'

export interface AdoptCommandOptions extends Omit<AdoptRunOptions, 'batchSize'> {
  /** From the command line: a string, checked by the planner once converted. */
  batchSize?: string | number | undefined
  json?: boolean | undefined
}

function describe({ plan, written, dryRun }: AdoptResult): string {
  const lines = [
    `Adoption plan: every existing row goes to tenant ${plan.defaultTenant}; backfill ${plan.batchSize === null ? 'in one transaction per table' : `${plan.batchSize} rows per transaction`}.`,
  ]
  for (const table of plan.tables) {
    lines.push(`${table.table} (model ${table.model}): ${table.rows} rows`)
    for (const index of table.steps) {
      const step = plan.steps[index]!
      lines.push(`  step ${index + 1}: ${step.description} (lock: ${step.lock})`)
    }
    if (table.steps.length === 0) lines.push('  nothing to change')
  }
  for (const table of plan.sharedTables) lines.push(`${table}: shared, left alone`)
  if (plan.steps.length === 0) lines.push('The database already matches the schema and its policies: nothing to adopt.')
  else {
    lines.push('Steps, each its own migration folder, in this order:')
    for (const [index, step] of plan.steps.entries()) lines.push(`  ${index + 1}. ${step.name} (${step.transactional ? 'one transaction' : 'outside a transaction'})`)
  }
  for (const finding of plan.findings) lines.push(`warning ${finding.code} ${finding.table}: ${finding.message}\n  fix: ${finding.fix}`)
  if (dryRun) lines.push('Dry run: nothing written.')
  else if (written.length > 0) {
    lines.push(
      `Wrote ${written.length} migration folders in ${plan.migrationsDir}:`,
      ...written.map((folder) => `  ${folder}`),
      'Deploy them with `prisma-tenancy migrate deploy` (or `prisma migrate deploy`) while the app runs. Switch the app to the tenancy client before the adopt_rls step.',
    )
  }
  return lines.join('\n')
}

/** `adopt`: prints the plan, then (unless --dry-run) writes the migration folders. */
export async function adoptCommand(options: AdoptCommandOptions, io: CliIo): Promise<number> {
  const batchSize = options.batchSize === undefined ? undefined : Number(options.batchSize)
  const result = await adopt({ ...options, batchSize })
  if (options.json === true) io.stdout(JSON.stringify(result))
  io.stderr(describe(result))
  return exitCodes.ok
}

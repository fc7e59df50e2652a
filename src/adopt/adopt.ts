import { parseMigrationName } from '../migrate/migrate.js'
import { migrationFolderName, readMigrationsDirectory, writeMigration } from '../migrate/migrations-directory.js'
import { generatePolicies } from '../policy/generate-policies.js'
import { ADOPT_LOCK_TIMEOUT, planAdoption, type AdoptionPlan, type AdoptionStep, type AdoptOptions } from './plan-adoption.js'

export interface AdoptRunOptions extends AdoptOptions {
  /** Plan only: print it, write nothing. */
  dryRun?: boolean | undefined
  /** Clock for the folder timestamps (one second apart, so they sort in step order). */
  now?: Date | undefined
}

export interface AdoptResult {
  plan: AdoptionPlan
  /** The migration folders written, in order (empty for a dry run or when nothing is left to adopt). */
  written: string[]
  dryRun: boolean
}

function renderStep(step: AdoptionStep, position: number, total: number): string {
  const lines = [
    `-- prisma-tenancy adopt, step ${position} of ${total}: ${step.description}.`,
    `-- Tables: ${step.tables.join(', ')}`,
    `-- Lock: ${step.lock}`,
    ...step.notes.map((note) => `-- ${note}`),
  ]
  if (step.transactional) {
    lines.push(`-- One transaction; it gives up instead of queueing every other query behind it.`, `SET LOCAL lock_timeout = '${ADOPT_LOCK_TIMEOUT}';`)
  } else {
    lines.push('-- A single statement, so that it runs outside a transaction block, as PostgreSQL requires.')
  }
  lines.push(...step.statements)
  return `${lines.join('\n')}\n`
}

/**
 * The first step's timestamp: now, or else one second after the newest folder, so
 * that the steps sort after every existing migration even within the same second.
 */
async function firstStamp(migrationsDir: string, now: Date): Promise<number> {
  const { migrationDirectories } = await readMigrationsDirectory(migrationsDir)
  const stamps = migrationDirectories.flatMap(({ path }) => {
    const match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})_/.exec(path)
    return match === null ? [] : [Date.UTC(+match[1]!, +match[2]! - 1, +match[3]!, +match[4]!, +match[5]!, +match[6]!)]
  })
  return Math.max(now.getTime(), ...stamps.map((stamp) => stamp + 1000))
}

/**
 * `prisma-tenancy adopt`: plans the adoption of an existing single-tenant
 * database (see planAdoption) and writes each step as its own migration
 * folder, to be applied by `migrate deploy` like any other. The
 * row-level security step is written by the policy generator itself.
 */
export async function adopt(options: AdoptRunOptions): Promise<AdoptResult> {
  const plan = await planAdoption(options)
  if (options.dryRun === true) return { plan, written: [], dryRun: true }
  const start = await firstStamp(plan.migrationsDir, options.now ?? new Date())
  const written: string[] = []
  for (const [index, step] of plan.steps.entries()) {
    const now = new Date(start + index * 1000)
    if (step.policies === true) {
      const generated = await generatePolicies({ ...options, name: step.name, now })
      if (generated.created !== null) written.push(generated.created)
      continue
    }
    const folder = migrationFolderName(parseMigrationName(step.name), now)
    written.push(await writeMigration(plan.migrationsDir, folder, renderStep(step, index + 1, plan.steps.length)))
  }
  return { plan, written, dryRun: false }
}

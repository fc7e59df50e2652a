import { migrateDeploy, migrateDev, markRolledBack, migrateStatus, type MigrateOptions } from '../../migrate/migrate.js'
import type { CliIo } from '../output.js'
import { exitCodes } from '../output.js'

export interface MigrateCommandOptions extends MigrateOptions {
  json?: boolean | undefined
}

function emit(io: CliIo, options: MigrateCommandOptions, result: object, human: string): void {
  if (options.json === true) io.stdout(JSON.stringify(result))
  io.stderr(human)
}

export async function migrateDeployCommand(options: MigrateCommandOptions, io: CliIo): Promise<number> {
  const result = await migrateDeploy(options)
  const human =
    result.applied.length === 0
      ? `No pending migrations in ${result.migrationsDir}.`
      : `Applied ${result.applied.length} migration(s):\n${result.applied.map((name) => `  ${name}`).join('\n')}`
  emit(io, options, result, human)
  return exitCodes.ok
}

export async function migrateDevCommand(options: MigrateCommandOptions & { name: string }, io: CliIo): Promise<number> {
  const result = await migrateDev(options)
  const lines = result.applied.map((name) => `  applied ${name}`)
  const human =
    result.created === null
      ? `The schema matches the migrations; no migration created.${lines.length > 0 ? `\n${lines.join('\n')}` : ''}`
      : `Created ${result.created}/migration.sql in ${result.migrationsDir}\n${lines.join('\n')}`
  emit(io, options, result, human)
  return exitCodes.ok
}

export async function migrateStatusCommand(options: MigrateCommandOptions, io: CliIo): Promise<number> {
  const result = await migrateStatus(options)
  const { diagnosis } = result
  const lines = [`${result.migrations.length} migration(s) in ${result.migrationsDir}`]
  if (diagnosis.history?.diagnostic === 'databaseIsBehind') lines.push(`Not yet applied: ${diagnosis.history.unappliedMigrationNames.join(', ')}`)
  if (diagnosis.history?.diagnostic === 'migrationsDirectoryIsBehind') lines.push(`Applied but missing locally: ${diagnosis.history.unpersistedMigrationNames.join(', ')}`)
  if (diagnosis.history?.diagnostic === 'historiesDiverge') lines.push('The database and the migrations folder have diverged.')
  if (diagnosis.failedMigrationNames.length > 0) lines.push(`Failed: ${diagnosis.failedMigrationNames.join(', ')}`)
  if (diagnosis.editedMigrationNames.length > 0) lines.push(`Edited after being applied: ${diagnosis.editedMigrationNames.join(', ')}`)
  if (result.upToDate) lines.push('Database schema is up to date.')
  emit(io, options, result, lines.join('\n'))
  return result.upToDate ? exitCodes.ok : exitCodes.failed
}

export async function migrateResolveCommand(options: MigrateCommandOptions & { rolledBack: string }, io: CliIo): Promise<number> {
  await markRolledBack({ ...options, migration: options.rolledBack })
  emit(io, options, { rolledBack: options.rolledBack }, `Marked ${options.rolledBack} as rolled back.`)
  return exitCodes.ok
}

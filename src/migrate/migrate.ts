import type { DiagnoseMigrationHistoryOutput, MigrationList, SchemaEngine } from '@prisma/schema-engine-wasm'
import { z } from 'zod'
import { readSchemaFiles, resolveProject, type ProjectOptions } from '../config/project-config.js'
import { databaseExists, ensureDatabase } from '../database/admin.js'
import { databaseName, parseDatabaseUrl, redactUrl, withDatabase } from '../database/connection-url.js'
import { TenancyError } from '../errors.js'
import { migrationFolderName, readMigrationsDirectory, writeMigration } from './migrations-directory.js'
import { openSchemaEngine, takeEnginePanic, type SchemaFile } from './schema-engine.js'

const noFilters = { externalTables: [], externalEnums: [] }

export interface MigrateOptions extends ProjectOptions {}

export interface MigrateDeployResult {
  applied: string[]
  migrationsDir: string
}

export interface MigrateDevResult extends MigrateDeployResult {
  /** The folder written, or null when the schema already matched the migrations. */
  created: string | null
}

export interface MigrateStatusResult {
  migrationsDir: string
  migrations: string[]
  /** The engine's own diagnosis, as `prisma migrate status` reads it. */
  diagnosis: DiagnoseMigrationHistoryOutput
  upToDate: boolean
}

interface Session {
  engine: SchemaEngine
  schemaFiles: SchemaFile[]
  migrations: MigrationList
  migrationsDir: string
}

/**
 * `database: 'create'` creates a missing database, as prisma migrate deploy and dev do;
 * `'existing'` (status, resolve) refuses one, so a mistyped name is not created.
 */
async function withEngine<T>(options: MigrateOptions, database: 'create' | 'existing', work: (session: Session) => Promise<T>): Promise<T> {
  const project = await resolveProject(options)
  const databaseUrl = parseDatabaseUrl(project.databaseUrl)
  const schemaFiles = await readSchemaFiles(project.schemaPath)
  if (database === 'create') await ensureDatabase(databaseUrl)
  else if (!(await databaseExists(databaseUrl, databaseName(databaseUrl)))) {
    throw new TenancyError(
      'DATABASE_UNREACHABLE',
      `The database ${databaseName(databaseUrl)} does not exist on ${redactUrl(withDatabase(databaseUrl, 'postgres'))}. Check the database name in the URL, or run prisma-tenancy migrate deploy to create it.`,
    )
  }
  const migrations = await readMigrationsDirectory(project.migrationsDir)
  const unreadable = migrations.migrationDirectories.find((dir) => dir.migrationFile.content.tag === 'error')
  if (unreadable !== undefined) {
    throw new TenancyError(
      'MIGRATION_FAILED',
      `The migration folder ${unreadable.path} has no migration.sql. Add the script or remove the folder from ${project.migrationsDir}.`,
    )
  }
  const { engine, close } = await openSchemaEngine(databaseUrl, schemaFiles)
  try {
    return await work({ engine, schemaFiles, migrations, migrationsDir: project.migrationsDir })
  } finally {
    await close()
  }
}

function migrationFailure(cause: unknown, action: string): TenancyError {
  // After a panic the engine throws a bare "unreachable"; the panic message says what happened.
  const panic = takeEnginePanic()
  const text = panic ?? (cause instanceof Error ? cause.message : String(cause))
  // The engine names the failing migration only in its span trace, after the message.
  const [message = text, trace = ''] = text.split(/\n\s+0: /)
  const migration = /migration_name="([^"]+)"/.exec(trace)?.[1]
  const advice =
    migration === undefined
      ? 'Check the database and the migrations folder, then run the command again.'
      : `Fix ${migration}/migration.sql, then run \`prisma-tenancy migrate resolve --rolled-back ${migration}\` and deploy again.`
  return new TenancyError('MIGRATION_FAILED', `${action} failed${migration === undefined ? '' : ` in ${migration}`}: ${message.trim()}\n${advice}`, {
    cause,
    details: migration === undefined ? {} : { migration },
  })
}

async function applyPending(session: Session): Promise<string[]> {
  try {
    const { appliedMigrationNames } = await session.engine.applyMigrations({ migrationsList: session.migrations, filters: noFilters })
    return appliedMigrationNames
  } catch (cause) {
    throw migrationFailure(cause, 'Applying migrations')
  }
}

/**
 * `migrate deploy`: applies every migration folder not yet recorded in
 * `_prisma_migrations`, each in the engine's usual way. A failed script is
 * recorded as failed exactly as Prisma records it, and nothing after it runs.
 */
export async function migrateDeploy(options: MigrateOptions = {}): Promise<MigrateDeployResult> {
  return withEngine(options, 'create', async (session) => ({ applied: await applyPending(session), migrationsDir: session.migrationsDir }))
}

const migrationName = z
  .string()
  .trim()
  .min(1, 'is empty')
  .max(200, 'is longer than 200 characters')
  .transform((name) => name.replace(/[^A-Za-z0-9_]+/g, '_').replace(/^_+|_+$/g, ''))
  .refine((name) => name.length > 0, 'has no letters or digits')

export function parseMigrationName(value: unknown): string {
  const parsed = migrationName.safeParse(value)
  if (!parsed.success) {
    throw new TenancyError(
      'MIGRATION_NAME_INVALID',
      `The migration name ${parsed.error.issues[0]?.message ?? 'is invalid'}. Pass --name with letters, digits and underscores, e.g. --name add_projects.`,
      { cause: parsed.error },
    )
  }
  return parsed.data
}

/**
 * `migrate dev`: applies pending migrations, diffs the migration history
 * (replayed on a shadow database) against the schema, writes the difference
 * as a new migration folder, and applies it.
 */
export async function migrateDev(options: MigrateOptions & { name: string }): Promise<MigrateDevResult> {
  const name = parseMigrationName(options.name)
  const { applied, script, migrationsDir } = await withEngine(options, 'create', async (session) => {
    const applied = await applyPending(session)
    const diff = await session.engine
      .diff({
        from: { tag: 'migrations', ...session.migrations },
        to: { tag: 'schemaDatamodel', files: session.schemaFiles },
        script: true,
        exitCode: true,
        filters: noFilters,
      })
      .catch((cause: unknown) => {
        throw migrationFailure(cause, 'Diffing the schema against the migration history')
      })
    // With exitCode requested, the engine answers 2 when there is a difference.
    return { applied, script: diff.exitCode === 2 ? (diff.stdout ?? '') : null, migrationsDir: session.migrationsDir }
  })
  if (script === null) return { created: null, applied, migrationsDir }
  const created = await writeMigration(migrationsDir, migrationFolderName(name), script)
  const second = await migrateDeploy(options)
  return { created, applied: [...applied, ...second.applied], migrationsDir }
}

/** `migrate status`: the engine's diagnosis of the database against the migrations folder. */
export async function migrateStatus(options: MigrateOptions = {}): Promise<MigrateStatusResult> {
  return withEngine(options, 'existing', async (session) => {
    const diagnosis = await session.engine.diagnoseMigrationHistory({
      migrationsList: session.migrations,
      optInToShadowDatabase: false,
      filters: noFilters,
    })
    return {
      migrationsDir: session.migrationsDir,
      migrations: session.migrations.migrationDirectories.map((dir) => dir.path),
      diagnosis,
      upToDate: diagnosis.history === null && diagnosis.failedMigrationNames.length === 0 && diagnosis.editedMigrationNames.length === 0,
    }
  })
}

/** `migrate resolve --rolled-back`: marks a failed migration as rolled back so deploy can run again. */
export async function markRolledBack(options: MigrateOptions & { migration: string }): Promise<void> {
  await withEngine(options, 'existing', async (session) => {
    const known = session.migrations.migrationDirectories.map((dir) => dir.path)
    if (!known.includes(options.migration)) {
      throw new TenancyError(
        'MIGRATION_NAME_INVALID',
        `There is no migration folder named ${options.migration} in ${session.migrationsDir}. Pass the failed migration's folder name, as \`prisma-tenancy migrate status\` lists it.`,
        { details: { migrations: known } },
      )
    }
    await session.engine.markMigrationRolledBack({ migrationName: options.migration }).catch((cause: unknown) => {
      throw migrationFailure(cause, `Marking ${options.migration} as rolled back`)
    })
  })
}

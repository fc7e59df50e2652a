import type { PrismaConfigInternal } from '@prisma/config'
import { readFile, readdir, stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { TenancyError } from '../errors.js'
import type { SchemaFile } from '../migrate/schema-engine.js'

export interface ProjectOptions {
  /** Directory to start from. Default: the current directory. */
  cwd?: string | undefined
  /** Path to prisma.config.ts. Default: found the way the Prisma CLI finds it. */
  config?: string | undefined
  /** Overrides the config's schema path. */
  schema?: string | undefined
  /** Overrides the config's migrations path. */
  migrations?: string | undefined
  /** Overrides the config's datasource URL. */
  databaseUrl?: string | undefined
  /** Overrides the config's datasource.shadowDatabaseUrl. */
  shadowDatabaseUrl?: string | undefined
}

export interface Project {
  root: string
  /** The schema file, or the folder of schema files. */
  schemaPath: string
  migrationsDir: string
  /** The datasource URL, when the config or the caller names one. */
  databaseUrl: string | undefined
  /** datasource.shadowDatabaseUrl: the database `migrate dev` replays migrations in, instead of creating one. */
  shadowDatabaseUrl: string | undefined
  configFile: string | null
}

/**
 * Resolves schema, migrations folder and datasource URL from prisma.config.ts
 * (read with Prisma's own loader) with explicit options taking precedence, and
 * Prisma's defaults (prisma/schema.prisma, migrations beside the schema) when
 * there is no config file.
 */
export async function resolveProject(options: ProjectOptions = {}): Promise<Project> {
  const root = resolve(options.cwd ?? process.cwd())
  // Loaded on use: Prisma's config loader (and the effect library under it) adds ~40 MB to a process.
  const { loadConfigFromFile } = await import('@prisma/config')
  const loaded = await loadConfigFromFile({ configRoot: root, ...(options.config === undefined ? {} : { configFile: resolve(root, options.config) }) })
  if (loaded.error !== undefined && !(loaded.error._tag === 'ConfigFileNotFound' && options.config === undefined)) {
    const detail = 'error' in loaded.error ? `: ${loaded.error.error.message}` : ''
    throw new TenancyError(
      'CONFIG_INVALID',
      `Could not load the Prisma config${options.config === undefined ? '' : ` ${options.config}`} (${loaded.error._tag}${detail}). Fix the file or pass --schema and --migrations instead.`,
      { cause: loaded.error },
    )
  }
  const config: Partial<PrismaConfigInternal> = loaded.config ?? {}
  const configFile = loaded.resolvedPath ?? null
  const configDir = configFile === null ? root : dirname(configFile)
  const schemaPath = options.schema !== undefined ? resolve(root, options.schema) : config.schema !== undefined ? resolve(configDir, config.schema) : join(root, 'prisma', 'schema.prisma')
  const schemaDir = schemaPath.endsWith('.prisma') ? dirname(schemaPath) : schemaPath
  const migrationsDir =
    options.migrations !== undefined
      ? resolve(root, options.migrations)
      : config.migrations?.path !== undefined
        ? resolve(configDir, config.migrations.path)
        : join(schemaDir, 'migrations')
  const configUrl = config.datasource?.url
  const databaseUrl = options.databaseUrl ?? (configUrl === undefined || configUrl === '' ? undefined : configUrl)
  const configShadow = config.datasource?.shadowDatabaseUrl
  const shadowDatabaseUrl = options.shadowDatabaseUrl ?? (configShadow === undefined || configShadow === '' ? undefined : configShadow)
  return { root, schemaPath, migrationsDir, databaseUrl, shadowDatabaseUrl, configFile }
}

/**
 * The schema and the database URL: from --schema and --database-url alone when
 * both are given and no --config is, since the config could change neither (so
 * its loader, ~40 MB, stays unloaded); else as resolveProject finds them.
 */
export async function resolveSchemaAndDatabase(options: ProjectOptions = {}): Promise<Pick<Project, 'schemaPath' | 'databaseUrl'>> {
  if (options.schema === undefined || options.databaseUrl === undefined || options.config !== undefined) return resolveProject(options)
  return { schemaPath: resolve(options.cwd ?? process.cwd(), options.schema), databaseUrl: options.databaseUrl }
}

/** Reads the schema: one file, or every *.prisma file below a folder (Prisma's multi-file schemas). */
export async function readSchemaFiles(schemaPath: string): Promise<SchemaFile[]> {
  let isDirectory: boolean
  try {
    isDirectory = (await stat(schemaPath)).isDirectory()
  } catch (cause) {
    throw new TenancyError(
      'SCHEMA_NOT_FOUND',
      `No Prisma schema at ${schemaPath}. Create it, point prisma.config.ts at it (schema: '...'), or pass --schema <path>.`,
      { cause },
    )
  }
  if (!isDirectory) return [{ path: schemaPath, content: await readFile(schemaPath, 'utf8') }]
  const names = (await readdir(schemaPath, { recursive: true })).filter((name) => name.endsWith('.prisma')).sort()
  if (names.length === 0) {
    throw new TenancyError('SCHEMA_NOT_FOUND', `The schema folder ${schemaPath} holds no .prisma files. Add the schema there or pass --schema <file>.`)
  }
  return Promise.all(names.map(async (name) => ({ path: join(schemaPath, name), content: await readFile(join(schemaPath, name), 'utf8') })))
}

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
export async function resolveProject(options: ProjectOptions = {}, where: ConfigLoading = 'here'): Promise<Project> {
  const root = resolve(options.cwd ?? process.cwd())
  const configFile = options.config === undefined ? undefined : resolve(root, options.config)
  const loaded = where === 'child-process' ? await loadConfigInChildProcess(root, configFile) : summarizeConfig(await loadConfigHere(root, configFile))
  if (loaded.error !== null && !(loaded.error.tag === 'ConfigFileNotFound' && options.config === undefined)) {
    const detail = loaded.error.message === undefined ? '' : `: ${loaded.error.message}`
    throw new TenancyError(
      'CONFIG_INVALID',
      `Could not load the Prisma config${options.config === undefined ? '' : ` ${options.config}`} (${loaded.error.tag}${detail}). Fix the file or pass --schema and --migrations instead.`,
      { cause: loaded.error },
    )
  }
  const { config } = loaded
  const configDir = loaded.resolvedPath === null ? root : dirname(loaded.resolvedPath)
  const schemaPath = options.schema !== undefined ? resolve(root, options.schema) : config.schema !== undefined ? resolve(configDir, config.schema) : join(root, 'prisma', 'schema.prisma')
  const schemaDir = schemaPath.endsWith('.prisma') ? dirname(schemaPath) : schemaPath
  const migrationsDir =
    options.migrations !== undefined
      ? resolve(root, options.migrations)
      : config.migrationsPath !== undefined
        ? resolve(configDir, config.migrationsPath)
        : join(schemaDir, 'migrations')
  const databaseUrl = options.databaseUrl ?? (config.url === undefined || config.url === '' ? undefined : config.url)
  const shadowDatabaseUrl = options.shadowDatabaseUrl ?? (config.shadowDatabaseUrl === undefined || config.shadowDatabaseUrl === '' ? undefined : config.shadowDatabaseUrl)
  return { root, schemaPath, migrationsDir, databaseUrl, shadowDatabaseUrl, configFile: loaded.resolvedPath }
}

/**
 * Where Prisma's config loader runs. It and the effect library under it add ~40 MB to a process that
 * keeps them; 'child-process' reads the config in a node process that exits after (~0.4 s a call),
 * for the commands whose memory is for rows (tenant export).
 */
export type ConfigLoading = 'here' | 'child-process'

/** What we use of a loaded config, as plain JSON: the same from this process and from a child's stdout. */
interface ConfigSummary {
  config: { schema?: string; migrationsPath?: string; url?: string; shadowDatabaseUrl?: string }
  resolvedPath: string | null
  error: { tag: string; message?: string } | null
}

type LoadedPrismaConfig = Awaited<ReturnType<typeof import('@prisma/config').loadConfigFromFile>>

async function loadConfigHere(configRoot: string, configFile: string | undefined): Promise<LoadedPrismaConfig> {
  const { loadConfigFromFile } = await import('@prisma/config')
  return loadConfigFromFile({ configRoot, ...(configFile === undefined ? {} : { configFile }) })
}

// Also sent as source text to the child process (loadConfigInChildProcess): it must use nothing outside itself.
function summarizeConfig(loaded: LoadedPrismaConfig): ConfigSummary {
  const config: Partial<PrismaConfigInternal> = loaded.config ?? {}
  const error = loaded.error === undefined ? null : { tag: loaded.error._tag, ...('error' in loaded.error ? { message: loaded.error.error.message } : {}) }
  return {
    config: { schema: config.schema, migrationsPath: config.migrations?.path, url: config.datasource?.url, shadowDatabaseUrl: config.datasource?.shadowDatabaseUrl },
    resolvedPath: loaded.resolvedPath ?? null,
    error,
  }
}

// CommonJS evaluated as it is (-e), so the same child runs from src/ (vitest, tsx) and from dist/.
const childSource = `const [loaderPath, configRoot, configFile] = process.argv.slice(1)
require(loaderPath).loadConfigFromFile({ configRoot, ...(configFile ? { configFile } : {}) })
  .then((loaded) => process.stdout.write(JSON.stringify((${summarizeConfig.toString()})(loaded))))
  .catch((error) => { process.stderr.write(String(error && error.stack || error)); process.exitCode = 1 })`

async function loadConfigInChildProcess(configRoot: string, configFile: string | undefined): Promise<ConfigSummary> {
  const { execFile } = await import('node:child_process')
  const { createRequire } = await import('node:module')
  const loaderPath = createRequire(import.meta.url).resolve('@prisma/config')
  return new Promise((done, fail) => {
    execFile(process.execPath, ['-e', childSource, loaderPath, configRoot, configFile ?? ''], { cwd: configRoot, env: process.env, maxBuffer: 1 << 20 }, (cause, stdout, stderr) => {
      if (cause === null) return done(JSON.parse(stdout) as ConfigSummary)
      fail(new TenancyError('CONFIG_INVALID', `Could not load the Prisma config in a child process: ${stderr.trim() || cause.message}. Fix the file or pass --schema and --database-url instead.`, { cause }))
    })
  })
}

/**
 * The schema and the database URL: from --schema and --database-url alone when
 * both are given and no --config is, since the config could change neither (so
 * its loader, ~40 MB, stays unloaded); else as resolveProject finds them.
 */
export async function resolveSchemaAndDatabase(options: ProjectOptions = {}, where: ConfigLoading = 'here'): Promise<Pick<Project, 'schemaPath' | 'databaseUrl'>> {
  if (options.schema === undefined || options.databaseUrl === undefined || options.config !== undefined) return resolveProject(options, where)
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

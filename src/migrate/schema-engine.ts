import { PrismaPg } from '@prisma/adapter-pg'

type PrismaPgAdapter = Awaited<ReturnType<PrismaPg['connect']>>
import { bindMigrationAwareSqlAdapterFactory, ColumnTypeEnum, type SqlQueryable } from '@prisma/driver-adapter-utils'
import type { SchemaEngine } from '@prisma/schema-engine-wasm'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import pg from 'pg'
import { randomUUID } from 'node:crypto'
import { quoteIdent } from '../database/sql-identifiers.js'
import { splitStatements } from './sql-statements.js'
import { parseIntoClientConfig } from 'pg-connection-string'

type WasmBindings = typeof import('@prisma/schema-engine-wasm/schema_engine_bg')
// Node has WebAssembly; the ES lib this project compiles against does not declare it.
const { WebAssembly } = globalThis as unknown as {
  WebAssembly: { instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: { exports: object } }> }
}

const PG_CHAR_OID = 18
const PG_TEXT_OID = 25
const CHAR_COLUMN_MARK = '\u0000char'

/**
 * The schema engine describes databases with catalog queries whose columns
 * are of PostgreSQL's one-byte `"char"` type (relkind, contype, ...).
 * @prisma/adapter-pg rejects that type, and the engine insists on reading
 * those columns as characters. So, for the engine's connections only (never
 * an application's): node-postgres announces such a column as text, marked
 * by its name, and the adapter's result is then corrected to Character.
 */
class CatalogClient extends pg.Client {
  // node-postgres' query() has many overloads; this forwards every one of them.
  override query(...args: unknown[]): never {
    const markCharColumns = (result: pg.QueryResult | undefined) => {
      for (const field of result?.fields ?? []) {
        if (field.dataTypeID !== PG_CHAR_OID) continue
        field.dataTypeID = PG_TEXT_OID
        field.name += CHAR_COLUMN_MARK
      }
      return result
    }
    const callbackIndex = args.findIndex((arg) => typeof arg === 'function')
    if (callbackIndex >= 0) {
      const callback = args[callbackIndex] as (error: Error | null, result?: pg.QueryResult) => void
      args[callbackIndex] = (error: Error | null, result?: pg.QueryResult) => callback(error, markCharColumns(result))
      return (super.query as (...a: unknown[]) => never)(...args)
    }
    const pending = (super.query as (...a: unknown[]) => unknown)(...args)
    return (pending instanceof Promise ? pending.then(markCharColumns) : pending) as never
  }
}

function readCharColumns<Q extends SqlQueryable>(queryable: Q): Q {
  const queryRaw = queryable.queryRaw.bind(queryable)
  queryable.queryRaw = async (query) => {
    const result = await queryRaw(query)
    result.columnNames.forEach((name, index) => {
      if (!name.endsWith(CHAR_COLUMN_MARK)) return
      result.columnNames[index] = name.slice(0, -CHAR_COLUMN_MARK.length)
      result.columnTypes[index] = ColumnTypeEnum.Character
    })
    return result
  }
  return queryable
}

/**
 * The engine's connections: `"char"` columns read as characters (above), and
 * a migration script sent as one simple-protocol query, as the native engine
 * sends it (on Citus, statement by statement in one transaction: below). PostgreSQL runs such a multi-statement query as one implicit
 * transaction, so a failing script leaves nothing half-applied; the
 * adapter's own executeScript splits at every `;` (breaking strings and
 * function bodies too) and runs the pieces one by one.
 */
function engineConnection<A extends PrismaPgAdapter>(adapter: A): A {
  const startTransaction = adapter.startTransaction.bind(adapter)
  adapter.startTransaction = async (isolationLevel) => readCharColumns(await startTransaction(isolationLevel))
  adapter.executeScript = async (script) => {
    try {
      const pool = adapter.underlyingDriver()
      if (await runsCitus(pool)) await runStatementByStatement(pool, script)
      else await pool.query(script)
    } catch (error) {
      // The adapter's own conversion to the engine's error shape (protected in its typings only).
      ;(adapter as unknown as { onError(error: unknown): never }).onError(error)
    }
  }
  return readCharColumns(adapter)
}

const citusInstalledSql = "SELECT 1 FROM pg_extension WHERE extname = 'citus'"

async function runsCitus(pool: pg.Pool): Promise<boolean> {
  return ((await pool.query(citusInstalledSql)).rowCount ?? 0) > 0
}

/**
 * On Citus, a migration script goes statement by statement in one explicit
 * transaction: Citus forwards a DDL statement on a distributed table (ALTER
 * TABLE, ALTER ROLE ... SET) to the workers with the whole query string it
 * came in, and the workers refuse a multi-statement string ("cannot insert
 * multiple commands into a prepared statement"). The transaction keeps the
 * single-query guarantee: a failing script leaves nothing half-applied.
 */
async function runStatementByStatement(pool: pg.Pool, script: string): Promise<void> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    for (const statement of splitStatements(script)) await client.query(statement)
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw error
  } finally {
    client.release()
  }
}

/**
 * Our connections (above). Also, @prisma/adapter-pg's own
 * shadow database drops the database while its pool
 * still holds a connection to it, which PostgreSQL refuses, leaving the
 * shadow database behind. This one closes the pool first.
 */
class EngineAdapterFactory extends PrismaPg {
  override async connect() {
    return engineConnection(await super.connect())
  }

  constructor(
    pool: pg.Pool,
    private readonly engineConfig: pg.PoolConfig,
    private readonly shadowUrl: string | undefined,
  ) {
    super(pool)
  }

  override async connectToShadowDb() {
    if (this.shadowUrl !== undefined) return this.#connectToConfiguredShadowDb(this.shadowUrl)
    const name = `prisma_migrate_shadow_db_${randomUUID()}`
    try {
      await this.#runOnServer(`CREATE DATABASE ${quoteIdent(name)}`)
    } catch (error) {
      // The engine reports any failure here as "Failed to connect to the shadow database"; keep the real cause.
      if ((error as { code?: string }).code === '42501') shadowRefusal = { user: String(this.engineConfig.user ?? 'the connecting role'), message: (error as Error).message }
      throw error
    }
    const pool = enginePool({ ...this.engineConfig, database: name })
    const dropShadow = async () => {
      await pool.end().catch(() => undefined)
      await this.#runOnServer(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`)
    }
    let adapter: PrismaPgAdapter
    try {
      adapter = engineConnection(await new PrismaPg(pool).connect())
    } catch (error) {
      await dropShadow()
      throw error
    }
    const dispose = adapter.dispose.bind(adapter)
    adapter.dispose = async () => {
      try {
        await dispose()
      } finally {
        await dropShadow()
      }
    }
    return adapter
  }

  /**
   * datasource.shadowDatabaseUrl, as the Prisma CLI uses it: an existing
   * database, emptied before the migrations are replayed in it (every schema
   * the connecting role owns is dropped, and public created again).
   */
  async #connectToConfiguredShadowDb(url: string) {
    const config = { ...parseIntoClientConfig(url), Client: CatalogClient, max: 2 }
    const client = new pg.Client(config)
    await client.connect()
    try {
      const { rows } = await client.query<{ nspname: string }>(
        "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' AND pg_has_role(nspowner, 'USAGE') ORDER BY nspname",
      )
      for (const { nspname } of rows) await client.query(`DROP SCHEMA ${quoteIdent(nspname)} CASCADE`)
      await client.query('CREATE SCHEMA IF NOT EXISTS public')
    } finally {
      await client.end()
    }
    const pool = enginePool(config)
    const adapter = engineConnection(await new PrismaPg(pool).connect())
    const dispose = adapter.dispose.bind(adapter)
    adapter.dispose = async () => {
      try {
        await dispose()
      } finally {
        await pool.end().catch(() => undefined)
      }
    }
    return adapter
  }

  async #runOnServer(sql: string): Promise<void> {
    const client = new pg.Client(this.engineConfig)
    await client.connect()
    try {
      await client.query(sql)
    } finally {
      await client.end()
    }
  }
}

/**
 * pg's Pool#end resolves before its connections have closed. Dropping the
 * database right after (WITH (FORCE), as for shadow and test databases) can
 * make the server end a still-closing connection with an error, which a pool
 * without a listener rethrows as an uncaught exception. The pool has already
 * discarded that connection, and a query on a broken one fails on its own.
 */
function enginePool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool(config)
  pool.on('error', () => undefined)
  return pool
}

let shadowRefusal: { user: string; message: string } | undefined

/** Whether the server refused to create a shadow database (no CREATEDB) since the last call. */
export function takeShadowRefusal(): { user: string; message: string } | undefined {
  const refusal = shadowRefusal
  shadowRefusal = undefined
  return refusal
}

let bindings: Promise<WasmBindings> | undefined
let lastPanic: string | undefined

/** The message of the engine's last panic, if it panicked. */
export function takeEnginePanic(): string | undefined {
  const message = lastPanic
  lastPanic = undefined
  return message
}

/** Instantiates the engine's WebAssembly once per process. */
function loadBindings(): Promise<WasmBindings> {
  bindings ??= (async () => {
    // The engine reports Rust panics through this global before it throws; keep
    // the message so the thrown error can say what went wrong.
    const registry = globalThis as unknown as { PRISMA_WASM_PANIC_REGISTRY?: { set_message(message: string): void } }
    registry.PRISMA_WASM_PANIC_REGISTRY ??= { set_message: (message) => (lastPanic = message) }
    const bg = await import('@prisma/schema-engine-wasm/schema_engine_bg')
    const require = createRequire(import.meta.url)
    const wasmPath = join(dirname(require.resolve('@prisma/schema-engine-wasm/schema_engine_bg')), 'schema_engine_bg.wasm')
    const { instance } = await WebAssembly.instantiate(await readFile(wasmPath), { './schema_engine_bg.js': bg })
    bg.__wbg_set_wasm(instance.exports as Parameters<WasmBindings['__wbg_set_wasm']>[0])
    ;(instance.exports as { __wbindgen_start?: () => void }).__wbindgen_start?.()
    return bg
  })()
  return bindings
}

export interface SchemaFile {
  path: string
  content: string
}

export interface OpenSchemaEngine {
  engine: SchemaEngine
  close(): Promise<void>
}

/**
 * Prisma's own schema engine (the one behind `prisma migrate`), compiled to
 * WebAssembly and connected through the pg driver adapter. Shadow databases
 * for diffing are created and dropped through the same connection, or, with
 * shadowDatabaseUrl, the one given is emptied and used.
 */
export async function openSchemaEngine(databaseUrl: string, schemaFiles: SchemaFile[], shadowDatabaseUrl?: string): Promise<OpenSchemaEngine> {
  const bg = await loadBindings()
  // Discrete fields, not a connectionString: the adapter makes shadow databases by
  // overriding `database` in this config, which a connectionString would win over.
  const config = { ...parseIntoClientConfig(databaseUrl), Client: CatalogClient, max: 2 }
  const pool = enginePool(config)
  const adapter = bindMigrationAwareSqlAdapterFactory(new EngineAdapterFactory(pool, config, shadowDatabaseUrl))
  const log = () => undefined
  let engine: SchemaEngine
  try {
    engine = await bg.SchemaEngine.new({ datamodels: schemaFiles.map((file) => [file.path, file.content]) }, log, adapter)
  } catch (error) {
    await pool.end().catch(() => undefined)
    throw error
  }
  return {
    engine,
    async close() {
      try {
        engine.free()
      } finally {
        await pool.end().catch(() => undefined)
      }
    },
  }
}

import { createHash } from 'node:crypto'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { z } from 'zod'
import { quoteIdent } from '../database/sql-identifiers.js'
import { TenancyError } from '../errors.js'
import { exportHeaderSchema, exportRowSchema, type ExportHeader } from './export-format.js'
import { registryHas, tenantMatch, withLifecycleDatabase, type LifecycleDatabase, type LifecycleTable, type TenantLifecycleOptions } from './tenant-database.js'
import { LIFECYCLE_SCHEMA } from './tenant-roles.js'

export interface ImportTenantOptions extends TenantLifecycleOptions {
  /** The JSON Lines of `exportTenant` (a file stream, process.stdin). */
  input: Readable
  /** Import under this tenant id instead of the exported one. */
  as?: string | undefined
  /** Replace a tenant that exists already (its rows are deleted in the same transaction). */
  replace?: boolean | undefined
  onProgress?: ((progress: { table: string; rows: number }) => void) | undefined
  /**
   * Resumable: commit every this many rows, with the file position kept in the database, so a
   * run that stops (a refused row, a lost connection) is continued by running it again with the
   * same file. Without it, the import is one transaction.
   */
  batchSize?: number | undefined
}

export interface ImportTenantResult {
  tenant: string
  /** The id in the file. */
  exportedTenant: string
  replaced: boolean
  /** True when this run continued an interrupted resumable import (batchSize) of the same file. */
  resumed: boolean
  /** The migration the export was taken at, and the latest one here. */
  migration: { exported: string | null }
  tables: { table: string; rows: number }[]
}

// PostgreSQL takes at most 65535 parameters per statement.
const MAX_PARAMETERS = 60_000
const MAX_BATCH_ROWS = 500
/** Resumable imports under way: the file (its header's hash) and the last line whose row is committed. */
const IMPORT_TABLE = `${LIFECYCLE_SCHEMA}.tenant_import`

const batchSizeSchema = z.number().int().min(1).max(1_000_000).optional()

const nothingImported = 'Nothing was imported; fix the file (or export it again with `prisma-tenancy tenant export`).'

type Invalid = (line: number, message: string, cause?: unknown) => TenancyError

function invalidWith(after: () => string): Invalid {
  return (line, message, cause) => new TenancyError('IMPORT_INVALID', `Line ${line} of the import: ${message}. ${after()}`, { cause, details: { line } })
}

const invalid = invalidWith(() => nothingImported)

function parseLine<T>(text: string, line: number, schema: { safeParse(value: unknown): { success: true; data: T } | { success: false; error: { issues: ReadonlyArray<{ message: string; path: PropertyKey[] }> } } }, what: string, fail: Invalid = invalid): T {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (cause) {
    throw fail(line, `not valid JSON (${(cause as Error).message})`, cause)
  }
  const parsed = schema.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw fail(line, `not ${what}: ${issue?.path.map(String).join('.') ?? ''} ${issue?.message ?? ''}`.trimEnd(), parsed.error)
  }
  return parsed.data
}

/** Whether any tenant table holds a row of `tenant` (one query at a time: one connection). */
async function tenantHasRows(database: LifecycleDatabase, tenant: string): Promise<boolean> {
  for (const table of database.tables) {
    if ((await database.client.query(`SELECT 1 FROM ${table.sql} WHERE ${tenantMatch(table, '$1')} LIMIT 1`, [tenant])).rowCount === 1) return true
  }
  return false
}

/**
 * Loads a tenant export, under its own id or another (`as`), in one
 * transaction: a malformed line, a row of another tenant, a table or column this
 * database lacks, or a file shorter than its header says rolls everything back.
 * An existing tenant is refused unless `replace`. With `batchSize` it commits
 * every batchSize rows instead and keeps its place in the database: a run that
 * stops leaves the rows of the committed batches, and running it again with the
 * same file continues after them (every line is still read and checked).
 */
export async function importTenant(options: ImportTenantOptions): Promise<ImportTenantResult> {
  const batchSize = batchSizeSchema.safeParse(options.batchSize ?? undefined)
  if (!batchSize.success) throw new TenancyError('CONFIG_INVALID', '--batch-size must be a whole number from 1 to 1000000.', { cause: batchSize.error })
  const batch = batchSize.data
  return withLifecycleDatabase(options, async (database) => {
    const { client } = database
    const lines = createInterface({ input: options.input, crlfDelay: Infinity })[Symbol.asyncIterator]()
    const first = await lines.next()
    if (first.done === true) throw invalid(1, 'the file is empty')
    const header: ExportHeader = parseLine(first.value, 1, exportHeaderSchema, 'a prisma-tenancy export header')
    const tenant = database.validateId(options.as ?? header.tenant)
    // Which file a resumable import is of: a rerun continues only the same export.
    const file = createHash('sha256').update(first.value).digest('hex')

    const known = new Map<string, LifecycleTable>([database.registry, ...database.tables].map((table) => [table.name, table]))
    const plan = new Map<string, { target: LifecycleTable; header: ExportHeader['tables'][number]; rows: number }>()
    for (const entry of header.tables) {
      const target = known.get(entry.table)
      if (target === undefined || (entry.registry !== (target === database.registry))) {
        throw invalid(1, `the export holds ${entry.registry ? 'the registry' : 'the tenant table'} ${entry.table}, which this database's schema does not have as such`)
      }
      const missing = entry.columns.filter((column) => !target.columns.some((candidate) => candidate.name === column.name))
      if (missing.length > 0) throw invalid(1, `${entry.table} here has no column ${missing.map((column) => column.name).join(', ')}; migrate this database to the export's migration (${header.migration ?? 'unknown'}) first`)
      if (entry.column !== target.column) throw invalid(1, `${entry.table} keeps the tenant in ${entry.column} in the export but in ${target.column} here`)
      plan.set(entry.table, { target, header: entry, rows: 0 })
    }

    if (batch !== undefined) {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${LIFECYCLE_SCHEMA}`)
      await client.query(`CREATE TABLE IF NOT EXISTS ${IMPORT_TABLE} (tenant_id text PRIMARY KEY, file_sha256 text NOT NULL, committed_line bigint NOT NULL DEFAULT 1)`)
    }
    // The line whose row the last committed batch ended with (1: the header, no rows yet).
    let committedLine = 1
    const fail = invalidWith(() =>
      batch === undefined || committedLine === 1
        ? nothingImported
        : `The rows up to line ${committedLine} are imported; fix the file or the database and run the same import again to continue after them, or pass --replace to start over.`,
    )
    await client.query('BEGIN')
    try {
      const progress = batch === undefined ? undefined : (await client.query<{ file: string; line: string }>(`SELECT file_sha256 AS file, committed_line AS line FROM ${IMPORT_TABLE} WHERE tenant_id = $1 FOR UPDATE`, [tenant])).rows[0]
      const resumed = progress !== undefined && progress.file === file && options.replace !== true
      let rowsExist = false
      if (resumed) {
        committedLine = Number(progress.line)
      } else {
        rowsExist = (await registryHas(database, tenant)) || (await tenantHasRows(database, tenant))
        if (rowsExist && options.replace !== true) {
          const other = progress === undefined ? '' : ' (an interrupted resumable import of another file left it)'
          throw new TenancyError('TENANT_EXISTS', `Tenant ${JSON.stringify(tenant)} already exists here${other}. Nothing was imported: pass --replace to replace its rows, or --as <id> to import under another id.`, { details: { tenant } })
        }
        if (rowsExist) {
          for (const table of [...database.tables].reverse()) await client.query(`DELETE FROM ${table.sql} WHERE ${tenantMatch(table, '$1')}`, [tenant])
          await client.query(`DELETE FROM ${database.registry.sql} WHERE ${tenantMatch(database.registry, '$1')}`, [tenant])
        }
        if (batch !== undefined) {
          await client.query(`INSERT INTO ${IMPORT_TABLE} (tenant_id, file_sha256) VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE SET file_sha256 = excluded.file_sha256, committed_line = 1`, [tenant, file])
        }
      }

      let pending: { table: string; values: (string | null)[][]; columns: string[] } | null = null
      let firstLine = 0
      const flush = async () => {
        if (pending === null || pending.values.length === 0) return
        const { target } = plan.get(pending.table)!
        const types = pending.columns.map((name) => target.columns.find((column) => column.name === name)!.type)
        const width = pending.columns.length
        const tuples = pending.values.map((_, row) => `(${types.map((type, column) => `$${row * width + column + 1}::${type}`).join(', ')})`)
        const sql = `INSERT INTO ${target.sql} (${pending.columns.map(quoteIdent).join(', ')}) OVERRIDING SYSTEM VALUE VALUES ${tuples.join(', ')}`
        const done = pending
        pending = null
        await client.query(sql, done.values.flat()).catch((cause: Error) => {
          throw fail(firstLine, `PostgreSQL refused rows of ${done.table}: ${cause.message}`, cause)
        })
      }

      let line = 1
      let uncommitted = 0
      for (;;) {
        const next = await lines.next()
        if (next.done === true) break
        line += 1
        if (next.value.trim() === '') continue
        const { table, row } = parseLine(next.value, line, exportRowSchema, 'a row line ({"table": ..., "row": {...}})', fail)
        const entry = plan.get(table)
        if (entry === undefined) throw fail(line, `a row of ${table}, which the header does not list`)
        const columns = entry.header.columns.map((column) => column.name)
        const extra = Object.keys(row).filter((name) => !columns.includes(name))
        if (extra.length > 0) throw fail(line, `a row of ${table} with column(s) the header does not list: ${extra.join(', ')}`)
        if (row[entry.target.column] !== header.tenant) throw fail(line, `a row of ${table} whose ${entry.target.column} is ${JSON.stringify(row[entry.target.column] ?? null)}, not the exported tenant ${JSON.stringify(header.tenant)}`)
        entry.rows += 1
        // Rows an earlier run committed: checked and counted, not inserted again.
        if (line <= committedLine) continue
        const values = columns.map((name) => (name === entry.target.column ? tenant : (row[name] ?? null)))
        if (pending !== null && (pending.table !== table || pending.values.length >= Math.min(MAX_BATCH_ROWS, Math.floor(MAX_PARAMETERS / columns.length)))) await flush()
        if (pending === null) {
          pending = { table, columns, values: [] }
          firstLine = line
        }
        pending.values.push(values)
        if (entry.rows % 10_000 === 0) options.onProgress?.({ table, rows: entry.rows })
        uncommitted += 1
        if (batch !== undefined && uncommitted >= batch) {
          await flush()
          await client.query(`UPDATE ${IMPORT_TABLE} SET committed_line = $2 WHERE tenant_id = $1`, [tenant, line])
          await client.query('COMMIT')
          committedLine = line
          uncommitted = 0
          await client.query('BEGIN')
        }
      }
      await flush()
      for (const entry of plan.values()) {
        if (entry.rows !== entry.header.rows) throw fail(line, `the header promises ${entry.header.rows} row(s) of ${entry.header.table} but the file holds ${entry.rows}: it is truncated or edited`)
      }
      if (batch !== undefined) {
        // Several transactions wrote the tenant, so prove that together they hold exactly the file's rows.
        for (const entry of plan.values()) {
          const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${entry.target.sql} WHERE ${tenantMatch(entry.target, '$1')}`, [tenant])
          if (rows[0]?.n !== entry.rows) throw fail(line, `${entry.header.table} holds ${rows[0]?.n ?? 0} row(s) of ${JSON.stringify(tenant)} after the import, not the file's ${entry.rows}: something else wrote the tenant meanwhile`)
        }
        await client.query(`DELETE FROM ${IMPORT_TABLE} WHERE tenant_id = $1`, [tenant])
      }
      await client.query('COMMIT')
      return {
        tenant,
        exportedTenant: header.tenant,
        replaced: rowsExist,
        resumed,
        migration: { exported: header.migration },
        tables: [...plan.values()].map((entry) => ({ table: entry.header.table, rows: entry.rows })),
      }
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined)
      throw error
    }
  })
}

import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { quoteIdent } from '../database/sql-identifiers.js'
import { TenancyError } from '../errors.js'
import { exportHeaderSchema, exportRowSchema, type ExportHeader } from './export-format.js'
import { inTransaction, registryHas, tenantMatch, withLifecycleDatabase, type LifecycleTable, type TenantLifecycleOptions } from './tenant-database.js'

export interface ImportTenantOptions extends TenantLifecycleOptions {
  /** The JSON Lines of `exportTenant` (a file stream, process.stdin). */
  input: Readable
  /** Import under this tenant id instead of the exported one. */
  as?: string | undefined
  /** Replace a tenant that exists already (its rows are deleted in the same transaction). */
  replace?: boolean | undefined
  onProgress?: ((progress: { table: string; rows: number }) => void) | undefined
}

export interface ImportTenantResult {
  tenant: string
  /** The id in the file. */
  exportedTenant: string
  replaced: boolean
  /** The migration the export was taken at, and the latest one here. */
  migration: { exported: string | null }
  tables: { table: string; rows: number }[]
}

// PostgreSQL takes at most 65535 parameters per statement.
const MAX_PARAMETERS = 60_000
const MAX_BATCH_ROWS = 500

function invalid(line: number, message: string, cause?: unknown): TenancyError {
  return new TenancyError('IMPORT_INVALID', `Line ${line} of the import: ${message}. Nothing was imported; fix the file (or export it again with \`prisma-tenancy tenant export\`).`, { cause, details: { line } })
}

function parseLine<T>(text: string, line: number, schema: { safeParse(value: unknown): { success: true; data: T } | { success: false; error: { issues: ReadonlyArray<{ message: string; path: PropertyKey[] }> } } }, what: string): T {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (cause) {
    throw invalid(line, `not valid JSON (${(cause as Error).message})`, cause)
  }
  const parsed = schema.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw invalid(line, `not ${what}: ${issue?.path.map(String).join('.') ?? ''} ${issue?.message ?? ''}`.trimEnd(), parsed.error)
  }
  return parsed.data
}

/**
 * Loads a tenant export, under its own id or another (`as`), in one
 * transaction: a malformed line, a row of another tenant, a table or column this
 * database lacks, or a file shorter than its header says rolls everything back.
 * An existing tenant is refused unless `replace`.
 */
export async function importTenant(options: ImportTenantOptions): Promise<ImportTenantResult> {
  return withLifecycleDatabase(options, async (database) => {
    const { client } = database
    const lines = createInterface({ input: options.input, crlfDelay: Infinity })[Symbol.asyncIterator]()
    const first = await lines.next()
    if (first.done === true) throw invalid(1, 'the file is empty')
    const header: ExportHeader = parseLine(first.value, 1, exportHeaderSchema, 'a prisma-tenancy export header')
    const tenant = database.validateId(options.as ?? header.tenant)

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

    return inTransaction(client, async () => {
      const exists = await registryHas(database, tenant)
      const rowsExist = exists ? true : (await Promise.all(database.tables.map(async (table) => (await client.query(`SELECT 1 FROM ${table.sql} WHERE ${tenantMatch(table, '$1')} LIMIT 1`, [tenant])).rowCount === 1))).some(Boolean)
      if (rowsExist && options.replace !== true) {
        throw new TenancyError('TENANT_EXISTS', `Tenant ${JSON.stringify(tenant)} already exists here. Nothing was imported: pass --replace to replace its rows, or --as <id> to import under another id.`, { details: { tenant } })
      }
      if (rowsExist) {
        for (const table of [...database.tables].reverse()) await client.query(`DELETE FROM ${table.sql} WHERE ${tenantMatch(table, '$1')}`, [tenant])
        await client.query(`DELETE FROM ${database.registry.sql} WHERE ${tenantMatch(database.registry, '$1')}`, [tenant])
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
          throw invalid(firstLine, `PostgreSQL refused rows of ${done.table}: ${cause.message}`, cause)
        })
      }

      let line = 1
      for (;;) {
        const next = await lines.next()
        if (next.done === true) break
        line += 1
        if (next.value.trim() === '') continue
        const { table, row } = parseLine(next.value, line, exportRowSchema, 'a row line ({"table": ..., "row": {...}})')
        const entry = plan.get(table)
        if (entry === undefined) throw invalid(line, `a row of ${table}, which the header does not list`)
        const columns = entry.header.columns.map((column) => column.name)
        const extra = Object.keys(row).filter((name) => !columns.includes(name))
        if (extra.length > 0) throw invalid(line, `a row of ${table} with column(s) the header does not list: ${extra.join(', ')}`)
        if (row[entry.target.column] !== header.tenant) throw invalid(line, `a row of ${table} whose ${entry.target.column} is ${JSON.stringify(row[entry.target.column] ?? null)}, not the exported tenant ${JSON.stringify(header.tenant)}`)
        const values = columns.map((name) => (name === entry.target.column ? tenant : (row[name] ?? null)))
        if (pending !== null && (pending.table !== table || pending.values.length >= Math.min(MAX_BATCH_ROWS, Math.floor(MAX_PARAMETERS / columns.length)))) await flush()
        if (pending === null) {
          pending = { table, columns, values: [] }
          firstLine = line
        }
        pending.values.push(values)
        entry.rows += 1
        if (entry.rows % 10_000 === 0) options.onProgress?.({ table, rows: entry.rows })
      }
      await flush()
      for (const entry of plan.values()) {
        if (entry.rows !== entry.header.rows) throw invalid(line, `the header promises ${entry.header.rows} row(s) of ${entry.header.table} but the file holds ${entry.rows}: it is truncated or edited`)
      }
      return {
        tenant,
        exportedTenant: header.tenant,
        replaced: rowsExist,
        migration: { exported: header.migration },
        tables: [...plan.values()].map((entry) => ({ table: entry.header.table, rows: entry.rows })),
      }
    })
  })
}

import { once } from 'node:events'
import type { Writable } from 'node:stream'
import { quoteIdent, quoteLiteral } from '../database/sql-identifiers.js'
import { inTransaction, registryHas, tenantMatch, unknownTenant, withLifecycleDatabase, type LifecycleDatabase, type TenantLifecycleOptions } from './tenant-database.js'
import { EXPORT_FORMAT, EXPORT_VERSION, type ExportHeader } from './export-format.js'

export interface ExportTenantOptions extends TenantLifecycleOptions {
  /** Where the JSON Lines go (a file stream, process.stdout). Not ended here. */
  output: Writable
  /** Rows fetched from the cursor at a time (default 1000): what memory holds at once. */
  fetchSize?: number | undefined
  /** Called after each fetch with the table's running total. */
  onProgress?: ((progress: { table: string; rows: number }) => void) | undefined
}

export interface ExportTenantResult {
  tenant: string
  migration: string | null
  tables: { table: string; rows: number }[]
}

async function latestMigration(database: LifecycleDatabase): Promise<string | null> {
  const { rows } = await database.client.query<{ present: boolean }>(`SELECT to_regclass('_prisma_migrations') IS NOT NULL AS present`)
  if (rows[0]?.present !== true) return null
  const latest = await database.client.query<{ name: string }>(
    'SELECT migration_name AS name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY finished_at DESC, migration_name DESC LIMIT 1',
  )
  return latest.rows[0]?.name ?? null
}

async function write(output: Writable, text: string): Promise<void> {
  if (!output.write(text)) await once(output, 'drain')
}

/**
 * Streams every row of one tenant as JSON Lines (see export-format.ts): the
 * registry row, then each tenant table parents first, read through a cursor in
 * one REPEATABLE READ snapshot, so the counts in the header match the rows and
 * memory holds one fetch at a time.
 */
export async function exportTenant(id: string, options: ExportTenantOptions): Promise<ExportTenantResult> {
  const fetchSize = Math.max(1, Math.floor(options.fetchSize ?? 1000))
  return withLifecycleDatabase(options, async (database) => {
    const { client } = database
    const tenant = database.validateId(id)
    return inTransaction(
      client,
      async () => {
        // Text forms that do not depend on the session: ISO dates in UTC, hex bytea, floats that read back exactly.
        await client.query("SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL TimeZone = 'UTC'; SET LOCAL IntervalStyle = 'iso_8601'; SET LOCAL bytea_output = 'hex'; SET LOCAL extra_float_digits = 3")
        if (!(await registryHas(database, tenant))) throw unknownTenant(tenant)
        const tables = [database.registry, ...database.tables]
        const counted: ExportHeader['tables'] = []
        for (const table of tables) {
          const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table.sql} WHERE ${tenantMatch(table, '$1')}`, [tenant])
          counted.push({ table: table.name, model: table.model, registry: table === database.registry, column: table.column, columns: table.columns, rows: rows[0]?.n ?? 0 })
        }
        const header: ExportHeader = { format: EXPORT_FORMAT, version: EXPORT_VERSION, tenant, migration: await latestMigration(database), exportedAt: new Date().toISOString(), tables: counted }
        await write(options.output, `${JSON.stringify(header)}\n`)
        for (const table of tables) {
          const names = table.columns.map((column) => column.name)
          // A cursor declaration takes no parameters: the validated id goes in as a quoted literal.
          await client.query(`DECLARE tenant_export NO SCROLL CURSOR FOR SELECT ${names.map((name) => `${quoteIdent(name)}::text`).join(', ')} FROM ${table.sql} WHERE ${quoteIdent(table.column)} = ${quoteLiteral(tenant)}::${table.columnType}`)
          let total = 0
          for (;;) {
            const { rows } = await client.query<string[]>({ text: `FETCH ${fetchSize} FROM tenant_export`, rowMode: 'array' })
            let chunk = ''
            for (const values of rows) chunk += `${JSON.stringify({ table: table.name, row: Object.fromEntries(names.map((name, index) => [name, values[index] ?? null])) })}\n`
            if (chunk !== '') await write(options.output, chunk)
            total += rows.length
            options.onProgress?.({ table: table.name, rows: total })
            if (rows.length < fetchSize) break
          }
          await client.query('CLOSE tenant_export')
        }
        return { tenant, migration: header.migration, tables: counted.map((table) => ({ table: table.table, rows: table.rows })) }
      },
      'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
    )
  })
}

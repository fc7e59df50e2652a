import { once } from 'node:events'
import type { Writable } from 'node:stream'
import { quoteIdent, quoteLiteral } from '../database/sql-identifiers.js'
import { inTransaction, registryHas, tenantMatch, unknownTenant, withLifecycleDatabase, type LifecycleDatabase, type TenantLifecycleOptions } from './tenant-database.js'
import { copyLines } from './copy-lines.js'
import { EXPORT_FORMAT, EXPORT_VERSION, type ExportHeader } from './export-format.js'

export interface ExportTenantOptions extends TenantLifecycleOptions {
  /** Where the JSON Lines go (a file stream, process.stdout). Not ended here. */
  output: Writable
  /** Called every 10,000 rows and at the end of each table with the table's running total. */
  onProgress?: ((progress: { table: string; rows: number }) => void) | undefined
}

export interface ExportTenantResult {
  tenant: string
  migration: string | null
  tables: { table: string; rows: number }[]
}

const progressEvery = 10_000

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
 * registry row, then each tenant table parents first, copied out (COPY) in
 * one REPEATABLE READ snapshot, so the counts in the header match the rows, and
 * memory holds a write buffer at a time. The Prisma config is read in a child
 * process, so its loader does not stay in this one.
 */
export async function exportTenant(id: string, options: ExportTenantOptions): Promise<ExportTenantResult> {
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
          // PostgreSQL writes each line, the same bytes as JSON.stringify({ table, row }): row_to_json is compact,
          // escapes as JSON.stringify does and keeps the columns' order, and the values stay their text forms.
          // COPY takes no parameters: the validated id goes in as a literal.
          const values = table.columns.map((column) => `${quoteIdent(column.name)}::text AS ${quoteIdent(column.name)}`).join(', ')
          const select = `SELECT row_to_json(l)::text FROM (SELECT ${quoteLiteral(table.name)} AS "table", row_to_json(r) AS "row" FROM (SELECT ${values} FROM ${table.sql} WHERE ${quoteIdent(table.column)} = ${quoteLiteral(tenant)}::${table.columnType}) AS r) AS l`
          const copied = await copyLines(client, `COPY (${select}) TO STDOUT (FORMAT binary)`, options.output, (rows) => {
            if (rows % progressEvery === 0) options.onProgress?.({ table: table.name, rows })
          })
          options.onProgress?.({ table: table.name, rows: copied })
        }
        return { tenant, migration: header.migration, tables: counted.map((table) => ({ table: table.table, rows: table.rows })) }
      },
      'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
    )
    // Prisma's config loader would keep ~40 MB in this process, which is for the rows.
  }, 'child-process')
}

import type pg from 'pg'
import { readSchemaFiles, resolveSchemaAndDatabase, type ConfigLoading, type ProjectOptions } from '../config/project-config.js'
import { tenantIdValidator, type TenantIdSchema } from '../context/tenant-id.js'
import { parseTenancyNames } from '../context/tenant-setting.js'
import { withClient } from '../database/admin.js'
import { databaseName, parseDatabaseUrl } from '../database/connection-url.js'
import { quoteIdent } from '../database/sql-identifiers.js'
import { TenancyError } from '../errors.js'
import { classifyModels, qualifiedName, REGISTRY_MARKER, type RegistryTable, type TableName, type TenantColumnType } from '../policy/classify-models.js'
import { quoteTable } from '../policy/policy-sql.js'
import { parseDatamodelInWorker, type DmmfModel } from '../policy/prisma-schema.js'

/** Options every lifecycle function takes: where the project and the admin database are. */
export interface TenantLifecycleOptions extends ProjectOptions {
  /** The Prisma field holding the tenant. Default: tenantId. */
  tenantField?: string | undefined
  /** The setting the policies read the tenant from. Default: app.current_tenant. */
  setting?: string | undefined
  /** Validates tenant ids, as the client extension's `tenantId` option does. Default: letters, digits, `_` and `-`. */
  tenantId?: TenantIdSchema | undefined
}

export interface ColumnInfo {
  name: string
  /** As format_type prints it, e.g. numeric(10,2), text[], jsonb. */
  type: string
}

/** A table holding rows of tenants (or the registry), as the lifecycle reads and writes it. */
export interface LifecycleTable {
  model: string
  /** schema.table as shown to people. */
  name: string
  /** Quoted for SQL. */
  sql: string
  /** The tenant column (the id column for the registry). */
  column: string
  columnType: TenantColumnType
  columns: ColumnInfo[]
  /** Schema and table name, unquoted. */
  tableName: TableName
  /** LIST-partitioned by tenant in the database (a tenant can have a partition of its own). */
  partitioned: boolean
}

export interface LifecycleDatabase {
  client: pg.Client
  databaseUrl: string
  database: string
  registry: LifecycleTable
  registryModel: DmmfModel
  /** Tenant tables, parents before children (the order to insert in; delete in reverse). */
  tables: LifecycleTable[]
  validateId: (id: unknown) => string
}

/**
 * Parents before children by the foreign keys between the tables (code-point
 * order among equals, so the order is the same on every run). A cycle cannot be
 * ordered; its tables keep their name order at the end.
 */
function insertOrder<T extends { oid: number; name: string }>(tables: T[], edges: { child: number; parent: number }[]): T[] {
  const remaining = [...tables].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const ordered: T[] = []
  while (remaining.length > 0) {
    const index = remaining.findIndex((table) => !edges.some((edge) => edge.child === table.oid && edge.parent !== table.oid && remaining.some((other) => other.oid === edge.parent)))
    ordered.push(...remaining.splice(index === -1 ? 0 : index, 1))
  }
  return ordered
}

async function describeTables(client: pg.Client, tables: (TableName & { model: string; column: string; columnType: TenantColumnType })[]): Promise<{ tables: (LifecycleTable & { oid: number })[]; edges: { child: number; parent: number }[] }> {
  const sqlNames = tables.map((table) => quoteTable(table))
  const { rows } = await client.query<{ shown: string | null; oid: number | null; partitioned: boolean | null; columns: ColumnInfo[] | null }>(
    `SELECT c.relnamespace::regnamespace::text || '.' || c.relname AS shown, c.oid::int AS oid, c.relkind = 'p' AS partitioned,
            (SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
               FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') AS columns
       FROM unnest($1::text[]) WITH ORDINALITY AS t(name, position) LEFT JOIN pg_class c ON c.oid = to_regclass(t.name)
      ORDER BY t.position`,
    [sqlNames],
  )
  const described = tables.map((table, index) => {
    const row = rows[index]
    if (row?.oid === null || row?.oid === undefined || row.columns === null || row.shown === null) {
      throw new TenancyError('SCHEMA_INVALID', `The schema declares ${qualifiedName(table)}, but the database has no such table. Apply the migrations (prisma-tenancy migrate deploy) or fix --schema / --database-url.`)
    }
    return {
      model: table.model,
      name: row.shown,
      sql: sqlNames[index]!,
      column: table.column,
      columnType: table.columnType,
      columns: row.columns,
      tableName: { schema: table.schema, table: table.table },
      partitioned: row.partitioned === true,
      oid: row.oid,
    }
  })
  const edges = await client.query<{ child: number; parent: number }>(
    `SELECT conrelid::int AS child, confrelid::int AS parent FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY($1::oid[]) AND confrelid = ANY($1::oid[])`,
    [described.map((table) => table.oid)],
  )
  return { tables: described, edges: edges.rows }
}

/**
 * Opens the admin connection the lifecycle works on: reads the schema (registry
 * and tenant tables), checks that the connecting role bypasses row-level security
 * (it writes the registry, which no policy lets anyone else write, and every
 * tenant's rows) and orders the tenant tables by their foreign keys. `configLoading`: see ConfigLoading.
 */
export async function withLifecycleDatabase<T>(options: TenantLifecycleOptions, work: (database: LifecycleDatabase) => Promise<T>, configLoading: ConfigLoading = 'here'): Promise<T> {
  const { setting, tenantField } = parseTenancyNames(options)
  const project = await resolveSchemaAndDatabase(options, configLoading)
  const databaseUrl = parseDatabaseUrl(project.databaseUrl)
  const datamodel = await parseDatamodelInWorker(await readSchemaFiles(project.schemaPath))
  const analysis = classifyModels(datamodel, { tenantField, setting })
  const registry: RegistryTable | null = analysis.registry
  const registryModel = datamodel.models.find((model) => model.name === registry?.model)
  if (registry === null || registryModel === undefined) {
    throw new TenancyError('SCHEMA_INVALID', `The schema has no tenant registry. Name the model that holds one row per tenant \`Tenant\`, or mark it with a \`/// ${REGISTRY_MARKER}\` doc comment, then run \`prisma-tenancy generate\`.`)
  }
  return withClient(databaseUrl, async (client) => {
    const role = (await client.query<{ name: string; bypasses: boolean }>('SELECT rolname AS name, rolsuper OR rolbypassrls AS bypasses FROM pg_roles WHERE rolname = current_user')).rows[0]
    if (role?.bypasses !== true) {
      throw new TenancyError(
        'CONFIG_INVALID',
        `The tenant lifecycle connects as ${role?.name ?? 'an unknown role'}, which is subject to row-level security, so it can neither write the registry nor see every row of a tenant. Pass --database-url with an admin role that is superuser or BYPASSRLS (and CREATEROLE for --credentials).`,
      )
    }
    const described = await describeTables(client, [registry, ...analysis.tenantTables])
    const [registryTable, ...tenantTables] = described.tables
    return work({
      client,
      databaseUrl,
      database: databaseName(databaseUrl),
      registry: registryTable!,
      registryModel,
      tables: insertOrder(tenantTables, described.edges),
      validateId: tenantIdValidator(options.tenantId),
    })
  })
}

/** Runs `work` in a transaction: committed when it returns, rolled back when it throws. */
export async function inTransaction<T>(client: pg.Client, work: () => Promise<T>, begin = 'BEGIN'): Promise<T> {
  await client.query(begin)
  try {
    const result = await work()
    await client.query('COMMIT')
    return result
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw error
  }
}

/** The tenant column compared with a text parameter, cast to the column's type. */
export function tenantMatch(table: LifecycleTable, parameter: string): string {
  return `${quoteIdent(table.column)} = ${parameter}::${table.columnType}`
}

/** Whether the registry holds a row for `id`. */
export async function registryHas(database: LifecycleDatabase, id: string): Promise<boolean> {
  const { rowCount } = await database.client.query(`SELECT 1 FROM ${database.registry.sql} WHERE ${tenantMatch(database.registry, '$1')}`, [id])
  return rowCount === 1
}

export function unknownTenant(id: string): TenancyError {
  return new TenancyError('TENANT_UNKNOWN', `No tenant ${JSON.stringify(id)} in the registry. Check the id with \`prisma-tenancy tenant list\`.`, { details: { tenant: id } })
}

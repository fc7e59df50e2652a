import { quoteLiteral } from '../database/sql-identifiers.js'
import { TenancyError } from '../errors.js'
import { partitionName, protectPartitionsStatement } from '../policy/partition-sql.js'
import { quoteTable } from '../policy/policy-sql.js'
import { tenantMatch, type LifecycleDatabase, type LifecycleTable } from './tenant-database.js'

/** A tenant's own partition of a table partitioned by tenant. */
export interface TenantPartition {
  /** schema.table as shown to people. */
  name: string
  /** Quoted for SQL. */
  sql: string
}

/** The partition bound of one tenant: its id as a literal, which PostgreSQL casts to the tenant column's type. */
export function bound(tenant: string): string {
  return `FOR VALUES IN (${quoteLiteral(tenant)})`
}

/**
 * The tenant's partition of `table`, found by its bound (not its name: a
 * partition made by hand counts too), or null. PostgreSQL prints a text or
 * uuid bound quoted and a number bare.
 */
export async function findTenantPartition(database: LifecycleDatabase, table: LifecycleTable, tenant: string): Promise<TenantPartition | null> {
  const printed = table.columnType === 'integer' || table.columnType === 'bigint' ? `FOR VALUES IN (${tenant})` : bound(tenant)
  const { rows } = await database.client.query<TenantPartition>(
    `SELECT c.relnamespace::regnamespace::text || '.' || c.relname AS name, format('%I.%I', c.relnamespace::regnamespace::text, c.relname) AS sql
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = $1::regclass AND pg_get_expr(c.relpartbound, c.oid) = $2`,
    [table.sql, printed],
  )
  return rows[0] ?? null
}

/** Whether rows of the tenant sit in the table (for a partitioned table without the tenant's partition: in DEFAULT). */
export async function hasTenantRows(database: LifecycleDatabase, table: LifecycleTable, tenant: string, from = table.sql): Promise<boolean> {
  const { rowCount } = await database.client.query(`SELECT 1 FROM ${from} WHERE ${tenantMatch(table, '$1')} LIMIT 1`, [tenant])
  return (rowCount ?? 0) > 0
}

/** Row-level security on and forced on a partition, with the policies of its parent (see protectPartitionsStatement). */
export async function protectPartition(database: LifecycleDatabase, parent: LifecycleTable, partition: string): Promise<void> {
  await database.client.query(protectPartitionsStatement(parent.sql, partition))
}

export function rowsInDefault(table: LifecycleTable, tenant: string): TenancyError {
  return new TenancyError(
    'PARTITION_ROWS_IN_DEFAULT',
    `Rows of tenant ${JSON.stringify(tenant)} sit in the DEFAULT partition of ${table.name}, and PostgreSQL refuses a partition for them while they do. Nothing was changed: run \`prisma-tenancy tenant partition ${tenant}\`, which moves them into a partition of their own.`,
    { details: { tenant, table: table.name } },
  )
}

/** Creates the (empty) tenant partition of `table` and protects it as its parent is; the action done. */
export async function createTenantPartition(database: LifecycleDatabase, table: LifecycleTable, tenant: string): Promise<string> {
  const partition = partitionName(table.tableName, tenant)
  await database.client.query(`CREATE TABLE IF NOT EXISTS ${quoteTable(partition)} PARTITION OF ${table.sql} ${bound(tenant)}`)
  await protectPartition(database, table, quoteTable(partition))
  return `created partition ${partition.table} of ${table.name}`
}

/**
 * The tenant's partition of every partitioned table, made where missing (in
 * the caller's transaction), protected as its parent is. Refused while rows
 * of the tenant sit in a DEFAULT partition. Returns what it did.
 */
export async function createTenantPartitions(database: LifecycleDatabase, tenant: string): Promise<string[]> {
  const actions: string[] = []
  for (const table of database.tables) {
    if (!table.partitioned || (await findTenantPartition(database, table, tenant)) !== null) continue
    if (await hasTenantRows(database, table, tenant)) throw rowsInDefault(table, tenant)
    actions.push(await createTenantPartition(database, table, tenant))
  }
  return actions
}

/** Detaches and drops the tenant's partition of `table` (in the caller's transaction): the rows it held, or null when it has none. */
export async function dropTenantPartition(database: LifecycleDatabase, table: LifecycleTable, tenant: string): Promise<{ partition: string; rows: number } | null> {
  const partition = table.partitioned ? await findTenantPartition(database, table, tenant) : null
  if (partition === null) return null
  const { client } = database
  const { rows } = await client.query<{ n: number }>(`SELECT count(*)::float8 AS n FROM ${partition.sql}`)
  // Detached first: PostgreSQL then checks that no row of a table referencing the parent points into it.
  await client.query(`ALTER TABLE ${table.sql} DETACH PARTITION ${partition.sql}`)
  await client.query(`DROP TABLE ${partition.sql}`)
  return { partition: partition.name, rows: rows[0]?.n ?? 0 }
}

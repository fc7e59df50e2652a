import { performance } from 'node:perf_hooks'
import { quoteIdent, quoteLiteral } from '../database/sql-identifiers.js'
import { TenancyError } from '../errors.js'
import { partitionName } from '../policy/partition-sql.js'
import { quoteTable } from '../policy/policy-sql.js'
import { inTransaction, registryHas, tenantMatch, unknownTenant, withLifecycleDatabase, type LifecycleDatabase, type LifecycleTable, type TenantLifecycleOptions } from './tenant-database.js'
import { bound, createTenantPartition, findTenantPartition, hasTenantRows, protectPartition } from './tenant-partitions.js'

export interface PartitionTenantResult {
  tenant: string
  /** Per table partitioned by tenant: what was done, the rows moved out of DEFAULT and how long writers to DEFAULT were blocked. */
  tables: { table: string; partition: string; action: 'moved' | 'created' | 'exists'; moved: number; writersBlockedMs: number }[]
}

/** The check that matches the partition bound, so that ATTACH PARTITION skips scanning the new partition. */
const BOUND_CHECK = 'prisma_tenancy_partition_bound'

interface ForeignKeyDefinition {
  table: string
  name: string
  definition: string
}

async function defaultPartition(database: LifecycleDatabase, table: LifecycleTable): Promise<string> {
  const { rows } = await database.client.query<{ sql: string | null }>(
    `SELECT format('%I.%I', c.relnamespace::regnamespace::text, c.relname) AS sql FROM pg_partitioned_table p LEFT JOIN pg_class c ON c.oid = p.partdefid WHERE p.partrelid = $1::regclass`,
    [table.sql],
  )
  const sql = rows[0]?.sql ?? null
  if (sql === null) throw new TenancyError('SCHEMA_INVALID', `${table.name} has no DEFAULT partition, so no tenant's rows can sit outside a partition of their own. Nothing to move: \`prisma-tenancy tenant create <id>\` makes a tenant's partition.`)
  return sql
}

/** Foreign keys of the parent itself (not those PostgreSQL cloned onto partitions), or of other tables pointing at it. */
async function foreignKeys(database: LifecycleDatabase, table: LifecycleTable, side: 'conrelid' | 'confrelid'): Promise<ForeignKeyDefinition[]> {
  const { rows } = await database.client.query<ForeignKeyDefinition>(
    `SELECT conrelid::regclass::text AS table, quote_ident(conname) AS name, pg_get_constraintdef(oid) AS definition
       FROM pg_constraint WHERE contype = 'f' AND conparentid = 0 AND ${side} = $1::regclass ORDER BY 1, 2`,
    [table.sql],
  )
  return rows
}

/**
 * Moves one tenant's rows out of the DEFAULT partition of `table` into a
 * partition of its own, keeping every row. The work that takes time happens
 * while writers go on: the new table is built standalone (LIKE the parent:
 * columns, defaults, indexes), filled from DEFAULT, given the parent's foreign
 * keys, its policies, and a check matching the partition bound. Then one short
 * transaction locks DEFAULT, brings the copy up to date with what changed
 * meanwhile, deletes the rows from DEFAULT (without firing the foreign keys
 * that point at the parent, else ON DELETE CASCADE would delete their rows too)
 * and attaches the table, which the check spares a scan. Without superuser,
 * those foreign keys are set aside instead (their tables locked first, as their
 * writers lock them before DEFAULT), come back NOT VALID and are validated after
 * the commit, which does not block writers.
 */
async function moveOutOfDefault(database: LifecycleDatabase, table: LifecycleTable, tenant: string): Promise<{ moved: number; writersBlockedMs: number }> {
  const { client } = database
  const partition = quoteTable(partitionName(table.tableName, tenant))
  const fallback = await defaultPartition(database, table)
  const match = tenantMatch(table, '$1')
  // A standalone table of that name is left from an interrupted run (a partition of it would have been found).
  await client.query(`DROP TABLE IF EXISTS ${partition}`)
  await client.query(`CREATE TABLE ${partition} (LIKE ${table.sql} INCLUDING ALL)`)
  await client.query(`INSERT INTO ${partition} SELECT * FROM ${fallback} WHERE ${match}`, [tenant])
  const column = quoteIdent(table.column)
  await client.query(`ALTER TABLE ${partition} ADD CONSTRAINT ${BOUND_CHECK} CHECK (${column} IS NOT NULL AND ${column} = ${quoteLiteral(tenant)}::${table.columnType})`)
  for (const key of await foreignKeys(database, table, 'conrelid')) await client.query(`ALTER TABLE ${partition} ADD CONSTRAINT ${key.name} ${key.definition}`)
  await protectPartition(database, table, partition)

  // A superuser deletes from DEFAULT with triggers off for the transaction (session_replication_role), so the
  // foreign keys pointing at the parent neither cascade nor need setting aside: the rows come back with the same
  // keys before the commit. Another admin role sets them aside, which touches every partition (~0.3 ms each).
  const superuser = (await client.query<{ yes: boolean }>('SELECT rolsuper AS yes FROM pg_roles WHERE rolname = current_user')).rows[0]?.yes === true
  const referencing = superuser ? [] : await foreignKeys(database, table, 'confrelid')
  // Planning a query on the parent loads every partition's catalog entries into this (new) backend now, not under the lock.
  await client.query(`EXPLAIN SELECT * FROM ${table.sql}`)
  const started = performance.now()
  const moved = await inTransaction(client, async () => {
    const referencingTables = [...new Set(referencing.map((key) => key.table))].filter((name) => name !== table.sql)
    await client.query(`LOCK TABLE ${[...referencingTables, fallback].join(', ')} IN ACCESS EXCLUSIVE MODE`)
    if (superuser) await client.query(`SET LOCAL session_replication_role = replica`)
    // Rows changed, added or deleted since the copy: the copy becomes exactly the tenant's rows in DEFAULT.
    await client.query(`DELETE FROM ${partition} p WHERE p::text NOT IN (SELECT d::text FROM ${fallback} d WHERE ${match})`, [tenant])
    await client.query(`INSERT INTO ${partition} SELECT * FROM ${fallback} d WHERE ${match} AND d::text NOT IN (SELECT p::text FROM ${partition} p)`, [tenant])
    for (const key of referencing) await client.query(`ALTER TABLE ${key.table} DROP CONSTRAINT ${key.name}`)
    const { rowCount } = await client.query(`DELETE FROM ${fallback} WHERE ${match}`, [tenant])
    if (superuser) await client.query(`SET LOCAL session_replication_role = origin`)
    await client.query(`ALTER TABLE ${table.sql} ATTACH PARTITION ${partition} ${bound(tenant)}`)
    await client.query(`ALTER TABLE ${partition} DROP CONSTRAINT ${BOUND_CHECK}`)
    for (const key of referencing) await client.query(`ALTER TABLE ${key.table} ADD CONSTRAINT ${key.name} ${key.definition} NOT VALID`)
    return rowCount ?? 0
  })
  const writersBlockedMs = performance.now() - started
  for (const key of referencing) await client.query(`ALTER TABLE ${key.table} VALIDATE CONSTRAINT ${key.name}`)
  return { moved, writersBlockedMs }
}

/**
 * Gives a tenant its own partition of every table partitioned by tenant,
 * moving its rows out of the DEFAULT partition (see moveOutOfDefault) where
 * they sit there. A table where the tenant has its partition already is left
 * as it is, so a rerun does nothing.
 */
export async function partitionTenant(id: string, options: TenantLifecycleOptions = {}): Promise<PartitionTenantResult> {
  return withLifecycleDatabase(options, async (database) => {
    const tenant = database.validateId(id)
    if (!(await registryHas(database, tenant))) throw unknownTenant(tenant)
    const partitioned = database.tables.filter((table) => table.partitioned)
    if (partitioned.length === 0) {
      throw new TenancyError('SCHEMA_INVALID', 'No tenant table is partitioned by tenant in this database. Mark a model `/// @tenancy.partitioned`, run `prisma-tenancy generate` and `prisma-tenancy migrate deploy` first.')
    }
    const tables: PartitionTenantResult['tables'] = []
    for (const table of partitioned) {
      const existing = await findTenantPartition(database, table, tenant)
      const name = partitionName(table.tableName, tenant)
      const shown = `${table.name.slice(0, table.name.lastIndexOf('.') + 1)}${name.table}`
      if (existing !== null) tables.push({ table: table.name, partition: existing.name, action: 'exists', moved: 0, writersBlockedMs: 0 })
      else if (!(await hasTenantRows(database, table, tenant))) {
        await inTransaction(database.client, () => createTenantPartition(database, table, tenant))
        tables.push({ table: table.name, partition: shown, action: 'created', moved: 0, writersBlockedMs: 0 })
      } else tables.push({ table: table.name, partition: shown, action: 'moved', ...(await moveOutOfDefault(database, table, tenant)) })
    }
    return { tenant, tables }
  })
}

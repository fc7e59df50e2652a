import { z } from 'zod'
import { quoteIdent } from '../database/sql-identifiers.js'
import { TenancyError } from '../errors.js'
import { inTransaction, registryHas, tenantMatch, unknownTenant, withLifecycleDatabase, type LifecycleDatabase, type TenantLifecycleOptions } from './tenant-database.js'
import { dropTenantPartition } from './tenant-partitions.js'
import { endSessions, hasTenantRoles, LIFECYCLE_SCHEMA, mappedRole, roleExists, TENANT_ROLE_TABLE, tenantRoleName } from './tenant-roles.js'

/** The channel `tenant remove` notifies, with the tenant id as payload, when a tenant is gone (caches listen on it). */
export const TENANT_REMOVED_CHANNEL = 'prisma_tenancy_tenant_removed'
/** Progress of removals under way: a run that stops resumes from here. */
const REMOVAL_TABLE = `${LIFECYCLE_SCHEMA}.tenant_removal`

export interface RemoveTenantOptions extends TenantLifecycleOptions {
  /** Must be true: removing deletes every row of the tenant. */
  yes?: boolean | undefined
  /** Rows deleted per transaction (default 1000): each batch holds its row locks only briefly. */
  batchSize?: number | undefined
  /** Stops between two batches; the next run resumes. */
  signal?: AbortSignal | undefined
  /** Called after each batch with the table's running total. */
  onProgress?: ((progress: { table: string; deleted: number }) => void) | undefined
}

export interface RemoveTenantResult {
  tenant: string
  /** True when this run continued an interrupted one. */
  resumed: boolean
  /** Rows deleted per tenant table, children first, over every run of this removal; `droppedPartition` when they went with the tenant's partition (dropped by this run). */
  tables: { table: string; deleted: number; droppedPartition?: string }[]
  /** Rows of the tenant counted after the last delete: 0 in every table. */
  remaining: Record<string, number>
  /** The tenant's login role, dropped, or null when it had none. */
  droppedRole: string | null
}

const batchSizeSchema = z.number().int().min(1).max(1_000_000).default(1000)

async function remainingRows(database: LifecycleDatabase, tenant: string): Promise<Record<string, number>> {
  const remaining: Record<string, number> = {}
  for (const table of database.tables) {
    const { rows } = await database.client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table.sql} WHERE ${tenantMatch(table, '$1')}`, [tenant])
    remaining[table.name] = rows[0]?.n ?? 0
  }
  return remaining
}

/**
 * Deletes a tenant: every row in every tenant table, children before parents
 * (a table partitioned by tenant: its partition, detached and dropped whole),
 * in batches of short transactions whose progress is kept in the database (an
 * interrupted run resumes), then, in one last transaction that first proves no
 * row of the tenant is left, its registry row and its login role, and notifies
 * TENANT_REMOVED_CHANNEL.
 */
export async function removeTenant(id: string, options: RemoveTenantOptions = {}): Promise<RemoveTenantResult> {
  if (options.yes !== true) {
    throw new TenancyError('CONFIRMATION_REQUIRED', `Removing tenant ${JSON.stringify(id)} deletes all its rows, its registry row and its login role. Nothing was changed: rerun with --yes to remove it.`, { details: { tenant: id } })
  }
  const batchSize = batchSizeSchema.safeParse(options.batchSize ?? undefined)
  if (!batchSize.success) throw new TenancyError('CONFIG_INVALID', '--batch-size must be a whole number from 1 to 1000000.', { cause: batchSize.error })
  return withLifecycleDatabase(options, async (database) => {
    const { client } = database
    const tenant = database.validateId(id)
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${LIFECYCLE_SCHEMA}`)
    await client.query(`CREATE TABLE IF NOT EXISTS ${REMOVAL_TABLE} (tenant_id text NOT NULL, table_name text NOT NULL, deleted bigint NOT NULL DEFAULT 0, done boolean NOT NULL DEFAULT false, PRIMARY KEY (tenant_id, table_name))`)
    const progress = async () => new Map((await client.query<{ table: string; deleted: number; done: boolean }>(`SELECT table_name AS table, deleted::float8 AS deleted, done FROM ${REMOVAL_TABLE} WHERE tenant_id = $1`, [tenant])).rows.map((row) => [row.table, row]))
    const started = await progress()
    const resumed = started.size > 0
    if (!resumed && !(await registryHas(database, tenant))) throw unknownTenant(tenant)
    const childrenFirst = [...database.tables].reverse()
    await client.query(`INSERT INTO ${REMOVAL_TABLE} (tenant_id, table_name) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`, [tenant, childrenFirst.map((table) => table.name)])

    const dropped = new Map<string, string>()
    for (const table of childrenFirst) {
      if (started.get(table.name)?.done === true) continue
      let total = started.get(table.name)?.deleted ?? 0
      // The tenant's own partition goes whole, in one short transaction, instead of row by row.
      const partition = await inTransaction(client, async () => {
        const gone = await dropTenantPartition(database, table, tenant)
        if (gone !== null) await client.query(`UPDATE ${REMOVAL_TABLE} SET deleted = deleted + $3, done = true WHERE tenant_id = $1 AND table_name = $2`, [tenant, table.name, gone.rows])
        return gone
      })
      if (partition !== null) {
        dropped.set(table.name, partition.partition)
        options.onProgress?.({ table: table.name, deleted: total + partition.rows })
        continue
      }
      for (;;) {
        if (options.signal?.aborted === true) {
          throw new TenancyError('REMOVE_INTERRUPTED', `Removing tenant ${JSON.stringify(tenant)} was interrupted; ${total} row(s) of ${table.name} are deleted so far. Run \`prisma-tenancy tenant remove ${tenant} --yes\` again to resume.`, { details: { tenant, table: table.name } })
        }
        const deleted = await inTransaction(client, async () => {
          const { rowCount } = await client.query(
            `DELETE FROM ${table.sql} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${table.sql} WHERE ${tenantMatch(table, '$1')} LIMIT ${batchSize.data}))`,
            [tenant],
          )
          const count = rowCount ?? 0
          await client.query(`UPDATE ${REMOVAL_TABLE} SET deleted = deleted + $3, done = $4 WHERE tenant_id = $1 AND table_name = $2`, [tenant, table.name, count, count < batchSize.data])
          return count
        })
        total += deleted
        options.onProgress?.({ table: table.name, deleted: total })
        if (deleted < batchSize.data) break
      }
    }

    return inTransaction(client, async () => {
      const remaining = await remainingRows(database, tenant)
      const left = Object.entries(remaining).filter(([, count]) => count > 0)
      if (left.length > 0) {
        throw new TenancyError('REMOVE_INCOMPLETE', `Rows of tenant ${JSON.stringify(tenant)} were written while it was being removed (${left.map(([table, count]) => `${table}: ${count}`).join(', ')}). Stop its writers and run \`prisma-tenancy tenant remove ${tenant} --yes\` again.`, { details: { tenant, remaining } })
      }
      const counts = await progress()
      // A role left unmapped by an unfinished create goes too.
      const derived = tenantRoleName(database.database, tenant)
      const role = (await mappedRole(database, tenant)) ?? ((await roleExists(database, derived)) ? derived : null)
      await client.query(`DELETE FROM ${database.registry.sql} WHERE ${tenantMatch(database.registry, '$1')}`, [tenant])
      if (role !== null) {
        if (await hasTenantRoles(database)) await client.query(`DELETE FROM ${TENANT_ROLE_TABLE} WHERE tenant_id = $1`, [tenant])
        await endSessions(database, role)
        await client.query(`DROP ROLE IF EXISTS ${quoteIdent(role)}`)
      }
      await client.query(`DELETE FROM ${REMOVAL_TABLE} WHERE tenant_id = $1`, [tenant])
      // Delivered when this transaction commits, so listeners never hear of a removal that rolled back.
      await client.query('SELECT pg_notify($1, $2)', [TENANT_REMOVED_CHANNEL, tenant])
      return {
        tenant,
        resumed,
        tables: childrenFirst.map((table) => {
          const partition = dropped.get(table.name)
          return { table: table.name, deleted: counts.get(table.name)?.deleted ?? 0, ...(partition === undefined ? {} : { droppedPartition: partition }) }
        }),
        remaining,
        droppedRole: role,
      }
    })
  })
}

import pg from 'pg'
import type { PrismaClient } from '../../prisma/generated/client.js'
import { defaultTenantSetting } from '../../src/context/tenant-setting.js'
import { quoteLiteral } from '../../src/database/sql-identifiers.js'
import { models, noRows, type RowCounts } from './workload.js'

/** What one writing operation was meant to leave behind, and what the caller was told. */
export interface WriteRecord {
  tag: string
  tenant: string
  writes: RowCounts
  /**
   * committed: acknowledged to the caller; rolled-back: failed as intended;
   * failed: an unexpected error, so either every row or none may be there.
   */
  outcome: 'committed' | 'rolled-back' | 'failed'
}

export interface Reconciliation {
  /** Rows acknowledged as committed, by model. */
  committed: RowCounts
  /** Rows of this soak found in the database afterwards, by model. */
  inDatabase: RowCounts
  /** Operations that failed unexpectedly but whose rows all landed (a lost acknowledgement, not a partial write). */
  landedAfterError: number
  /** Lost commits, partial writes, rows of rolled-back work, per-tenant counts that differ (the first 20). */
  mismatches: string[]
  mismatchCount: number
  wrongTenantRows: number
  wrongTenantTags: string[]
}

interface Found {
  counts: RowCounts
  tenants: Map<string, number>
}

/**
 * Compares what the database holds, read as a role that sees every tenant,
 * with what each operation was told: every acknowledged write is there in
 * full and in its tenant, nothing of a rolled-back one is, a failed one is
 * there in full or not at all, and each tenant's row count per model is what
 * it committed.
 */
export async function reconcile(admin: PrismaClient, records: readonly WriteRecord[], prefix: string): Promise<Reconciliation> {
  const [projects, tasks, comments, members] = await Promise.all([
    admin.project.findMany({ where: { name: { startsWith: prefix } }, select: { name: true, tenantId: true } }),
    admin.task.findMany({ where: { title: { startsWith: prefix } }, select: { title: true, tenantId: true } }),
    admin.comment.findMany({ where: { body: { startsWith: prefix } }, select: { body: true, tenantId: true } }),
    admin.projectMember.findMany({ where: { userEmail: { startsWith: prefix } }, select: { userEmail: true, tenantId: true } }),
  ])
  const found = new Map<string, Found>()
  const inDatabase = noRows()
  const perTenant = new Map<string, RowCounts>()
  const add = (model: keyof RowCounts, tag: string, tenant: string) => {
    const entry = found.get(tag) ?? { counts: noRows(), tenants: new Map() }
    entry.counts[model] += 1
    entry.tenants.set(tenant, (entry.tenants.get(tenant) ?? 0) + 1)
    found.set(tag, entry)
    inDatabase[model] += 1
    const tenantCounts = perTenant.get(tenant) ?? noRows()
    tenantCounts[model] += 1
    perTenant.set(tenant, tenantCounts)
  }
  for (const row of projects) add('project', row.name, row.tenantId)
  for (const row of tasks) add('task', row.title, row.tenantId)
  for (const row of comments) add('comment', row.body, row.tenantId)
  for (const row of members) add('member', row.userEmail.split('@')[0] ?? '', row.tenantId)

  const mismatches: string[] = []
  const committed = noRows()
  const expectedPerTenant = new Map<string, RowCounts>()
  const wrongTenantTags: string[] = []
  let wrongTenantRows = 0
  let landedAfterError = 0
  const same = (a: RowCounts, b: RowCounts) => models.every((model) => a[model] === b[model])
  const show = (counts: RowCounts) => models.map((model) => `${counts[model]} ${model}`).join(', ')
  for (const record of records) {
    const entry = found.get(record.tag)
    found.delete(record.tag)
    const counts = entry?.counts ?? noRows()
    for (const [tenant, rows] of entry?.tenants ?? []) {
      if (tenant === record.tenant) continue
      wrongTenantRows += rows
      wrongTenantTags.push(record.tag)
    }
    const empty = same(counts, noRows())
    let landed = false
    if (record.outcome === 'committed') {
      landed = true
      if (!same(counts, record.writes)) mismatches.push(`${record.tag} (${record.tenant}) was committed with ${show(record.writes)}; the database has ${show(counts)}`)
    } else if (record.outcome === 'rolled-back') {
      if (!empty) mismatches.push(`${record.tag} (${record.tenant}) was rolled back, yet the database has ${show(counts)}`)
    } else if (same(counts, record.writes)) {
      landed = true
      landedAfterError += 1
    } else if (!empty) {
      mismatches.push(`${record.tag} (${record.tenant}) failed and left part of its writes: ${show(counts)} of ${show(record.writes)}`)
    }
    if (!landed) continue
    const expected = expectedPerTenant.get(record.tenant) ?? noRows()
    for (const model of models) {
      expected[model] += record.writes[model]
      if (record.outcome === 'committed') committed[model] += record.writes[model]
    }
    expectedPerTenant.set(record.tenant, expected)
  }
  for (const [tag, entry] of found) mismatches.push(`${tag}: ${show(entry.counts)} that no operation wrote`)
  for (const tenant of new Set([...perTenant.keys(), ...expectedPerTenant.keys()])) {
    const has = perTenant.get(tenant) ?? noRows()
    const expected = expectedPerTenant.get(tenant) ?? noRows()
    if (!same(has, expected)) mismatches.push(`${tenant} has ${show(has)}; it committed ${show(expected)}`)
  }
  return {
    committed,
    inDatabase,
    landedAfterError,
    mismatches: mismatches.slice(0, 20),
    mismatchCount: mismatches.length,
    wrongTenantRows,
    wrongTenantTags: wrongTenantTags.slice(0, 20),
  }
}

export interface SettingsCheck {
  /** Pooled connections checked (the pool's size). */
  connections: number
  /** Distinct server backends seen while every checked connection held a transaction open. */
  serverConnections: number
  leaks: string[]
}

/** A query below the tenancy driver: probes that must see the session as it is, with no tenant of their own. */
export const queryBelowDriver = (client: pg.PoolClient, text: string, values?: unknown[]) =>
  (pg.Client.prototype.query as (text: string, values?: unknown[]) => Promise<pg.QueryResult<Record<string, unknown>>>).call(client, text, values)

/**
 * Checks out every connection of the pool at once and asks each, outside any
 * transaction, for the tenant setting: it must be empty, and the connection
 * must not be inside a transaction left open. Then it opens a transaction on
 * `serverConnections` of them (behind PgBouncer, pinning each of its server
 * connections) and reads the setting there, where a session-level value would
 * show.
 */
export async function settingsOnPooledConnections(pool: pg.Pool, serverConnections?: number, setting = defaultTenantSetting): Promise<SettingsCheck> {
  const size = pool.options.max ?? 10
  const clients = await Promise.all(Array.from({ length: size }, () => pool.connect()))
  const leaks: string[] = []
  const pids = new Set<unknown>()
  try {
    for (const [index, client] of clients.entries()) {
      // The simple protocol, so the query is the first statement of its transaction when none was left open.
      const { rows } = await queryBelowDriver(client, `SELECT current_setting(${quoteLiteral(setting)}, true) AS tenant, transaction_timestamp() = statement_timestamp() AS own_transaction`)
      const tenant = rows[0]?.tenant
      if (tenant !== null && tenant !== '') leaks.push(`pooled connection ${index + 1} has ${setting} = ${JSON.stringify(tenant)} outside a transaction`)
      if (rows[0]?.own_transaction !== true) leaks.push(`pooled connection ${index + 1} was inside a transaction left open`)
    }
    const pinned = clients.slice(0, Math.min(size, serverConnections ?? size))
    for (const client of pinned) await queryBelowDriver(client, 'BEGIN')
    for (const [index, client] of pinned.entries()) {
      const { rows } = await queryBelowDriver(client, 'SELECT current_setting($1, true) AS tenant, pg_backend_pid() AS pid', [setting])
      pids.add(rows[0]?.pid)
      const tenant = rows[0]?.tenant
      if (tenant !== null && tenant !== '') leaks.push(`server connection behind pooled connection ${index + 1} has ${setting} = ${JSON.stringify(tenant)} in a new transaction`)
    }
    for (const client of pinned) await queryBelowDriver(client, 'COMMIT')
  } finally {
    for (const client of clients) client.release()
  }
  return { connections: size, serverConnections: pids.size, leaks }
}

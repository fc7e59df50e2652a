import { randomBytes, randomUUID } from 'node:crypto'
import type pg from 'pg'
import { propagateSetting } from '../citus/distribution-sql.js'
import { citusTenantStatement } from '../client/tenant-pg-client.js'
import { signatureSetting } from '../context/tenant-signature.js'
import { quoteIdent, quoteLiteral } from '../database/sql-identifiers.js'
import { SIGNED_TENANT_FUNCTION, SIGNING_KEY_TABLE, signaturesSql } from '../policy/signed-context.js'
import type { Catalog, Column, Relation } from './catalog.js'
import type { CheckId, CheckResult, CheckStatus } from './report.js'
import { qualify, type TableRef } from './static-checks.js'

/** Raised when a table's row cannot be built or written; the table is reported as not probed, with this reason and fix. */
class NotProbed extends Error {
  constructor(
    message: string,
    readonly fix = 'Give the column a default, or make the row writable by the app role as a tenant, so the probes can run.',
  ) {
    super(message)
  }
}

type Row = Record<string, string | null>
type Outcome = { ok: true; rowCount: number } | { ok: false; code: string; message: string }

const rlsViolation = '42501'

/**
 * Proves isolation by behaviour, as the application role, inside one
 * transaction that is always rolled back: for each tenant table a row is
 * written as tenant A, then tenant B (and no tenant at all) tries to read,
 * change, delete, forge and receive it. Every attempt runs under a savepoint
 * that is rolled back, so the probes leave nothing behind (sequences aside).
 */
export async function runProbes(client: pg.ClientBase, catalog: Catalog, tenantTables: TableRef[], setting: string, citus = false): Promise<{ results: CheckResult[]; probed: string[] }> {
  const results: CheckResult[] = []
  const probed: string[] = []
  const role = catalog.role.name
  const byName = new Map(catalog.relations.map((relation) => [qualify(relation.schema, relation.name), relation]))
  const byOid = new Map(catalog.relations.map((relation) => [relation.oid, relation]))
  const columnsOf = new Map<number, Column[]>()
  for (const column of catalog.columns) columnsOf.set(column.relid, [...(columnsOf.get(column.relid) ?? []), column])
  const targets = tenantTables
    .map((ref) => ({ ref, relation: byName.get(qualify(ref.schema, ref.table)) }))
    .filter((target): target is { ref: TableRef; relation: Relation } => target.relation !== undefined && ['r', 'p'].includes(target.relation.kind))
  const tenantColumnOf = new Map(targets.map(({ ref, relation }) => [relation.oid, ref.column!]))
  let ids = tenantIds(targets.map(({ relation, ref }) => columnsOf.get(relation.oid)?.find((column) => column.name === ref.column)))

  let savepoints = 0
  const attempt = async (sql: string, params: unknown[], keep = false): Promise<Outcome & { rows: Row[] }> => {
    const savepoint = `probe_${++savepoints}`
    await client.query(`SAVEPOINT ${savepoint}`)
    try {
      const result = await client.query(sql, params)
      await client.query(keep ? `RELEASE SAVEPOINT ${savepoint}` : `ROLLBACK TO SAVEPOINT ${savepoint}`)
      return { ok: true, rowCount: result.rowCount ?? 0, rows: result.rows as Row[] }
    } catch (error) {
      await client.query(`ROLLBACK TO SAVEPOINT ${savepoint}`)
      const { code, message } = error as { code?: string; message: string }
      return { ok: false, code: code ?? 'unknown', message, rows: [] }
    }
  }
  const switchRole = catalog.role.name !== (await client.query<{ user: string }>('SELECT current_user AS user')).rows[0]!.user
  const asApp = () => (switchRole ? client.query(`SET LOCAL ROLE ${quoteIdent(role)}`) : Promise.resolve())
  const asSession = () => (switchRole ? client.query('RESET ROLE') : Promise.resolve())

  const quoteTable = (relation: Relation) => `${quoteIdent(relation.schema)}.${quoteIdent(relation.name)}`
  const returning = (relation: Relation) => (columnsOf.get(relation.oid) ?? []).map((column) => `${quoteIdent(column.name)}::text AS ${quoteIdent(column.name)}`).join(', ')

  const literalInsert = (relation: Relation, row: Row) => {
    const columns = columnsOf.get(relation.oid) ?? []
    const names = Object.keys(row)
    if (names.length === 0) return `INSERT INTO ${quoteTable(relation)} DEFAULT VALUES`
    return `INSERT INTO ${quoteTable(relation)} (${names.map(quoteIdent).join(', ')}) VALUES (${names.map((name) => literal(row[name] ?? null, columns.find((column) => column.name === name)!.type)).join(', ')})`
  }

  const sharedRows = new Map<string, Row>()
  const probeRows = new Map<number, Map<string, Row>>()

  /** Values for a new row: fixed ones, foreign-key parents, then generated values for required columns without a default. */
  const buildRow = async (relation: Relation, fixed: Row, tenant: string | null, depth = 0): Promise<Row> => {
    if (depth > 8) throw new NotProbed(`foreign keys from ${qualify(relation.schema, relation.name)} nest too deep to fill automatically`)
    const columns = columnsOf.get(relation.oid) ?? []
    const row: Row = { ...fixed }
    const tenantColumn = tenantColumnOf.get(relation.oid)
    for (const fk of catalog.foreignKeys.filter((candidate) => candidate.relid === relation.oid)) {
      const names = fk.columns.map((num) => columns.find((column) => column.num === num)!)
      if (!names.some((column) => column.notNull && column.name !== tenantColumn)) {
        if (!names.some((column) => column.name === tenantColumn && column.notNull && tenant !== null)) continue
      }
      const parent = byOid.get(fk.refRelid)
      const parentColumns = columnsOf.get(fk.refRelid) ?? []
      if (parent === undefined) throw new NotProbed(`foreign key ${fk.name} points at a relation the verifier cannot see`)
      const parentName = qualify(parent.schema, parent.name)
      let parentRow: Row | undefined
      if (tenantColumnOf.has(parent.oid)) {
        parentRow = probeRows.get(parent.oid)?.get(tenant ?? ids.a)
        if (parentRow === undefined) throw new NotProbed(`it needs a row in ${parentName} (foreign key ${fk.name}), which could not be probed`)
      } else {
        const fixedParent: Row = {}
        fk.columns.forEach((num, index) => {
          const name = columns.find((column) => column.num === num)?.name
          const parentName = parentColumns.find((column) => column.num === fk.refColumns[index])?.name
          if (name !== undefined && parentName !== undefined && name === tenantColumn && tenant !== null) fixedParent[parentName] = tenant
        })
        parentRow = await sharedRow(parent, fixedParent, depth + 1)
        // The other probe tenant needs its registry row too, or moving a row to it fails on the key, not on the policy.
        const mapped = Object.keys(fixedParent)
        // Best effort: a registry the connecting user cannot write holds no row for a made-up tenant B.
        if (mapped.length > 0) await sharedRow(parent, Object.fromEntries(mapped.map((key) => [key, tenant === ids.a ? ids.b : ids.a])), depth + 1).catch((error: unknown) => {
          if (!(error instanceof NotProbed)) throw error
        })
      }
      fk.columns.forEach((num, index) => {
        const name = columns.find((column) => column.num === num)!.name
        const parentColumn = parentColumns.find((column) => column.num === fk.refColumns[index])!.name
        if (name === tenantColumn && (tenant === null || name in row)) return
        row[name] = parentRow[parentColumn] ?? null
      })
    }
    for (const column of columns) {
      if (column.name in row || column.generated || column.hasDefault || !column.notNull) continue
      if (column.name === tenantColumn) continue
      row[column.name] = generatedValue(column, relation)
    }
    return row
  }

  const insertSql = (relation: Relation, row: Row) => {
    const columns = columnsOf.get(relation.oid) ?? []
    const names = Object.keys(row)
    const values = names.map((name, index) => `$${index + 1}::${columns.find((column) => column.name === name)!.type}`)
    return {
      sql: names.length === 0 ? `INSERT INTO ${quoteTable(relation)} DEFAULT VALUES RETURNING ${returning(relation)}` : `INSERT INTO ${quoteTable(relation)} (${names.map(quoteIdent).join(', ')}) VALUES (${values.join(', ')}) RETURNING ${returning(relation)}`,
      params: Object.values(row),
    }
  }

  /** Rows in shared parents (the tenant registry, lookups) are written as the connecting user, not the app role. */
  const sharedRow = async (relation: Relation, fixed: Row, depth: number): Promise<Row> => {
    const key = `${relation.oid}:${JSON.stringify(fixed)}`
    const cached = sharedRows.get(key)
    if (cached !== undefined) return cached
    await asSession()
    try {
      const { sql, params } = insertSql(relation, await buildRow(relation, fixed, null, depth))
      let outcome = await attempt(sql, params, true)
      // A row that cannot be written may exist already: any lookup row, or tenant A's registry row (see registryTenant).
      if (!outcome.ok) {
        const names = Object.keys(fixed)
        const where = names.length === 0 ? '' : ` WHERE ${names.map((name, index) => `${quoteIdent(name)}::text = $${index + 1}`).join(' AND ')}`
        const existing = await attempt(`SELECT ${returning(relation)} FROM ${quoteTable(relation)}${where} LIMIT 1`, Object.values(fixed))
        if (existing.ok && existing.rows.length > 0) outcome = existing
      }
      if (!outcome.ok || outcome.rows.length === 0) throw new NotProbed(
          `it needs a row in the shared table ${qualify(relation.schema, relation.name)}, and inserting one as ${catalog.sessionUser} failed: ${outcome.ok ? 'no row' : outcome.message}`,
          `Add one row to ${quoteTable(relation)} (an existing tenant serves as tenant A), or run verify connected as a role that can write it (the migration role) and is a member of ${role} (GRANT ${quoteIdent(role)} TO <migration role>;), passing --role ${role}.`,
        )
      sharedRows.set(key, outcome.rows[0]!)
      return outcome.rows[0]!
    } finally {
      await asApp()
    }
  }

  const keyOf = (relation: Relation): string[] => {
    const indexes = catalog.indexes.filter((index) => index.relid === relation.oid && index.unique && !index.partial && !index.columns.includes(0))
    const key = indexes.find((index) => index.primary) ?? indexes[0]
    if (key === undefined) throw new NotProbed('it has no primary key or unique index to find the probe row by')
    const columns = columnsOf.get(relation.oid) ?? []
    return key.columns.map((num) => columns.find((column) => column.num === num)!.name)
  }

  await client.query('BEGIN')
  try {
    // A probe must never wait behind the application's locks.
    await client.query("SET LOCAL lock_timeout = '5s'; SET LOCAL standard_conforming_strings = on")
    // Through a Citus coordinator, as the tenancy driver does it: the tenant (and the role) reach the workers only as
    // SET LOCAL under this setting, each its own statement (Citus forwards a SET with its whole query string).
    if (citus) await client.query(`SET LOCAL ${propagateSetting} = 'local'`)
    // Signed policies trust a tenant only with its signature, which needs the key: signed here, as the connecting user.
    const signatures = new Map<string, string>()
    if (catalog.policies.some((policy) => `${policy.using ?? ''} ${policy.check ?? ''}`.includes(`${SIGNED_TENANT_FUNCTION}()`))) {
      const signed = await attempt(signaturesSql, [[ids.a, ids.b]])
      if (!signed.ok || signed.rows.length === 0) {
        for (const { ref } of targets)
          results.push(
            result(
              'not-probed',
              'warn',
              qualify(ref.schema, ref.table),
              `Not probed: the policies are signed, and ${catalog.sessionUser} cannot sign the probe tenants (${signed.ok ? `no key in ${SIGNING_KEY_TABLE}` : signed.message}).`,
              `Provision the key (prisma-tenancy signing-key set), and connect as a role that can read ${SIGNING_KEY_TABLE} (the migration role) with --role ${role}.`,
            ),
          )
        return { results, probed }
      }
      for (const row of signed.rows) signatures.set(row.tenant!, row.signature!)
    }
    const chooseTenant = (tenant: string) =>
      citus
        ? citusTenantStatement(setting, tenant).text
        : `SELECT set_config(${quoteLiteral(setting)}, ${quoteLiteral(tenant)}, true)${signatures.size === 0 ? '' : `, set_config(${quoteLiteral(signatureSetting(setting))}, ${quoteLiteral(signatures.get(tenant) ?? '')}, true)`}`
    if (switchRole) {
      const outcome = await attempt(`SET LOCAL ROLE ${quoteIdent(role)}`, [], true)
      if (!outcome.ok) {
        for (const { ref } of targets)
          results.push(result('not-probed', 'warn', qualify(ref.schema, ref.table), `Not probed: ${catalog.sessionUser} cannot act as ${role} (${outcome.message}).`, `GRANT ${quoteIdent(role)} TO ${quoteIdent(catalog.sessionUser)}; so the probes can act as ${role}, or pass --no-probes to check the catalogs only.`))
        return { results, probed }
      }
    }
    const registered = await registryTenant()
    if (registered !== undefined) ids = { ...ids, a: registered }
    for (const { ref, relation } of orderByForeignKeys(targets, catalog)) {
      const name = qualify(ref.schema, ref.table)
      const column = ref.column!
      const tenantType = (columnsOf.get(relation.oid) ?? []).find((candidate) => candidate.name === column)?.type ?? 'text'
      try {
        const key = keyOf(relation)
        const columns = columnsOf.get(relation.oid) ?? []
        const typeOf = (name: string) => columns.find((candidate) => candidate.name === name)!.type
        // Tenant, savepoint and A's row in one round trip; A's row stays for the tables that reference this one.
        const insertA = `${literalInsert(relation, await buildRow(relation, { [column]: ids.a }, ids.a))} RETURNING ${returning(relation)}`
        let stored: Row
        try {
          const answers = await inOneTrip(client, citus, [chooseTenant(ids.a), 'SAVEPOINT probe_row', insertA])
          stored = answers[answers.length - 1]!.rows[0] as Row
        } catch (error) {
          await client.query('ROLLBACK TO SAVEPOINT probe_row')
          throw new NotProbed(`writing a row as tenant A failed: ${(error as Error).message}`)
        }
        probeRows.set(relation.oid, new Map([[ids.a, stored]]))
        // Second rows, with fresh keys and tenant A's parents, built now: building may write shared parents,
        // which must outlive the rollbacks below. No RETURNING: it would add the SELECT policies' check on
        // the new row and hide a weak WITH CHECK.
        const forgedForA = literalInsert(relation, await buildRow(relation, { [column]: ids.a }, ids.a))
        const defaulted = await buildRow(relation, {}, ids.a)
        delete defaulted[column]
        const forgedDefault = literalInsert(relation, defaulted)
        const table = quoteTable(relation)
        const where = key.map((keyColumn) => `${quoteIdent(keyColumn)} = ${literal(stored[keyColumn] ?? null, typeOf(keyColumn))}`).join(' AND ')
        const blind = blindUpdate(relation, column, tenantType, ids.b)

        await client.query('RELEASE SAVEPOINT probe_row; SAVEPOINT probe_table')
        try {
          // Each probe goes back to the state with only A's row, chooses the tenant (set_config is undone by
          // the rollback too) and runs one statement: one round trip.
          const as = async (tenant: string, sql: string): Promise<Outcome & { rows: Row[] }> => {
            try {
              const answers = await inOneTrip(client, citus, ['ROLLBACK TO SAVEPOINT probe_table', chooseTenant(tenant), sql])
              const last = answers[answers.length - 1]!
              return { ok: true, rowCount: last.rowCount ?? 0, rows: last.rows as Row[] }
            } catch (error) {
              const { code, message } = error as { code?: string; message: string }
              return { ok: false, code: code ?? 'unknown', message, rows: [] }
            }
          }
          // A read that fails proves nothing: it counts as unknown (null), never as "nothing visible".
          const visible = async (tenant: string): Promise<number | null> => {
            const outcome = await as(tenant, `SELECT count(*)::int AS n FROM ${table} WHERE ${where}`)
            return outcome.ok ? Number(outcome.rows[0]?.n ?? 0) : null
          }
          const touch = `UPDATE ${table} SET ${quoteIdent(column)} = ${quoteIdent(column)} WHERE ${where}`

          const seen = await visible(ids.b)
          results.push(
            seen === 0
              ? result('probe-read', 'pass', name, "tenant B does not see tenant A's row")
              : seen === null
                ? result('probe-read', 'warn', name, "Inconclusive: tenant B's read of the probe row failed.", 'Rerun when nothing holds locks on the table; if it persists, the static checks are the proof for this table.')
                : result('probe-read', 'fail', name, `Tenant B sees tenant A's row (${seen} row(s)).`, 'Fix the failing static checks for this table; the policies do not filter by tenant.'),
          )

          // Also without a WHERE clause: a statement that reads no column needs no SELECT right, so only the
          // UPDATE and DELETE policies stand between tenant B and the rows. With them right it touches nothing.
          const targeted = await as(ids.b, touch)
          const unfiltered = await as(ids.b, `UPDATE ${table} SET ${quoteIdent(blind.column)} = ${literal(blind.value, blind.type)}`)
          results.push(unreached('probe-update', name, [targeted, unfiltered], 'UPDATE'))
          const targetedRemove = await as(ids.b, `DELETE FROM ${table} WHERE ${where}`)
          const unfilteredRemove = await as(ids.b, `DELETE FROM ${table}`)
          results.push(unreached('probe-delete', name, [targetedRemove, unfilteredRemove], 'DELETE'))
          results.push(refusal('probe-insert', name, await as(ids.b, forgedForA), 'tenant B cannot insert a row carrying tenant A', "Tenant B inserted a row carrying tenant A's id.", 'The INSERT policy WITH CHECK must compare the tenant column with the setting.'))

          const move = await as(ids.a, `UPDATE ${table} SET ${quoteIdent(column)} = ${literal(ids.b, tenantType)} WHERE ${where}`)
          // Citus never changes a row's distribution column, which is the tenant column: that refusal is the proof.
          const citusRefused = citus && !move.ok && move.code === '0A000' && /partition value/.test(move.message)
          results.push(
            citusRefused
              ? result('probe-move', 'pass', name, 'tenant A cannot move its row to tenant B (Citus refuses to change the distribution column)')
              : refusal('probe-move', name, move, 'tenant A cannot move its row to tenant B', 'Tenant A moved its row into tenant B.', 'The UPDATE policy WITH CHECK must compare the tenant column with the setting.'),
          )

          const problems: string[] = []
          let status: CheckStatus = 'pass'
          const seenWithoutTenant = await visible('')
          if (seenWithoutTenant === null) {
            problems.push('a read failed, so it proves nothing')
            status = 'warn'
          } else if (seenWithoutTenant > 0) {
            problems.push('reads return the row')
            status = 'fail'
          }
          const noTenantUpdate = await as('', touch)
          if (noTenantUpdate.ok && noTenantUpdate.rowCount > 0) {
            problems.push('an UPDATE changes it')
            status = 'fail'
          }
          const explicit = refusal('probe-no-tenant', name, await as('', forgedForA), '', '', '')
          if (explicit.status !== 'pass') {
            problems.push(explicit.status === 'fail' ? 'an INSERT naming tenant A succeeds' : `an INSERT naming tenant A was refused by ${explicit.message}, not by a policy`)
            if (explicit.status === 'fail' || status === 'pass') status = explicit.status
          }
          if ((await as('', forgedDefault)).ok) {
            problems.push(`an INSERT taking ${column} from its default succeeds`)
            status = 'fail'
          }
          results.push(
            status === 'pass'
              ? result('probe-no-tenant', 'pass', name, 'with no tenant set, reads return nothing and writes are refused')
              : result('probe-no-tenant', status, name, `With no tenant set, ${problems.join('; ')}.`, `Compare with NULLIF(current_setting('${setting}', true), '') so an unset tenant matches nothing.`),
          )
        } finally {
          // Keep A's row: the tables referencing this one take it as their parent.
          await client.query('ROLLBACK TO SAVEPOINT probe_table; RELEASE SAVEPOINT probe_table')
        }
        probed.push(name)
      } catch (error) {
        if (!(error instanceof NotProbed)) throw error
        results.push(result('not-probed', 'warn', name, `Not probed: ${error.message}`, error.fix))
      }
    }
  } finally {
    await client.query('ROLLBACK')
  }
  return { results, probed }

  /**
   * When tenant columns reference a shared registry (Organization.id, say) that
   * the connecting user cannot write (the app role itself, with production's
   * grants), tenant A is an existing registry entry, so the probes need no row
   * there (on Citus, always when there is one). Tenant B stays made up: it has no rows, which the probes rely on.
   */
  async function registryTenant(): Promise<string | undefined> {
    for (const { relation } of targets) {
      const tenantColumn = tenantColumnOf.get(relation.oid)
      const columns = columnsOf.get(relation.oid) ?? []
      for (const fk of catalog.foreignKeys.filter((candidate) => candidate.relid === relation.oid)) {
        const position = fk.columns.findIndex((num) => columns.find((column) => column.num === num)?.name === tenantColumn)
        const parent = byOid.get(fk.refRelid)
        if (position === -1 || parent === undefined || tenantColumnOf.has(parent.oid)) continue
        const parentColumn = (columnsOf.get(parent.oid) ?? []).find((column) => column.num === fk.refColumns[position])
        if (parentColumn === undefined) continue
        const { rows } = await client.query<{ writable: boolean }>("SELECT has_table_privilege(session_user, $1::oid, 'INSERT') AS writable", [parent.oid])
        // On Citus the connecting user's own registry row would not help: its session reaches the workers over
        // connections of its own, whose uncommitted rows the app role's shard writes do not see.
        if (rows[0]?.writable !== false && !citus) return undefined
        // The app role reads no registry row without a tenant; on Citus the connecting user looks.
        if (citus) await asSession()
        const existing = await attempt(`SELECT ${quoteIdent(parentColumn.name)}::text AS id FROM ${quoteTable(parent)} WHERE ${quoteIdent(parentColumn.name)} IS NOT NULL LIMIT 1`, [])
        if (citus) await asApp()
        const id = existing.rows[0]?.id
        if (typeof id === 'string') return id
      }
    }
    return undefined
  }

  /** A column to overwrite with a constant that trips no key: an update reading no column at all. */
  function blindUpdate(relation: Relation, tenantColumn: string, tenantType: string, tenantB: string): { column: string; type: string; value: string } {
    const keyed = new Set([
      ...catalog.foreignKeys.filter((fk) => fk.relid === relation.oid).flatMap((fk) => fk.columns),
      ...catalog.indexes.filter((index) => index.relid === relation.oid && index.unique).flatMap((index) => index.columns),
    ])
    for (const column of columnsOf.get(relation.oid) ?? []) {
      if (column.name === tenantColumn || column.generated || keyed.has(column.num)) continue
      const value = valueFor(column)
      if (value !== undefined) return { column: column.name, type: column.type, value }
    }
    return { column: tenantColumn, type: tenantType, value: tenantB }
  }
  function generatedValue(column: Column, relation: Relation): string {
    const value = valueFor(column)
    if (value === undefined) throw new NotProbed(`required column ${column.name} (${column.type}) of ${qualify(relation.schema, relation.name)} has no default, and the verifier cannot make up a value of that type`)
    return value
  }
}

function literal(value: string | null, type: string): string {
  return `${value === null ? 'NULL' : quoteLiteral(value)}::${type}`
}

function result(check: CheckId, status: CheckStatus, table: string, message: string, fix = ''): CheckResult {
  return { check, status, table, message, fix }
}

/** Tenant B's UPDATE or DELETE must reach no row; an error other than a policy refusal proves nothing either way. */
function unreached(check: CheckId, table: string, outcomes: Outcome[], command: 'UPDATE' | 'DELETE'): CheckResult {
  const reached = outcomes.find((outcome) => outcome.ok && outcome.rowCount > 0)
  if (reached?.ok === true)
    return result(check, 'fail', table, `Tenant B's ${command} reached ${reached.rowCount} row(s) of other tenants.`, `The ${command} policy USING clause must compare the tenant column with the setting.`)
  const inconclusive = outcomes.find((outcome): outcome is Extract<Outcome, { ok: false }> => !outcome.ok && outcome.code !== rlsViolation)
  if (inconclusive !== undefined) return result(check, 'warn', table, `Inconclusive: tenant B's ${command} failed with ${inconclusive.message} (SQLSTATE ${inconclusive.code}).`, 'Rerun when nothing holds locks on the table; if it persists, the static checks are the proof for this table.')
  return result(check, 'pass', table, `tenant B's ${command} does not reach tenant A's row, by key or unfiltered`)
}

/** A write that must be refused: by a policy is a pass, by anything else proves nothing about the policy. */
function refusal(check: CheckId, table: string, outcome: Outcome, passed: string, succeeded: string, fix: string): CheckResult {
  if (outcome.ok) return outcome.rowCount === 0 ? result(check, 'pass', table, passed) : result(check, 'fail', table, succeeded, fix)
  if (outcome.code === rlsViolation) return result(check, 'pass', table, `${passed} (refused by row-level security)`)
  return result(check, 'warn', table, `${outcome.message} (SQLSTATE ${outcome.code})`, 'Refused by another constraint before the policy could decide: the static checks are the proof for this table.')
}

function tenantIds(columns: (Column | undefined)[]): { a: string; b: string } {
  if (columns.some((column) => column?.category === 'N')) {
    const base = 2_000_000_000 + (randomBytes(2).readUInt16BE() % 10_000) * 2
    return { a: String(base), b: String(base + 1) }
  }
  // uuids are valid text ids too
  return { a: randomUUID(), b: randomUUID() }
}

function valueFor(column: Column): string | undefined {
  const length = /\((\d+)\)/.exec(column.type)?.[1]
  const text = `p${randomBytes(8).toString('hex')}`.slice(0, length === undefined ? 17 : Number(length))
  switch (column.baseType) {
    case 'uuid':
      return randomUUID()
    case 'json':
    case 'jsonb':
      return '{}'
    case 'bytea':
      return '\\x00'
    case 'inet':
    case 'cidr':
      return '127.0.0.1'
  }
  switch (column.category) {
    case 'S':
      return text
    case 'N':
      return String(1 + (randomBytes(2).readUInt16BE() % 30_000))
    case 'B':
      return 'false'
    case 'D':
      return column.baseType === 'time' || column.baseType === 'timetz' ? '12:00:00' : new Date().toISOString()
    case 'E':
      return column.firstEnumLabel ?? undefined
    case 'A':
      return '{}'
  }
  return undefined
}

/** Tenant tables ordered so foreign-key parents come before their children. */
function orderByForeignKeys<T extends { relation: Relation }>(targets: T[], catalog: Catalog): T[] {
  const byOid = new Map(targets.map((target) => [target.relation.oid, target]))
  const ordered: T[] = []
  const state = new Map<number, 'visiting' | 'done'>()
  const visit = (target: T) => {
    if (state.get(target.relation.oid) !== undefined) return
    state.set(target.relation.oid, 'visiting')
    for (const fk of catalog.foreignKeys) {
      const parent = fk.relid === target.relation.oid ? byOid.get(fk.refRelid) : undefined
      if (parent !== undefined && parent !== target) visit(parent)
    }
    state.set(target.relation.oid, 'done')
    ordered.push(target)
  }
  for (const target of targets) visit(target)
  return ordered
}

/**
 * Statements in one simple query, one round trip; on Citus one query each,
 * since it forwards a SET LOCAL to the workers with the whole query string.
 */
async function inOneTrip(client: pg.ClientBase, citus: boolean, statements: string[]): Promise<pg.QueryResult[]> {
  if (!citus) return (await client.query(statements.join('; '))) as unknown as pg.QueryResult[]
  const answers: pg.QueryResult[] = []
  for (const statement of statements) answers.push(await client.query(statement))
  return answers
}


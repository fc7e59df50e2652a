import type pg from 'pg'
import { propagateSetting } from '../citus/distribution-sql.js'
import { quoteIdent, quoteLiteral } from '../database/sql-identifiers.js'
import type { CheckResult } from './report.js'
import { qualify, type TableRef } from './static-checks.js'

/** Whether the database runs Citus (the extension is installed): verify then checks the distribution too. */
export async function runsCitus(client: pg.ClientBase): Promise<boolean> {
  return ((await client.query("SELECT 1 FROM pg_extension WHERE extname = 'citus'")).rowCount ?? 0) > 0
}

const regenerate = (role: string) => `Run \`prisma-tenancy generate --citus --app-role ${role}\` and \`prisma-tenancy migrate deploy\`.`

/**
 * The Citus checks, on the coordinator: every tenant table is distributed on
 * its tenant column (else a query of one tenant is not routed to its shard,
 * and a local table is not on the workers at all); every shard, on every
 * worker, has the table's policies and forced row-level security (the workers
 * run the queries, so they enforce them); and the application role has
 * citus.propagate_set_commands = 'local', without which the driver's
 * SET LOCAL of the tenant never reaches the workers and every query sees no rows.
 */
export async function runCitusChecks(client: pg.ClientBase, role: string, tenantTables: TableRef[]): Promise<CheckResult[]> {
  const results: CheckResult[] = []
  for (const ref of tenantTables) {
    const name = qualify(ref.schema, ref.table)
    const regclass = `${quoteIdent(ref.schema)}.${quoteIdent(ref.table)}`
    const { rows } = await client.query<{ type: string; column: string }>(
      'SELECT citus_table_type AS type, distribution_column AS column FROM citus_tables WHERE table_name = to_regclass($1)',
      [regclass],
    )
    const [table] = rows
    if (table === undefined || table.type !== 'distributed' || table.column !== ref.column) {
      const now = table === undefined ? 'is not a Citus table' : table.type === 'distributed' ? `is distributed on ${table.column}` : `is a ${table.type} table`
      results.push({ check: 'citus-distributed', status: 'fail', table: name, message: `It ${now}, not distributed on its tenant column ${ref.column ?? ''}.`, fix: regenerate(role) })
      continue
    }
    results.push({ check: 'citus-distributed', status: 'pass', table: name, message: `distributed on ${ref.column}`, fix: '' })
    // The coordinator's policies, and on each shard: its policy count, and row-level security enabled and forced.
    const expected = (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_policy WHERE polrelid = to_regclass($1)', [regclass])).rows[0]?.n ?? 0
    const { rows: shards } = await client.query<{ node: string; success: boolean; result: string }>(
      `SELECT s.nodename || ':' || s.nodeport AS node, r.success, r.result
         FROM run_command_on_shards(${quoteLiteral(regclass)}, $$SELECT (SELECT count(*) FROM pg_policy WHERE polrelid = '%1$s'::regclass) || ' ' || (relrowsecurity AND relforcerowsecurity) FROM pg_class WHERE oid = '%1$s'::regclass$$) r
         JOIN citus_shards s ON s.shardid = r.shardid`,
    )
    const wrong = shards.filter((shard) => !shard.success || shard.result !== `${expected} true`)
    if (shards.length === 0 || wrong.length > 0) {
      const nodes = [...new Set(wrong.map((shard) => shard.node))].join(', ')
      results.push({
        check: 'citus-shard-policies',
        status: 'fail',
        table: name,
        message: shards.length === 0 ? 'It has no shards.' : `${wrong.length} of its ${shards.length} shards (on ${nodes}) lack its ${expected} policies or forced row-level security.`,
        fix: `Policies created after the table was distributed reach the shards only when sent alone: ${regenerate(role)}`,
      })
    } else {
      const nodes = new Set(shards.map((shard) => shard.node)).size
      results.push({ check: 'citus-shard-policies', status: 'pass', table: name, message: `all ${shards.length} shards on ${nodes} node(s) have its ${expected} policies, row-level security forced`, fix: '' })
    }
  }
  // What a new session of the role gets: its setting in this database, else its own, else the database's, else the server's.
  const { rows } = await client.query<{ value: string | null }>(
    `SELECT coalesce(
       (SELECT split_part(c, '=', 2) FROM pg_db_role_setting s, unnest(s.setconfig) c, pg_roles r, pg_database d
         WHERE split_part(c, '=', 1) = $2 AND r.rolname = $1 AND d.datname = current_database()
         ORDER BY (s.setrole = r.oid) DESC, (s.setdatabase = d.oid) DESC
         LIMIT 1),
       (SELECT reset_val FROM pg_settings WHERE name = $2 AND source IN ('default', 'configuration file'))) AS value`,
    [role, propagateSetting],
  )
  const value = rows[0]?.value ?? null
  results.push(
    value === 'local'
      ? { check: 'citus-propagation', status: 'pass', table: null, message: `${role} has ${propagateSetting} = 'local'`, fix: '' }
      : {
          check: 'citus-propagation',
          status: 'fail',
          table: null,
          message: `${role} has ${propagateSetting} = '${value ?? ''}': the tenant's SET LOCAL does not reach the workers, so the application sees no rows (the tenancy driver refuses to connect).`,
          fix: `ALTER ROLE ${quoteIdent(role)} SET ${propagateSetting} = 'local'; (the migration \`prisma-tenancy generate --citus --app-role ${role}\` writes does it).`,
        },
  )
  return results
}

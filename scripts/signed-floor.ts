// Measures what the signed tenant context costs the server per statement, against the floor of
// any SECURITY DEFINER PL/pgSQL function: server CPU (the backend's /proc/<pid>/schedstat, so the
// server must run on this machine) per transaction of `BEGIN; set_config x2; primary-key lookup;
// COMMIT`, the shape the driver sends for one query, as the application role. Variants, interleaved
// round by round, each on its own connection:
//   unsigned          the default policy's expression, current_setting(...)
//   initplan          the same as a scalar subquery (how the signed policy calls its function)
//   definer-constant  a SECURITY DEFINER, search_path-pinned PL/pgSQL function returning a constant
//   definer-key-read  the same, reading the key table (the least a verifying function must do)
//   signed            prisma_tenancy.current_tenant(), as `generate --signed` writes it
//   npx tsx scripts/signed-floor.ts [--rounds 50] [--per-round 300] [--json]   (DATABASE_URL: a server; else embedded)
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { tenantSignature } from '../src/context/tenant-signature.js'
import { createDatabase, dropDatabase, ensureAppRole, withClient } from '../src/database/admin.js'
import { quoteIdent } from '../src/database/sql-identifiers.js'
import { paddedKeys, signedContextStatements } from '../src/policy/signed-context.js'
import { startPostgres } from '../src/testing/postgres-provider.js'
import { defaultAppRole, uniqueDatabaseName } from '../src/testing/test-server.js'
import { median, percentile } from './bench/stats.js'

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '50' }, 'per-round': { type: 'string', default: '300' }, json: { type: 'boolean', default: false } } })
const rounds = Number(args.rounds)
const perRound = Number(args['per-round'])
const setting = 'app.current_tenant'
const role = quoteIdent(defaultAppRole.name)
const pinned = 'LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp'

const variants: { name: string; expression: string }[] = [
  { name: 'unsigned', expression: `current_setting('${setting}', true)` },
  { name: 'initplan', expression: `(SELECT current_setting('${setting}', true))` },
  { name: 'definer-constant', expression: '(SELECT floor.definer_constant())' },
  { name: 'definer-key-read', expression: '(SELECT floor.definer_key_read())' },
  { name: 'signed', expression: '(SELECT prisma_tenancy.current_tenant())' },
]

const server = await startPostgres({})
const name = uniqueDatabaseName('signed_floor')
await ensureAppRole(server.adminUrl, defaultAppRole)
const url = await createDatabase(server.adminUrl, name)
const clients: pg.Client[] = []
try {
  const key = Buffer.alloc(32, 7)
  const { inner, outer } = paddedKeys(key)
  await withClient(url, async (client) => {
    for (const statement of signedContextStatements(setting, defaultAppRole.name)) await client.query(statement.filter((line) => !line.startsWith('--')).join('\n'))
    await client.query('INSERT INTO prisma_tenancy.signing_key (inner_key, outer_key) VALUES ($1, $2)', [inner, outer])
    await client.query(`CREATE SCHEMA floor`)
    await client.query(`CREATE FUNCTION floor.definer_constant() RETURNS text ${pinned} AS $$ BEGIN RETURN 'acme'; END $$`)
    await client.query(`CREATE FUNCTION floor.definer_key_read() RETURNS text ${pinned} AS $$ BEGIN RETURN (SELECT 'acme'::text FROM prisma_tenancy.signing_key); END $$`)
    await client.query(`CREATE TABLE docs (tenant_id text NOT NULL, id int NOT NULL, title text, PRIMARY KEY (tenant_id, id))`)
    await client.query(`INSERT INTO docs SELECT CASE WHEN g % 10 = 0 THEN 'acme' ELSE 't' || (g % 10) END, g, 'title ' || g FROM generate_series(1, 10000) g`)
    await client.query('ANALYZE docs')
    await client.query(`GRANT USAGE ON SCHEMA floor, prisma_tenancy TO ${role}`)
    await client.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA floor, prisma_tenancy TO ${role}`)
    await client.query(`GRANT SELECT ON docs TO ${role}`)
  })
  const signature = tenantSignature(key, 'acme', Math.floor(Date.now() / 1000) + 3600)
  const appUrl = new URL(url)
  appUrl.username = defaultAppRole.name
  appUrl.password = defaultAppRole.password
  const cpuNanoseconds = (pid: number) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0])
  const runs = []
  for (const variant of variants) {
    const client = new pg.Client({ connectionString: appUrl.toString() })
    clients.push(client)
    await client.connect()
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid
    // Simple protocol, one message per transaction: nothing of the driver's differs between variants.
    const sql = `BEGIN; SELECT set_config('${setting}', 'acme', true), set_config('${setting}_sig', '${signature}', true); SELECT * FROM docs WHERE tenant_id = ${variant.expression} AND id = 10; COMMIT`
    const check = await client.query(sql)
    if ((check as unknown as pg.QueryResult[])[2]?.rowCount !== 1) throw new Error(`${variant.name}: the lookup found no row`)
    runs.push({ variant, client, pid, sql, perTransaction: [] as number[] })
  }
  for (let round = 0; round < rounds; round++) {
    for (const run of runs) {
      for (let i = 0; i < 20; i++) await run.client.query(run.sql)
      const before = cpuNanoseconds(run.pid)
      for (let i = 0; i < perRound; i++) await run.client.query(run.sql)
      run.perTransaction.push((cpuNanoseconds(run.pid) - before) / perRound / 1000)
    }
  }
  // The low end of the rounds: the least the server needed, which other work on the machine only adds to.
  const p10Of = (values: number[]) => percentile([...values].sort((a, b) => a - b), 10)
  const base = p10Of(runs[0]!.perTransaction)
  const results = runs.map((run) => {
    const p10 = p10Of(run.perTransaction)
    return { variant: run.variant.name, server_cpu_us_p10: Math.round(p10 * 10) / 10, server_cpu_us_median: Math.round(median(run.perTransaction) * 10) / 10, over_unsigned_us: Math.round((p10 - base) * 10) / 10 }
  })
  if (args.json) process.stdout.write(`${JSON.stringify({ server: server.kind, rounds, perRound, results })}\n`)
  for (const row of results) process.stderr.write(`${row.variant.padEnd(18)} ${String(row.server_cpu_us_p10).padStart(6)} µs (p10 of ${rounds} rounds)  ${row.over_unsigned_us >= 0 ? '+' : ''}${row.over_unsigned_us} µs over unsigned   median ${row.server_cpu_us_median} µs\n`)
} finally {
  await Promise.all(clients.map((client) => client.end().catch(() => undefined)))
  await dropDatabase(server.adminUrl, name)
  await server.stop()
}

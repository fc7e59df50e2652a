import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { createReadStream, createWriteStream } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { withClient } from '../src/database/admin.js'
import { isTenancyError } from '../src/errors.js'
import { createTestDatabase, type TestDatabase } from '../src/testing/index.js'
import { copyLines } from '../src/tenants/copy-lines.js'
import { createTenant } from '../src/tenants/create-tenant.js'
import { exportTenant } from '../src/tenants/export-tenant.js'
import { importTenant } from '../src/tenants/import-tenant.js'
import { runCliCaptured } from './support/cli.js'
import { copyExampleProject } from './support/example-project.js'

const server = inject('prismaTenancy')
const databases: TestDatabase[] = []
afterAll(async () => {
  for (const database of databases) await database.drop()
})

// A tenant table with every type that must survive the round trip.
const ledgerModel = `
model Ledger {
  id       String   @id
  tenantId String   @default(dbgenerated("current_setting('app.current_tenant'::text, true)")) @map("tenant_id")
  amount   Decimal  @db.Decimal(30, 10)
  big      BigInt
  meta     Json
  blob     Bytes
  at       DateTime @db.Timestamptz(6)
  day      DateTime @db.Date
  tags     String[]
  nums     Int[]
  ratio    Float
  note     String?

  @@index([tenantId])
}
`
const ledgerTable = `CREATE TABLE "Ledger" (id text PRIMARY KEY, tenant_id text NOT NULL DEFAULT current_setting('app.current_tenant'::text, true), amount numeric(30,10) NOT NULL, big bigint NOT NULL, meta jsonb NOT NULL, blob bytea NOT NULL, at timestamptz(6) NOT NULL, day date NOT NULL, tags text[], nums integer[], ratio double precision NOT NULL, note text);
  CREATE INDEX ON "Ledger" (tenant_id)`
const tables = [
  { table: 'Tenant', column: 'id' },
  { table: 'Project', column: 'tenant_id' },
  { table: 'tasks', column: 'tenant_id' },
  { table: 'Comment', column: 'tenant_id' },
  { table: 'project_members', column: 'tenant_id' },
  { table: 'Ledger', column: 'tenant_id' },
]

let schema = ''
let exportFile = ''
let source: TestDatabase

async function database(): Promise<TestDatabase> {
  const created = await createTestDatabase(server)
  databases.push(created)
  await withClient(created.adminUrl, (client) => client.query(ledgerTable))
  return created
}

/** Every row of the tenant, table by table, without the tenant column, in a stable order: equal rows, equal text. */
async function rowsOf(url: string, tenant: string): Promise<Record<string, string[]>> {
  return withClient(url, async (client) => {
    const result: Record<string, string[]> = {}
    for (const { table, column } of tables) {
      const { rows } = await client.query<{ row: string }>(`SELECT (to_jsonb(t) - $2)::text AS row FROM "${table}" t WHERE "${column}" = $1 ORDER BY 1`, [tenant, column])
      result[table] = rows.map((row) => row.row)
    }
    return result
  })
}

async function code(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (error: unknown) => (isTenancyError(error) ? error.code : String(error)),
  )
}

beforeAll(async () => {
  const project = await copyExampleProject()
  schema = project.schema
  await writeFile(schema, `${await readFile(schema, 'utf8')}${ledgerModel}`)
  exportFile = join(project.dir, 'acme.jsonl')
  source = await database()
  for (const tenant of ['acme', 'other']) {
    await createTenant(tenant, { databaseUrl: source.adminUrl, schema, data: { name: `Name of ${tenant}` } })
    await withClient(source.adminUrl, async (client) => {
      await client.query(`INSERT INTO "Project" (id, tenant_id, name, country) VALUES ($1 || '-p', $1, 'Roadmap "2027"', NULL)`, [tenant])
      await client.query(`INSERT INTO "tasks" (id, tenant_id, project_id, title, done) VALUES ($1 || '-t', $1, $1 || '-p', E'line\\nbreak', true)`, [tenant])
      await client.query(`INSERT INTO "Comment" (id, tenant_id, task_id, body) VALUES ($1 || '-c', $1, $1 || '-t', 'ünïcödé ✓')`, [tenant])
      await client.query(`INSERT INTO "project_members" (tenant_id, project_id, user_email) VALUES ($1, $1 || '-p', 'a@example.com')`, [tenant])
      await client.query(
        `INSERT INTO "Ledger" (id, tenant_id, amount, big, meta, blob, at, day, tags, nums, ratio, note) VALUES
           ($1 || '-l1', $1, '12345678901234567890.0123456789', 9223372036854775807, '{"a": [1, 2.50, {"b": null}], "s": "é\\n"}', '\\x00ff10', '2026-01-02 03:04:05.123456+05:30', '2026-02-28', ARRAY['a,b', 'c"d', NULL], '{1,-2}', 0.1, NULL),
           ($1 || '-l2', $1, '-0.0000000001', -9223372036854775808, '[]', '\\x', '1970-01-01 00:00:00+00', '0001-01-01', '{}', NULL, 1e-300, 'x')`,
        [tenant],
      )
    })
  }
  const output = createWriteStream(exportFile)
  await exportTenant('acme', { databaseUrl: source.adminUrl, schema, output })
  output.end()
  await finished(output)
})

describe('tenant export', () => {
  it('writes a header with tables, migration and row counts, then one line per row of that tenant only', async () => {
    const lines = (await readFile(exportFile, 'utf8')).trimEnd().split('\n')
    const header = JSON.parse(lines[0]!) as { tenant: string; migration: string; tables: { table: string; rows: number }[] }
    expect(header.tenant).toBe('acme')
    expect(header.migration).toMatch(/_tenant_registry$/)
    expect(header.tables.map((table) => [table.table, table.rows])).toEqual([
      ['public.Tenant', 1],
      ['public.Ledger', 2],
      ['public.Project', 1],
      ['public.project_members', 1],
      ['public.tasks', 1],
      ['public.Comment', 1],
    ])
    expect(lines).toHaveLength(1 + 7)
    expect(lines.slice(1).every((line) => !line.includes('other'))).toBe(true)
    // PostgreSQL writes the row lines: byte for byte what JSON.stringify({ table, row }) writes (escapes, unicode, key order).
    expect(lines.slice(1)).toEqual(lines.slice(1).map((line) => JSON.stringify(JSON.parse(line) as unknown)))
  })

  it('through the CLI writes the same rows to --out and the summary with --json; an unknown tenant exits 2', async () => {
    const file = `${exportFile}.cli`
    const result = await runCliCaptured(['tenant', 'export', 'acme', '--out', file, '--schema', schema, '--database-url', source.adminUrl, '--json'])
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ tenant: 'acme', tables: expect.arrayContaining([{ table: 'public.Ledger', rows: 2 }]) })
    const rowLines = (text: string) => text.trimEnd().split('\n').slice(1)
    expect(rowLines(await readFile(file, 'utf8'))).toEqual(rowLines(await readFile(exportFile, 'utf8')))
    const unknown = await runCliCaptured(['tenant', 'export', 'nobody', '--out', file, '--schema', schema, '--database-url', source.adminUrl])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('error TENANT_UNKNOWN')
  })
  it('with --schema and --database-url does not read prisma.config.ts: a broken one stops only an export that needs it', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'prisma-tenancy-broken-config-'))
    await writeFile(join(cwd, 'prisma.config.ts'), 'export default {{ not a config')
    const file = join(cwd, 'acme.jsonl')
    const output = createWriteStream(file)
    await exportTenant('acme', { cwd, schema, databaseUrl: source.adminUrl, output })
    output.end()
    await finished(output)
    const rowLines = (text: string) => text.trimEnd().split('\n').slice(1)
    expect(rowLines(await readFile(file, 'utf8'))).toEqual(rowLines(await readFile(exportFile, 'utf8')))
    expect(await code(exportTenant('acme', { cwd, databaseUrl: source.adminUrl, output: new Writable({ write: (_chunk, _encoding, done) => done() }) }))).toBe('CONFIG_INVALID')
  })
})

describe('copying lines out of PostgreSQL (what export streams rows with)', () => {
  it('delivers every row in order to an output that is slower than the server and keeps the chunks, waiting for it to drain', async () => {
    const chunks: Buffer[] = []
    let waits = 0
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk)
        setTimeout(done, 1)
      },
    })
    slow.on('drain', () => (waits += 1))
    const rows = await withClient(source.adminUrl, (client) =>
      copyLines(client, `COPY (SELECT 'row ' || g || ' ' || repeat('x', g % 300) FROM generate_series(1, 20000) g) TO STDOUT (FORMAT binary)`, slow),
    )
    expect(rows).toBe(20000)
    expect(waits).toBeGreaterThan(0)
    const lines = Buffer.concat(chunks).toString('utf8').split('\n')
    expect(lines).toHaveLength(20001)
    expect(lines.slice(0, -1).every((line, index) => line === `row ${index + 1} ${'x'.repeat((index + 1) % 300)}`)).toBe(true)
  })

  it('writes the same bytes to a file, whose write buffers it fills again once written, as to an output that keeps its chunks', async () => {
    const sql = `COPY (SELECT 'row ' || g || ' ' || repeat('x', g % 300) FROM generate_series(1, 20000) g) TO STDOUT (FORMAT binary)`
    const chunks: Buffer[] = []
    const keeper = new Writable({ write: (chunk: Buffer, _encoding, done) => (chunks.push(chunk), done()) })
    const file = join(tmpdir(), `prisma-tenancy-copy-${process.pid}.txt`)
    const output = createWriteStream(file)
    const rows = await withClient(source.adminUrl, async (client) => [await copyLines(client, sql, keeper), await copyLines(client, sql, output)])
    output.end()
    await finished(output)
    expect(rows).toEqual([20000, 20000])
    const written = await readFile(file)
    expect(written.length).toBeGreaterThan(4 * 64 * 1024)
    expect(written.equals(Buffer.concat(chunks))).toBe(true)
  })

  it("rejects with PostgreSQL's error when the query fails part-way, and the connection goes on working", async () => {
    const sink = new Writable({ write: (_chunk, _encoding, done) => done() })
    const outcome = await withClient(source.adminUrl, async (client) => {
      const error = await copyLines(client, `COPY (SELECT (1 / (3 - g))::text FROM generate_series(1, 5) g) TO STDOUT (FORMAT binary)`, sink).then(
        () => null,
        (caught: Error) => caught.message,
      )
      return { error, after: (await client.query<{ n: number }>('SELECT 1 AS n')).rows[0]?.n }
    })
    expect(outcome).toEqual({ error: 'division by zero', after: 1 })
  })

  it("rejects with the output's error when the output fails while the socket waits for it to drain, and the connection goes on working", async () => {
    const broken = new Writable({ highWaterMark: 16, write: (_chunk, _encoding, done) => setTimeout(() => done(new Error('disk full')), 5) })
    broken.on('error', () => undefined)
    const outcome = await withClient(source.adminUrl, async (client) => {
      const error = await copyLines(client, `COPY (SELECT repeat('x', 100) FROM generate_series(1, 100000)) TO STDOUT (FORMAT binary)`, broken).then(
        () => null,
        (caught: Error) => caught.message,
      )
      return { error, after: (await client.query<{ n: number }>('SELECT 1 AS n')).rows[0]?.n }
    })
    expect(outcome).toEqual({ error: 'disk full', after: 1 })
  })
})

describe('tenant import', () => {
  it('reproduces the rows exactly in a fresh database: Decimal, BigInt, Json, bytes, dates and arrays included', async () => {
    const target = await database()
    const result = await importTenant({ databaseUrl: target.adminUrl, schema, input: createReadStream(exportFile) })
    expect(result).toMatchObject({ tenant: 'acme', replaced: false })
    expect(await rowsOf(target.adminUrl, 'acme')).toEqual(await rowsOf(source.adminUrl, 'acme'))
    const ledger = await withClient(target.adminUrl, async (client) => (await client.query(`SELECT amount::text, big::text, encode(blob, 'hex') AS blob, tags FROM "Ledger" WHERE id = 'acme-l1'`)).rows[0])
    expect(ledger).toEqual({ amount: '12345678901234567890.0123456789', big: '9223372036854775807', blob: '00ff10', tags: ['a,b', 'c"d', null] })
  })

  it('under a new id with --as, the same rows carry the new tenant (CLI, --json)', async () => {
    const target = await database()
    const result = await runCliCaptured(['tenant', 'import', exportFile, '--as', 'acme-copy', '--schema', schema, '--database-url', target.adminUrl, '--json'])
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ tenant: 'acme-copy', exportedTenant: 'acme' })
    expect(await rowsOf(target.adminUrl, 'acme-copy')).toEqual(await rowsOf(source.adminUrl, 'acme'))
    expect(await rowsOf(target.adminUrl, 'acme')).toEqual(Object.fromEntries(tables.map(({ table }) => [table, []])))
  })

  it('refuses an existing tenant and changes nothing; --replace replaces it', async () => {
    const target = await database()
    await importTenant({ databaseUrl: target.adminUrl, schema, input: createReadStream(exportFile) })
    await withClient(target.adminUrl, (client) => client.query(`UPDATE "Project" SET name = 'edited' WHERE tenant_id = 'acme'`))
    const edited = await rowsOf(target.adminUrl, 'acme')
    expect(await code(importTenant({ databaseUrl: target.adminUrl, schema, input: createReadStream(exportFile) }))).toBe('TENANT_EXISTS')
    expect(await rowsOf(target.adminUrl, 'acme')).toEqual(edited)
    await importTenant({ databaseUrl: target.adminUrl, schema, input: createReadStream(exportFile), replace: true })
    expect(await rowsOf(target.adminUrl, 'acme')).toEqual(await rowsOf(source.adminUrl, 'acme'))
  })

  it('a malformed line, a row of another tenant or a truncated file is a clear error naming the line, and nothing is imported', async () => {
    const target = await database()
    const lines = (await readFile(exportFile, 'utf8')).trimEnd().split('\n')
    const broken = async (name: string, content: string[]) => {
      const file = join(tmpdir(), `${name}-${process.pid}-${Date.now()}.jsonl`)
      await writeFile(file, `${content.join('\n')}\n`)
      return runCliCaptured(['tenant', 'import', file, '--schema', schema, '--database-url', target.adminUrl])
    }
    const malformed = await broken('malformed', [...lines.slice(0, 5), '{"table": "public.tasks", "row": ', ...lines.slice(6)])
    expect(malformed.code).toBe(2)
    expect(malformed.stderr).toContain('error IMPORT_INVALID: Line 6 of the import: not valid JSON')
    const foreign = await broken('foreign', [...lines.slice(0, 7), lines[7]!.replace('"tenant_id":"acme"', '"tenant_id":"other"')])
    expect(foreign.stderr).toContain('not the exported tenant "acme"')
    const truncated = await broken('truncated', lines.slice(0, -1))
    expect(truncated.stderr).toMatch(/the header promises 1 row\(s\) of public\.\w+ but the file holds 0/)
    expect(await rowsOf(target.adminUrl, 'acme')).toEqual(Object.fromEntries(tables.map(({ table }) => [table, []])))
  })
})

describe('tenant import --batch-size (resumable)', () => {
  it('commits batch by batch; interrupted by a refused row, a rerun with the same file continues and ends with exactly the exported rows', async () => {
    const target = await database()
    const cli = (...extra: string[]) => runCliCaptured(['tenant', 'import', exportFile, '--schema', schema, '--database-url', target.adminUrl, ...extra])
    // The tasks row (line 7, in the third batch of two rows) is refused until the trigger goes.
    await withClient(target.adminUrl, (client) =>
      client.query(`CREATE FUNCTION refuse_task() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused for the test'; END $$;
        CREATE TRIGGER refuse_task BEFORE INSERT ON "tasks" FOR EACH ROW EXECUTE FUNCTION refuse_task()`),
    )
    const stopped = await cli('--batch-size', '2')
    expect(stopped.code).toBe(2)
    expect(stopped.stderr).toContain('error IMPORT_INVALID: Line 7 of the import: PostgreSQL refused rows of public.tasks')
    expect(stopped.stderr).toContain('The rows up to line 5 are imported')
    const counts = (rows: Record<string, string[]>) => Object.fromEntries(Object.entries(rows).map(([table, list]) => [table, list.length]))
    // The first two batches stay: the registry row, both Ledger rows and the Project.
    expect(counts(await rowsOf(target.adminUrl, 'acme'))).toEqual({ Tenant: 1, Ledger: 2, Project: 1, project_members: 0, tasks: 0, Comment: 0 })
    // The partly imported tenant exists: a one-transaction import refuses to mix with it, and changes nothing.
    expect((await cli()).stderr).toContain('error TENANT_EXISTS')
    expect(counts(await rowsOf(target.adminUrl, 'acme'))).toEqual({ Tenant: 1, Ledger: 2, Project: 1, project_members: 0, tasks: 0, Comment: 0 })

    await withClient(target.adminUrl, (client) => client.query('DROP TRIGGER refuse_task ON "tasks"; DROP FUNCTION refuse_task()'))
    const resumed = await cli('--batch-size', '2', '--json')
    expect(resumed.code).toBe(0)
    expect(JSON.parse(resumed.stdout)).toMatchObject({ tenant: 'acme', resumed: true })
    expect(await rowsOf(target.adminUrl, 'acme')).toEqual(await rowsOf(source.adminUrl, 'acme'))
    // Done: nothing left to resume, so the same import again is refused as for any existing tenant.
    expect((await cli('--batch-size', '2')).stderr).toContain('error TENANT_EXISTS')
  })

  it('with --replace starts over, and a fresh resumable import under another id matches the export', async () => {
    const target = await database()
    const first = await importTenant({ databaseUrl: target.adminUrl, schema, input: createReadStream(exportFile), as: 'acme-b', batchSize: 3 })
    expect(first).toMatchObject({ tenant: 'acme-b', resumed: false, replaced: false })
    expect(await rowsOf(target.adminUrl, 'acme-b')).toEqual(await rowsOf(source.adminUrl, 'acme'))
    await withClient(target.adminUrl, (client) => client.query(`UPDATE "Project" SET name = 'edited' WHERE tenant_id = 'acme-b'`))
    const replaced = await importTenant({ databaseUrl: target.adminUrl, schema, input: createReadStream(exportFile), as: 'acme-b', batchSize: 1, replace: true })
    expect(replaced).toMatchObject({ resumed: false, replaced: true })
    expect(await rowsOf(target.adminUrl, 'acme-b')).toEqual(await rowsOf(source.adminUrl, 'acme'))
  })

  it('refuses a batch size that is not a whole number from 1 to 1000000 before touching the database', async () => {
    const result = await runCliCaptured(['tenant', 'import', exportFile, '--schema', schema, '--database-url', 'postgresql://nobody@127.0.0.1:1/none', '--batch-size', '0'])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('--batch-size must be a whole number from 1 to 1000000')
  })
})

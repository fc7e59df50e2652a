import type pg from 'pg'
import { z } from 'zod'
import { readSchemaFiles, resolveProject, type ProjectOptions } from '../config/project-config.js'
import { defaultTenantIdSchema } from '../context/tenant-id.js'
import { parseTenancyNames } from '../context/tenant-setting.js'
import { withClient } from '../database/admin.js'
import { parseDatabaseUrl } from '../database/connection-url.js'
import { quoteIdent, quoteLiteral } from '../database/sql-identifiers.js'
import { TenancyError } from '../errors.js'
import { readMigrationsDirectory } from '../migrate/migrations-directory.js'
import { classifyModels, noTenantColumnError, qualifiedName, type Finding, type TenantColumnType, type TenantTable } from '../policy/classify-models.js'
import { checkPolicies } from '../policy/generate-policies.js'
import { quoteTable } from '../policy/policy-sql.js'
import { parseDatamodel } from '../policy/prisma-schema.js'
import { UNBATCHED_BACKFILL_LIMIT } from './backfill-limit.js'
import { diffLiveDatabase, type DiffStatement } from './diff-live-database.js'

export interface AdoptOptions extends ProjectOptions {
  /** The tenant every existing row belongs to. */
  defaultTenant: string
  /** Rows per backfill transaction. Required for a table of more than UNBATCHED_BACKFILL_LIMIT rows. */
  batchSize?: number | undefined
  tenantField?: string | undefined
  setting?: string | undefined
  /** Passed to `generate` for the final step: the role that gets table grants. */
  appRole?: string | undefined
}


/** Each transactional step gives up rather than queue behind a long transaction, with every later query queued behind it. */
export const ADOPT_LOCK_TIMEOUT = '5s'

/** The procedure the backfill steps CALL; created by the first step, dropped by the last. */
export const BACKFILL_PROCEDURE = 'prisma_tenancy_backfill'

export interface AdoptionStep {
  /** Name part of the migration folder. */
  name: string
  description: string
  /** False: one statement that PostgreSQL refuses inside a transaction (CONCURRENTLY, a CALL that commits). */
  transactional: boolean
  /** The lock each table is held with, and for how long. */
  lock: string
  tables: string[]
  statements: string[]
  /** Written into the script as comments: what to do when this step fails. */
  notes: string[]
  /** The row-level security step: its script is written by `prisma-tenancy generate`'s generator, not from `statements`. */
  policies?: true
}

export interface AdoptionTable {
  table: string
  model: string
  column: string
  rows: number
  /** Indexes into the plan's steps that touch this table. */
  steps: number[]
}

export interface AdoptionPlan {
  defaultTenant: string
  batchSize: number | null
  setting: string
  appRole: string | null
  migrationsDir: string
  tables: AdoptionTable[]
  /** Shared tables (no tenant column): adopt changes nothing on them. */
  sharedTables: string[]
  steps: AdoptionStep[]
  findings: Finding[]
}

interface TableChanges {
  table: TenantTable
  quoted: string
  column?: { type: string; notNull: boolean; defaultExpression: string | null }
  primaryKey?: { drop: string; name: string; columns: string[] }
  createIndexes: Array<{ name: string; unique: boolean; columns: string[]; sql: string }>
  dropIndexes: string[]
  dropForeignKeys: string[]
  addForeignKeys: Array<{ name: string; sql: string }>
}

const batchSizeSchema = z.number().int().min(1).max(10_000_000).optional()

const tenantIdByType: Record<TenantColumnType, z.ZodType<string>> = {
  text: defaultTenantIdSchema,
  uuid: z.uuid(),
  integer: z.string().regex(/^-?\d{1,9}$/, 'an integer tenant column needs an integer id'),
  bigint: z.string().regex(/^-?\d{1,18}$/, 'a bigint tenant column needs an integer id'),
}

function parseDefaultTenant(value: unknown, types: TenantColumnType[]): string {
  for (const type of new Set(types)) {
    const parsed = tenantIdByType[type].safeParse(value)
    if (!parsed.success) {
      throw new TenancyError(
        'TENANT_INVALID',
        `The default tenant ${JSON.stringify(value)} is not a valid id for a ${type} tenant column: ${parsed.error.issues[0]?.message ?? 'invalid'}. Pass --default-tenant with the id the existing rows should belong to.`,
        { details: { type } },
      )
    }
  }
  return value as string
}

const NAME_BYTES = 63

/** An identifier that fits PostgreSQL's 63 bytes: the base is shortened, the suffix kept. */
function derivedName(base: string, suffix: string): string {
  let clipped = base
  while (Buffer.byteLength(clipped + suffix) > NAME_BYTES) clipped = [...clipped].slice(0, -1).join('')
  return clipped + suffix
}

const quotedName = '"(?:[^"]|"")+"'
const tableRef = `((?:${quotedName}\\.)?${quotedName})`

function unquote(name: string): string {
  return name.slice(1, -1).replaceAll('""', '"')
}

function columnList(text: string): string[] {
  return [...text.matchAll(new RegExp(quotedName, 'g'))].map((match) => unquote(match[0]))
}

async function appliedMigrations(client: pg.Client): Promise<Set<string>> {
  const exists = (await client.query<{ found: boolean }>(`SELECT to_regclass('_prisma_migrations') IS NOT NULL AS found`)).rows[0]?.found
  if (exists !== true) return new Set()
  const { rows } = await client.query<{ name: string }>('SELECT migration_name AS name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL')
  return new Set(rows.map((row) => row.name))
}

/**
 * Sorts the engine's statements by table. Only the changes adoption makes
 * safely are accepted: the tenant column, indexes, the primary key and
 * foreign keys of tenant tables. Anything else is listed in one error, since
 * a half-understood schema change must not be run under traffic.
 */
async function sortStatements(client: pg.Client, statements: DiffStatement[], tenantTables: TenantTable[], sharedTables: string[]): Promise<Map<string, TableChanges>> {
  const byQuoted = new Map(tenantTables.map((table) => [quoteTable(table), table]))
  const changes = new Map<string, TableChanges>()
  const unsupported: string[] = []
  const changesOf = (quoted: string, statement: DiffStatement): TableChanges | undefined => {
    const table = byQuoted.get(quoted)
    if (table === undefined) {
      unsupported.push(`${statement.sql}  (${sharedTables.includes(quoted) ? 'a shared table: adopt leaves it alone' : 'not a tenant table of the schema'})`)
      return undefined
    }
    let entry = changes.get(quoted)
    if (entry === undefined) {
      entry = { table, quoted, createIndexes: [], dropIndexes: [], dropForeignKeys: [], addForeignKeys: [] }
      changes.set(quoted, entry)
    }
    return entry
  }
  for (const statement of statements) {
    const { kind, sql } = statement
    let match: RegExpExecArray | null
    if (kind === 'CreateIndex' && (match = new RegExp(`^CREATE (UNIQUE )?INDEX (${quotedName}) ON ${tableRef}\\((.*)\\);$`, 's').exec(sql)) !== null) {
      changesOf(match[3]!, statement)?.createIndexes.push({ name: unquote(match[2]!), unique: match[1] !== undefined, columns: columnList(match[4]!), sql })
    } else if (kind === 'DropIndex' && (match = new RegExp(`^DROP INDEX ${tableRef};$`).exec(sql)) !== null) {
      const index = match[1]!
      const owner = await client.query<{ schema: string; table: string; search: boolean }>(
        `SELECT n.nspname AS schema, c.relname AS table, n.nspname = current_schema() AS search FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.indexrelid = to_regclass($1)`,
        [index],
      )
      const row = owner.rows[0]
      const quoted = row === undefined ? '' : row.search ? quoteIdent(row.table) : `${quoteIdent(row.schema)}.${quoteIdent(row.table)}`
      changesOf(quoted, statement)?.dropIndexes.push(index)
    } else if (kind === 'DropForeignKey' && (match = new RegExp(`^ALTER TABLE ${tableRef} DROP CONSTRAINT (${quotedName});$`).exec(sql)) !== null) {
      changesOf(match[1]!, statement)?.dropForeignKeys.push(match[2]!)
    } else if (kind === 'AddForeignKey' && (match = new RegExp(`^ALTER TABLE ${tableRef} ADD CONSTRAINT (${quotedName}) FOREIGN KEY .*;$`, 's').exec(sql)) !== null) {
      changesOf(match[1]!, statement)?.addForeignKeys.push({ name: match[2]!, sql })
    } else if (kind === 'AlterTable' && (match = new RegExp(`^ALTER TABLE ${tableRef} (.*);$`, 's').exec(sql)) !== null) {
      const entry = changesOf(match[1]!, statement)
      if (entry === undefined) continue
      let dropPrimaryKey: string | undefined
      for (const clause of match[2]!.split(/,\n/)) {
        const text = clause.trim()
        const column = new RegExp(`^ADD COLUMN\\s+(${quotedName}) (.+?)( NOT NULL)?(?: DEFAULT (.+))?$`, 's').exec(text)
        const dropKey = new RegExp(`^DROP CONSTRAINT (${quotedName})$`).exec(text)
        const addKey = new RegExp(`^ADD CONSTRAINT (${quotedName}) PRIMARY KEY \\((.*)\\)$`, 's').exec(text)
        if (column !== null && unquote(column[1]!) === entry.table.column) {
          entry.column = { type: column[2]!, notNull: column[3] !== undefined, defaultExpression: column[4] ?? null }
        } else if (dropKey !== null) {
          dropPrimaryKey = dropKey[1]!
        } else if (addKey !== null && dropPrimaryKey !== undefined) {
          entry.primaryKey = { drop: dropPrimaryKey, name: addKey[1]!, columns: columnList(addKey[2]!) }
          dropPrimaryKey = undefined
        } else {
          unsupported.push(`ALTER TABLE ${entry.quoted} ${text}`)
        }
      }
      if (dropPrimaryKey !== undefined) unsupported.push(`ALTER TABLE ${entry.quoted} DROP CONSTRAINT ${dropPrimaryKey}`)
    } else {
      unsupported.push(sql)
    }
  }
  if (unsupported.length > 0) {
    throw new TenancyError(
      'ADOPT_UNSUPPORTED_CHANGE',
      `The schema differs from the live database by more than tenancy, and adopt only makes the tenancy changes (tenant column, indexes, primary and foreign keys of tenant tables):\n${unsupported.map((line) => `  ${line}`).join('\n')}\nMake those changes first with \`prisma-tenancy migrate dev\` on the single-tenant schema (or undo them in the schema), deploy them, then run adopt again.`,
      { details: { statements: unsupported } },
    )
  }
  return changes
}

async function rowCount(client: pg.Client, quoted: string): Promise<number> {
  return Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${quoted}`)).rows[0]?.n ?? 0)
}

/** New unique keys the existing rows would violate once every row carries the default tenant. */
async function uniqueConflicts(client: pg.Client, changes: TableChanges, defaultTenant: string): Promise<string[]> {
  const { table, quoted } = changes
  const columnExists = changes.column === undefined
  const keys = [
    ...changes.createIndexes.filter((index) => index.unique).map((index) => ({ name: index.name, columns: index.columns })),
    ...(changes.primaryKey === undefined ? [] : [{ name: unquote(changes.primaryKey.name), columns: changes.primaryKey.columns }]),
  ]
  const conflicts: string[] = []
  for (const key of keys) {
    const expressions = key.columns.flatMap((column) =>
      column !== table.column ? [quoteIdent(column)] : columnExists ? [`COALESCE(${quoteIdent(column)}::text, ${quoteLiteral(defaultTenant)})`] : [],
    )
    if (expressions.length === 0) continue
    const { rows } = await client.query<{ key: string; n: string }>(
      `SELECT row(${expressions.join(', ')})::text AS key, count(*) AS n FROM ${quoted} GROUP BY ${expressions.join(', ')} HAVING count(*) > 1 ORDER BY 1 LIMIT 3`,
    )
    for (const row of rows) conflicts.push(`${qualifiedName(table)}: ${row.n} rows share (${key.columns.join(', ')}) = ${row.key}, which the new unique key ${key.name} forbids`)
  }
  return conflicts
}

const locks = {
  catalog: 'ACCESS EXCLUSIVE, catalog change only (milliseconds, no scan)',
  validate: 'SHARE UPDATE EXCLUSIVE while it scans: reads and writes go on',
  concurrently: 'SHARE UPDATE EXCLUSIVE while it builds: reads and writes go on',
  notNull: 'SHARE UPDATE EXCLUSIVE while validating, then ACCESS EXCLUSIVE for SET NOT NULL without a scan (the valid CHECK proves it)',
}

function transitionalDefault(column: NonNullable<TableChanges['column']>, defaultTenant: string): string {
  const literal = quoteLiteral(defaultTenant)
  if (column.defaultExpression === null) return literal
  // While old and new clients run side by side, a row inserted without a tenant (the old client) goes to the default tenant.
  return /^TEXT\b|^VARCHAR\b|^CHAR\b/i.test(column.type)
    ? `COALESCE(NULLIF(${column.defaultExpression}, ''), ${literal})`
    : `COALESCE(${column.defaultExpression}, ${literal}::${column.type})`
}

function buildSteps(tables: TableChanges[], rows: Map<string, number>, defaultTenant: string, batchSize: number | null, policyTables: string[]): AdoptionStep[] {
  const steps: AdoptionStep[] = []
  const withColumn = tables.filter((entry) => entry.column !== undefined)
  const notNull = withColumn.filter((entry) => entry.column!.notNull)
  const name = (entry: TableChanges) => qualifiedName(entry.table)
  const column = (entry: TableChanges) => quoteIdent(entry.table.column)
  if (withColumn.length > 0) {
    steps.push({
      name: 'adopt_tenant_columns',
      description: `add the tenant column, nullable, defaulting to the current tenant or else ${defaultTenant}; create the backfill procedure`,
      transactional: true,
      lock: locks.catalog,
      tables: withColumn.map(name),
      statements: [
        lockAllOrNone(withColumn.map((entry) => entry.quoted)),
        ...withColumn.flatMap((entry) => [
          `ALTER TABLE ${entry.quoted} ADD COLUMN IF NOT EXISTS ${column(entry)} ${entry.column!.type};`,
          `ALTER TABLE ${entry.quoted} ALTER COLUMN ${column(entry)} SET DEFAULT ${transitionalDefault(entry.column!, defaultTenant)};`,
        ]),
        backfillProcedure,
      ],
      notes: [],
    })
    for (const entry of withColumn) {
      const count = rows.get(entry.quoted) ?? 0
      steps.push({
        name: `adopt_backfill_${entry.table.table}`,
        description: `set ${entry.table.column} = ${defaultTenant} on every existing row${batchSize === null ? ', in one transaction' : `, ${batchSize} rows per transaction`}`,
        transactional: false,
        lock:
          batchSize === null
            ? `ROW EXCLUSIVE; row locks on all ${count} rows until it commits`
            : `ROW EXCLUSIVE; row locks on about ${batchSize} rows at a time, committed batch by batch`,
        tables: [name(entry)],
        statements: [`CALL ${quoteIdent(BACKFILL_PROCEDURE)}(${quoteLiteral(entry.quoted)}, ${quoteLiteral(entry.table.column)}, ${quoteLiteral(defaultTenant)}, ${batchSize ?? 'NULL'});`],
        notes: ['Resumable: each batch commits, and a rerun only touches rows still without a tenant.'],
      })
    }
  }
  if (notNull.length > 0) {
    const check = (entry: TableChanges) => quoteIdent(derivedName(`${entry.table.table}_${entry.table.column}`, '_not_null'))
    steps.push({
      name: 'adopt_tenant_not_null_checks',
      description: `add CHECK (${notNull[0]!.table.column} IS NOT NULL) NOT VALID: only new and updated rows are checked`,
      transactional: true,
      lock: locks.catalog,
      tables: notNull.map(name),
      statements: [
        lockAllOrNone(notNull.map((entry) => entry.quoted)),
        ...notNull.map((entry) => `ALTER TABLE ${entry.quoted} ADD CONSTRAINT ${check(entry)} CHECK (${column(entry)} IS NOT NULL) NOT VALID;`),
      ],
      notes: [],
    })
    steps.push({
      name: 'adopt_tenant_not_null',
      description: 'validate the checks, then SET NOT NULL (which the valid check proves without a scan) and drop the checks',
      transactional: true,
      lock: locks.notNull,
      tables: notNull.map(name),
      statements: [
        ...notNull.map((entry) => `ALTER TABLE ${entry.quoted} VALIDATE CONSTRAINT ${check(entry)};`),
        // SET NOT NULL upgrades to ACCESS EXCLUSIVE table by table; waiting for the second table while holding the
        // first deadlocked with the app's writes (seen in CI), so take them all at once or none, as catalog steps do.
        // The SHARE UPDATE EXCLUSIVE locks the validation holds meanwhile conflict with none of the app's DML.
        lockAllOrNone(notNull.map((entry) => entry.quoted)),
        ...notNull.flatMap((entry) => [`ALTER TABLE ${entry.quoted} ALTER COLUMN ${column(entry)} SET NOT NULL;`, `ALTER TABLE ${entry.quoted} DROP CONSTRAINT ${check(entry)};`]),
      ],
      notes: [
        `A failure here means a row was written with an explicit NULL tenant since the backfill: run its CALL ${quoteIdent(BACKFILL_PROCEDURE)}(...) again by hand,`,
        'then `prisma-tenancy migrate resolve --rolled-back <this folder>` and deploy again.',
      ],
    })
  }
  const keyIndex = (entry: TableChanges) => quoteIdent(derivedName(unquote(entry.primaryKey!.name), '_adopt'))
  for (const entry of tables) {
    const indexes = [
      ...entry.createIndexes.map((index) => ({ name: index.name, sql: index.sql.replace(/^CREATE (UNIQUE )?INDEX /, 'CREATE $1INDEX CONCURRENTLY ') })),
      ...(entry.primaryKey === undefined
        ? []
        : [{ name: unquote(keyIndex(entry)), sql: `CREATE UNIQUE INDEX CONCURRENTLY ${keyIndex(entry)} ON ${entry.quoted}(${entry.primaryKey.columns.map(quoteIdent).join(', ')});` }]),
    ]
    for (const index of indexes) {
      steps.push({
        name: `adopt_index_${index.name}`,
        description: `build index ${index.name} concurrently`,
        transactional: false,
        lock: locks.concurrently,
        tables: [name(entry)],
        statements: [index.sql],
        notes: [
          `If this step fails, PostgreSQL keeps an INVALID index: run DROP INDEX CONCURRENTLY IF EXISTS ${quoteIdent(index.name)}`,
          'then `prisma-tenancy migrate resolve --rolled-back <this folder>` and deploy again.',
        ],
      })
    }
  }
  const keyed = tables.filter((entry) => entry.primaryKey !== undefined || entry.dropForeignKeys.length + entry.addForeignKeys.length > 0)
  if (keyed.length > 0) {
    const referenced = keyed.flatMap((entry) => entry.addForeignKeys.flatMap((key) => /REFERENCES ((?:"(?:[^"]|"")+"\.)?"(?:[^"]|"")+")/.exec(key.sql)?.[1] ?? []))
    const lockOrder = [...new Set([...referenced, ...keyed.map((entry) => entry.quoted)])]
    steps.push({
      name: 'adopt_keys',
      description: 'switch primary keys to their composite form on the indexes just built, and foreign keys to ones that include the tenant column (NOT VALID)',
      transactional: true,
      lock: `${locks.catalog} on every table of the step, referenced tables locked first`,
      tables: keyed.map(name),
      statements: [
        lockAllOrNone(lockOrder),
        ...keyed.flatMap((entry) => entry.dropForeignKeys.map((key) => `ALTER TABLE ${entry.quoted} DROP CONSTRAINT ${key};`)),
        ...keyed.flatMap((entry) =>
          entry.primaryKey === undefined
            ? []
            : [`ALTER TABLE ${entry.quoted} DROP CONSTRAINT ${entry.primaryKey.drop}, ADD CONSTRAINT ${entry.primaryKey.name} PRIMARY KEY USING INDEX ${keyIndex(entry)};`],
        ),
        ...keyed.flatMap((entry) => entry.addForeignKeys.map((key) => `${key.sql.slice(0, -1)} NOT VALID;`)),
      ],
      notes: [],
    })
  }
  const validated = tables.filter((entry) => entry.addForeignKeys.length > 0)
  if (validated.length > 0) {
    steps.push({
      name: 'adopt_validate_foreign_keys',
      description: 'validate the new foreign keys',
      transactional: true,
      lock: `${locks.validate} (ROW SHARE on the referenced table)`,
      tables: validated.map(name),
      statements: validated.flatMap((entry) => entry.addForeignKeys.map((key) => `ALTER TABLE ${entry.quoted} VALIDATE CONSTRAINT ${key.name};`)),
      notes: [],
    })
  }
  for (const entry of tables) {
    for (const index of entry.dropIndexes) {
      steps.push({
        name: `adopt_drop_index_${unquote(index.split('.').at(-1)!)}`,
        description: `drop index ${index}, which the schema no longer has`,
        transactional: false,
        lock: locks.concurrently,
        tables: [name(entry)],
        statements: [`DROP INDEX CONCURRENTLY IF EXISTS ${index};`],
        notes: [],
      })
    }
  }
  if (policyTables.length > 0) {
    steps.push({
      name: 'adopt_rls',
      description: 'enable and force row-level security with the generated policies: from here on only the tenancy client sees rows',
      transactional: true,
      lock: locks.catalog,
      tables: policyTables,
      statements: [],
      notes: [],
      policies: true,
    })
  }
  if (withColumn.length > 0) {
    steps.push({
      name: 'adopt_tenant_defaults',
      description: 'give the tenant column the schema\'s default (no fallback to the default tenant any more) and drop the backfill procedure',
      transactional: true,
      lock: locks.catalog,
      tables: withColumn.map(name),
      statements: [
        lockAllOrNone(withColumn.map((entry) => entry.quoted)),
        ...withColumn.map((entry) =>
          entry.column!.defaultExpression === null
            ? `ALTER TABLE ${entry.quoted} ALTER COLUMN ${column(entry)} DROP DEFAULT;`
            : `ALTER TABLE ${entry.quoted} ALTER COLUMN ${column(entry)} SET DEFAULT ${entry.column!.defaultExpression};`,
        ),
        `DROP PROCEDURE IF EXISTS ${quoteIdent(BACKFILL_PROCEDURE)}(regclass, text, text, integer);`,
      ],
      notes: [],
    })
  }
  return steps
}

/**
 * The backfill, as a procedure so that it can COMMIT between batches (a
 * migration script runs as one transaction; a lone CALL does not). It walks
 * the table's pages as they were when it started, a batch of pages per
 * transaction (rows inserted meanwhile get the column default, never NULL),
 * then sweeps up rows that a concurrent update moved behind it. A rerun
 * only touches rows still without a tenant.
 */
const backfillProcedure = `CREATE OR REPLACE PROCEDURE ${quoteIdent(BACKFILL_PROCEDURE)}(target regclass, tenant_column text, tenant text, batch_size integer)
LANGUAGE plpgsql AS $$
DECLARE
  total_pages bigint := pg_relation_size(target) / current_setting('block_size')::bigint;
  total_rows bigint;
  pages_per_batch bigint;
  first_page bigint := 0;
  remaining boolean := true;
BEGIN
  IF batch_size IS NULL THEN
    EXECUTE format('UPDATE %s SET %I = %L WHERE %I IS NULL', target, tenant_column, tenant, tenant_column);
    RETURN;
  END IF;
  EXECUTE format('SELECT count(*) FROM %s', target) INTO total_rows;
  pages_per_batch := GREATEST(1, batch_size / GREATEST(1, ceil(total_rows::numeric / GREATEST(total_pages, 1))::bigint));
  WHILE first_page < total_pages LOOP
    EXECUTE format('UPDATE %s SET %I = %L WHERE ctid >= %L::tid AND ctid < %L::tid AND %I IS NULL', target, tenant_column, tenant, format('(%s,0)', first_page), format('(%s,0)', first_page + pages_per_batch), tenant_column);
    COMMIT;
    first_page := first_page + pages_per_batch;
  END LOOP;
  WHILE remaining LOOP
    EXECUTE format('UPDATE %s SET %I = %L WHERE ctid = ANY (ARRAY(SELECT ctid FROM %s WHERE %I IS NULL LIMIT %s))', target, tenant_column, tenant, target, tenant_column, batch_size);
    COMMIT;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE %I IS NULL)', target, tenant_column) INTO remaining;
  END LOOP;
END
$$;`

/**
 * Compares the multi-tenant schema with the live database and plans the
 * adoption: the steps, the tables and their row counts, the lock each step
 * takes. Reads only; every bad input is an error before anything is written.
 */
export async function planAdoption(options: AdoptOptions): Promise<AdoptionPlan> {
  const { tenantField, setting } = parseTenancyNames(options)
  const batch = batchSizeSchema.safeParse(options.batchSize)
  if (!batch.success) throw new TenancyError('CONFIG_INVALID', 'The batch size must be a whole number of rows from 1 to 10000000. Fix --batch-size and run again.', { cause: batch.error })
  const batchSize = batch.data ?? null
  const project = await resolveProject(options)
  const databaseUrl = parseDatabaseUrl(project.databaseUrl)
  const schemaFiles = await readSchemaFiles(project.schemaPath)
  const analysis = classifyModels(parseDatamodel(schemaFiles), { tenantField, setting })
  if (analysis.tenantTables.length === 0) throw noTenantColumnError(tenantField, setting, analysis.models.map((model) => model.model))
  const defaultTenant = parseDefaultTenant(options.defaultTenant, analysis.tenantTables.map((table) => table.columnType))

  return withClient(databaseUrl, async (client) => {
    const applied = await appliedMigrations(client)
    const history = await readMigrationsDirectory(project.migrationsDir)
    const undeployed = history.migrationDirectories.map((dir) => dir.path).filter((path) => !applied.has(path))
    if (undeployed.length > 0) {
      throw new TenancyError(
        'ADOPT_NOT_READY',
        `The database has not applied ${undeployed.join(', ')} yet. adopt compares the live database with the schema, so deploy first: \`prisma-tenancy migrate deploy\` (after a failed step, \`prisma-tenancy migrate resolve --rolled-back <folder>\` and deploy again).`,
        { details: { undeployed } },
      )
    }
    const policies = await checkPolicies({ ...options, tenantField, setting })
    const unmigrated = policies.pending.filter((table) => table.reason === 'not-migrated')
    if (unmigrated.length > 0) {
      throw new TenancyError(
        'ADOPT_NOT_READY',
        `No migration in ${project.migrationsDir} creates ${unmigrated.map((table) => table.table).join(', ')}, so the policies cannot follow them. Baseline the database first: write its current schema as the first migration (\`prisma migrate diff --from-empty --to-schema <legacy schema> --script\`) and record it as applied (\`prisma migrate resolve --applied <folder>\`).`,
        { details: { tables: unmigrated.map((table) => table.table) } },
      )
    }
    const sharedTables = analysis.sharedTables.map(quoteTable)
    const statements = await diffLiveDatabase(databaseUrl, schemaFiles, project.root)
    const changes = await sortStatements(client, statements, analysis.tenantTables, sharedTables)
    const entries = analysis.tenantTables.flatMap((table) => changes.get(quoteTable(table)) ?? [])

    const rows = new Map<string, number>()
    for (const table of analysis.tenantTables) rows.set(quoteTable(table), await rowCount(client, quoteTable(table)))
    const conflicts: string[] = []
    for (const entry of entries) conflicts.push(...(await uniqueConflicts(client, entry, defaultTenant)))
    if (conflicts.length > 0) {
      throw new TenancyError(
        'ADOPT_DATA_CONFLICT',
        `The existing rows violate unique keys of the new schema (all of them go to tenant ${defaultTenant}):\n${conflicts.map((line) => `  ${line}`).join('\n')}\nFix those rows, or the @@unique/@@id in the schema, then run adopt again. Nothing was written.`,
        { details: { conflicts } },
      )
    }
    if (batchSize === null) {
      const large = entries.filter((entry) => entry.column !== undefined && (rows.get(entry.quoted) ?? 0) > UNBATCHED_BACKFILL_LIMIT)
      if (large.length > 0) {
        throw new TenancyError(
          'ADOPT_BATCH_SIZE_REQUIRED',
          `${large.map((entry) => `${qualifiedName(entry.table)} (${rows.get(entry.quoted)} rows)`).join(', ')} ${large.length === 1 ? 'has' : 'have'} more than ${UNBATCHED_BACKFILL_LIMIT} rows: backfilling in one transaction would hold every row's lock until it commits. Pass --batch-size <rows> (e.g. --batch-size 5000). Nothing was written.`,
          { details: { tables: large.map((entry) => qualifiedName(entry.table)) } },
        )
      }
    }
    const steps = buildSteps(entries, rows, defaultTenant, batchSize, [...new Set(policies.pending.map((table) => table.table))])
    const tables = analysis.tenantTables.map((table) => ({
      table: qualifiedName(table),
      model: table.model,
      column: table.column,
      rows: rows.get(quoteTable(table)) ?? 0,
      steps: steps.flatMap((step, index) => (step.tables.includes(qualifiedName(table)) ? [index] : [])),
    }))
    return {
      defaultTenant,
      batchSize,
      setting,
      appRole: options.appRole ?? null,
      migrationsDir: project.migrationsDir,
      tables,
      sharedTables: analysis.sharedTables.map(qualifiedName),
      steps,
      findings: policies.findings,
    }
  })
}

/**
 * A DO block that takes ACCESS EXCLUSIVE on every table of a catalog-only step at once, or none. The app's
 * own writes take these tables in both orders (a cascading delete locks the parent, then the child; a
 * child insert's key check the child, then the parent), so a step that waited for one lock while holding
 * another deadlocked with them (seen in CI). NOWAIT inside a subtransaction never waits holding a lock: on
 * a miss it lets go of all of them and tries again every 10 ms, for at most ADOPT_LOCK_TIMEOUT.
 */
function lockAllOrNone(tables: readonly string[]): string {
  return [
    'DO $lock$ DECLARE deadline timestamptz := clock_timestamp() + interval ' + quoteLiteral(ADOPT_LOCK_TIMEOUT) + '; BEGIN',
    '  LOOP',
    `    BEGIN LOCK TABLE ${tables.join(', ')} IN ACCESS EXCLUSIVE MODE NOWAIT; RETURN;`,
    '    EXCEPTION WHEN lock_not_available THEN',
    "      IF clock_timestamp() > deadline THEN RAISE EXCEPTION 'prisma-tenancy adopt: could not lock the tables of this step within %', " + quoteLiteral(ADOPT_LOCK_TIMEOUT) + ' USING ERRCODE = \'55P03\'; END IF;',
    '      PERFORM pg_sleep(0.01);',
    '    END;',
    '  END LOOP;',
    'END $lock$;',
  ].join('\n')
}

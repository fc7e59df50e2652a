import { quoteIdent, quoteLiteral } from '../database/sql-identifiers.js'
import { TenancyError } from '../errors.js'
import type { RegistryTable, TableName, TenantColumnType, TenantTable } from './classify-models.js'
import { partitionConversionLines, protectPartitionsStatement, type PartitionConversion } from './partition-sql.js'
import { semicolonFreeLiteral, signedContextStatements, signedTenantExpression } from './signed-context.js'

/** Names of the two policies on every tenant table (policy names are per table). */
export const ISOLATION_POLICY = 'tenancy_isolation'
export const ACCESS_POLICY = 'tenancy_access'
/** The registry's one policy: a tenant reads its own row. */
export const REGISTRY_POLICY = 'tenancy_registry_read'

/** The machine-readable line a generated migration carries for each table it covers. */
export const RECORD_PREFIX = '-- prisma-tenancy:table '

export type PolicyRecord =
  | { kind: 'tenant'; schema: string | null; table: string; column: string; type: TenantColumnType; setting: string; grants: string[]; signed?: boolean; partitioned?: boolean }
  | { kind: 'shared'; schema: string | null; table: string; grants: string[] }
  | DatabaseRecord
  | { kind: 'registry'; schema: string | null; table: string; column: string; type: TenantColumnType; setting: string; grants: string[]; signed?: boolean }

/** What a migration did to the database as a whole: TEMPORARY revoked from these roles (and PUBLIC), the signed context created. */
export interface DatabaseRecord {
  kind: 'database'
  revokedTemporary: string[]
  signed: boolean
}

export interface PolicyPlan {
  setting: string
  /** The application role to grant to, or null for no grants. */
  appRole: string | null
  tenantTables: TenantTable[]
  /** Shared tables that still need the app role's read grant. */
  sharedTables: TableName[]
  /** Tables that had tenant policies and are now marked shared: their policies are removed. */
  liftedTables: (TableName & { model: string })[]
  /** Revoke TEMPORARY on the database from PUBLIC and the app role (not done by an earlier migration yet). */
  revokeTemporary?: boolean | undefined
  /** Tenant policies compare with the signed tenant (signedTenantFunction), not the bare setting. */
  signed?: boolean | undefined
  /** Create the signed context's key table and function (not done by an earlier migration yet). */
  createSignedContext?: boolean | undefined
  /** The tenant registry, when its protection is not in the migrations yet. */
  registry: RegistryTable | null
  /** Tenant tables (of tenantTables) made partitioned by tenant by this migration. */
  conversions?: PartitionConversion[] | undefined
}

export function quoteTable({ schema, table }: TableName): string {
  return schema === null ? quoteIdent(table) : `${quoteIdent(schema)}.${quoteIdent(table)}`
}

/**
 * The tenant predicate. `current_setting(name, true)` is STABLE and answers
 * NULL when the setting was never made; after a transaction-local SET it
 * answers '' on that connection, which NULLIF turns into NULL too, so both
 * match no row and never raise a cast error (for text columns too: else an
 * emptied setting would read and write rows whose tenant is ''). It stays a plain STABLE
 * expression, not a scalar subquery: index scans evaluate it once per query either way, and a
 * subquery (an InitPlan) costs more to plan than the per-row comparison it saves on the rows
 * an index has already narrowed to one tenant (measured: ~10 µs on a primary-key lookup).
 */
export function tenantPredicate(column: string, type: TenantColumnType, setting: string, signed = false): string {
  const value = signed ? signedTenantExpression : `NULLIF(current_setting(${quoteLiteral(setting)}, true), '')`
  return `${quoteIdent(column)} = ${type === 'text' ? value : `(${value})::${type}`}`
}

function recordFor(table: TenantTable, setting: string, appRole: string | null, signed: boolean): PolicyRecord {
  return {
    kind: 'tenant',
    schema: table.schema,
    table: table.table,
    column: table.column,
    type: table.columnType,
    setting,
    grants: appRole === null ? [] : [appRole],
    // Only when set, so records of unsigned (and unpartitioned) policies read as before.
    ...(signed ? { signed } : {}),
    ...(table.partitioned ? { partitioned: true } : {}),
  }
}

function sharedRecordFor(table: TableName, appRole: string): PolicyRecord {
  return { kind: 'shared', schema: table.schema, table: table.table, grants: [appRole] }
}

/** Row-level security on, forced, and the two tenant policies, on one table (or partition). */
function policyLines(name: string, predicate: string): string[] {
  return [
    `ALTER TABLE ${name} ENABLE ROW LEVEL SECURITY;`,
    '-- Also for the table owner, who would otherwise bypass every policy (apps often connect as the owner).',
    `ALTER TABLE ${name} FORCE ROW LEVEL SECURITY;`,
    '-- Restrictive: ANDed with every other policy, so a permissive policy added later can never let another',
    "-- tenant's rows through. USING filters reads, updates and deletes, and WITH CHECK refuses writing a row into another tenant.",
    `DROP POLICY IF EXISTS ${ISOLATION_POLICY} ON ${name};`,
    `CREATE POLICY ${ISOLATION_POLICY} ON ${name} AS RESTRICTIVE FOR ALL TO PUBLIC`,
    `  USING (${predicate})`,
    `  WITH CHECK (${predicate});`,
    '-- Permissive: restrictive policies only narrow, and without one permissive policy no row would pass at all.',
    `DROP POLICY IF EXISTS ${ACCESS_POLICY} ON ${name};`,
    `CREATE POLICY ${ACCESS_POLICY} ON ${name} AS PERMISSIVE FOR ALL TO PUBLIC`,
    `  USING (${predicate})`,
    `  WITH CHECK (${predicate});`,
  ]
}

function tenantBlock(table: TenantTable, plan: PolicyPlan): string[] {
  const name = quoteTable(table)
  const predicate = tenantPredicate(table.column, table.columnType, plan.setting, plan.signed === true)
  const conversion = plan.conversions?.find((candidate) => candidate.table.model === table.model)
  const lines = [
    ...(conversion === undefined ? [] : partitionConversionLines(conversion)),
    `-- ${table.schema === null ? table.table : `${table.schema}.${table.table}`} (model ${table.model}): rows belong to the tenant in ${table.column}.`,
    '-- Row-level security on: from now on a row is visible or writable only through a policy.',
    ...policyLines(name, predicate),
  ]
  if (table.partitioned) {
    lines.push(
      '-- A policy on the partitioned table does not apply when a partition is queried directly: every partition (DEFAULT and',
      "-- each tenant's, which `prisma-tenancy tenant create` makes the same way) gets row-level security, forced, and the",
      '-- policies above, copied from the catalog. The app role is granted no partition.',
      `${protectPartitionsStatement(name)};`,
    )
  }
  if (plan.appRole !== null) {
    const role = quoteIdent(plan.appRole)
    lines.push(
      '-- The application role reads and writes rows, which the policies filter.',
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ${name} TO ${role};`,
      '-- Never TRUNCATE (not subject to row-level security: it would empty every tenant), REFERENCES or TRIGGER.',
      `REVOKE TRUNCATE, REFERENCES, TRIGGER ON ${name} FROM ${role};`,
    )
    for (const column of table.sequenceColumns) {
      lines.push(
        `-- ${column} comes from a sequence (SERIAL), and inserting needs USAGE on it.`,
        `GRANT USAGE ON SEQUENCE ${quoteTable({ schema: table.schema, table: serialSequenceName(table.table, column) })} TO ${role};`,
      )
    }
  }
  return lines
}

/** PostgreSQL's limit on a name (NAMEDATALEN - 1). */
export const NAME_BYTES = 63

export function clipBytes(text: string, bytes: number): string {
  let clipped = ''
  for (const character of text) {
    if (Buffer.byteLength(clipped + character) > bytes) break
    clipped += character
  }
  return clipped
}

/**
 * The name PostgreSQL gives a SERIAL column's sequence (makeObjectName:
 * table_column_seq, the longer part shortened first to fit 63 bytes). Named
 * statically because a DO block cannot be used: the migration runner splits
 * scripts at every semicolon.
 */
export function serialSequenceName(table: string, column: string): string {
  const available = NAME_BYTES - '_seq'.length - 1
  let tableBytes = Buffer.byteLength(table)
  let columnBytes = Buffer.byteLength(column)
  while (tableBytes + columnBytes > available) {
    if (tableBytes > columnBytes) tableBytes--
    else columnBytes--
  }
  return `${clipBytes(table, tableBytes)}_${clipBytes(column, columnBytes)}_seq`
}

function liftBlock(table: TableName & { model: string }): string[] {
  const name = quoteTable(table)
  return [
    `-- ${table.schema === null ? table.table : `${table.schema}.${table.table}`} (model ${table.model}) is marked shared now: its tenant policies go, and row-level security with them.`,
    `DROP POLICY IF EXISTS ${ISOLATION_POLICY} ON ${name};`,
    `DROP POLICY IF EXISTS ${ACCESS_POLICY} ON ${name};`,
    `ALTER TABLE ${name} NO FORCE ROW LEVEL SECURITY;`,
    `ALTER TABLE ${name} DISABLE ROW LEVEL SECURITY;`,
  ]
}

function databaseBlock(plan: PolicyPlan): string[][] {
  const blocks: string[][] = []
  if (plan.revokeTemporary === true && plan.appRole !== null) {
    blocks.push([
      '-- No temporary tables for the application role: they are session state, which outlives a transaction on a pooled',
      "-- connection and could carry one tenant's rows to the next. PUBLIC holds TEMPORARY on every database by default.",
      '-- The database name is only known where the migration runs.',
      `DO ${semicolonFreeLiteral(`BEGIN EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC, %I', current_database(), ${quoteLiteral(plan.appRole)}); END`)};`,
    ])
  }
  if (plan.createSignedContext === true) blocks.push(...signedContextStatements(plan.setting, plan.appRole))
  return blocks
}

function registryBlock(table: RegistryTable, plan: PolicyPlan): string[] {
  const name = quoteTable(table)
  const lines = [
    `-- ${table.schema === null ? table.table : `${table.schema}.${table.table}`} (model ${table.model}) is the tenant registry: a tenant reads its own row only, and`,
    '-- no policy lets anyone subject to row-level security write it. Rows are created and removed as the admin role',
    '-- (`prisma-tenancy tenant create` / `tenant remove`), which is a superuser or BYPASSRLS.',
    `ALTER TABLE ${name} ENABLE ROW LEVEL SECURITY;`,
    `ALTER TABLE ${name} FORCE ROW LEVEL SECURITY;`,
    `DROP POLICY IF EXISTS ${REGISTRY_POLICY} ON ${name};`,
    `CREATE POLICY ${REGISTRY_POLICY} ON ${name} AS PERMISSIVE FOR SELECT TO PUBLIC`,
    // In the signed mode the registry trusts the signed tenant too: else SQL that sets the plain setting reads any tenant's row.
    `  USING (${tenantPredicate(table.column, table.columnType, plan.setting, plan.signed === true)});`,
  ]
  if (plan.appRole !== null) {
    const role = quoteIdent(plan.appRole)
    lines.push(
      '-- The application role reads its tenant\'s row, and writing the registry is the lifecycle\'s job.',
      `GRANT SELECT ON ${name} TO ${role};`,
      `REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON ${name} FROM ${role};`,
    )
  }
  return lines
}

function sharedBlock(table: TableName, appRole: string): string[] {
  const name = quoteTable(table)
  return [
    `-- ${table.schema === null ? table.table : `${table.schema}.${table.table}`} is shared by all tenants: the application role may read it, and writes stay with the owner.`,
    `GRANT SELECT ON ${name} TO ${quoteIdent(appRole)};`,
  ]
}

/**
 * The migration script for a plan: a header recording each covered table (read
 * back by `generate` and `generate --check`), then one commented block per
 * table. Same plan, same text. Every statement runs inside a transaction, as
 * `prisma migrate deploy` runs a migration, and repeating it changes nothing.
 */
export function renderPolicyMigration(plan: PolicyPlan): string {
  const role = plan.appRole
  const registry = plan.registry === null ? [] : [plan.registry]
  assertOneLineNames([
    ...[...plan.tenantTables, ...plan.sharedTables, ...plan.liftedTables, ...registry].flatMap((table) => [table.schema ?? '', table.table]),
    ...[...plan.tenantTables, ...registry].map((table) => table.column),
    role ?? '',
  ])
  const database: PolicyRecord[] =
    (plan.revokeTemporary === true && role !== null) || plan.createSignedContext === true
      ? [{ kind: 'database', revokedTemporary: plan.revokeTemporary === true && role !== null ? [role] : [], signed: plan.createSignedContext === true }]
      : []
  const records = [
    ...database,
    ...plan.tenantTables.map((table) => recordFor(table, plan.setting, role, plan.signed === true)),
    ...plan.liftedTables.map((table): PolicyRecord => ({ kind: 'shared', schema: table.schema, table: table.table, grants: [] })),
    ...(role === null ? [] : plan.sharedTables.map((table) => sharedRecordFor(table, role))),
    ...registry.map(
      (table): PolicyRecord => ({
        kind: 'registry',
        schema: table.schema,
        table: table.table,
        column: table.column,
        type: table.columnType,
        setting: plan.setting,
        grants: role === null ? [] : [role],
        // Only when set, as on tenant records.
        ...(plan.signed === true ? { signed: true } : {}),
      }),
    ),
  ]
  const sections = [
    [
      '-- Row-level security for tenant tables, generated by `prisma-tenancy generate` from the Prisma schema.',
      '-- Do not edit: change the schema and run `prisma-tenancy generate` again. The lines below record what this',
      '-- migration covers, for `prisma-tenancy generate --check`.',
      ...records.map((record) => `${RECORD_PREFIX}${JSON.stringify(record)}`),
    ],
    ...databaseBlock(plan),
    ...plan.tenantTables.map((table) => tenantBlock(table, plan)),
    ...plan.liftedTables.map(liftBlock),
    ...(role === null ? [] : plan.sharedTables.map((table) => sharedBlock(table, role))),
    ...registry.map((table) => registryBlock(table, plan)),
  ]
  const script = `${sections.map((lines) => lines.join('\n')).join('\n\n')}\n`
  assertSplitsAtSemicolons(script)
  return script
}

/**
 * Names are also written into `--` comments, which end at a line break: a name
 * with one (or another control character) could put SQL of its own on the next line.
 */
function assertOneLineNames(names: string[]): void {
  const bad = names.find((name) => /[\u0000-\u001f\u007f]/.test(name))
  if (bad === undefined) return
  throw new TenancyError(
    'SCHEMA_INVALID',
    `The name ${JSON.stringify(bad)} contains a line break or another control character. Rename it in the schema (@@map / @map / @@schema) or the --app-role option.`,
  )
}

/**
 * Prisma's driver adapter (which runs migrations without the native engine)
 * splits a script at every semicolon, so one inside a name or a comment would
 * cut a statement in two. Statements here end a line with their only one.
 */
function assertSplitsAtSemicolons(script: string): void {
  const line = script.split('\n').find((text) => text.slice(0, -1).includes(';') || (text.startsWith('--') && text.includes(';')))
  if (line === undefined) return
  throw new TenancyError(
    'SCHEMA_INVALID',
    `A table, column or role name contains a semicolon, which migration runners that split scripts at semicolons would cut in two: ${line}\nRename it (@@map / @map) without the semicolon.`,
  )
}

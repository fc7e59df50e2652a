import { createHash } from 'node:crypto'
import { quoteIdent, quoteLiteral } from '../database/sql-identifiers.js'
import type { ForeignKey, MigrationKeys, TableIndex } from '../migrate/migration-keys.js'
import type { TableName, TenantTable } from './classify-models.js'
import { clipBytes, NAME_BYTES, quoteTable, serialSequenceName } from './policy-sql.js'
import { semicolonFreeLiteral } from './signed-context.js'

/** What turning a plain tenant table into one partitioned by tenant needs from the migrations that made it. */
export interface PartitionConversion {
  table: TenantTable
  /** Its primary key and indexes, rebuilt on the partitioned table under the same names (Prisma compares names). */
  indexes: TableIndex[]
  /** Its own foreign keys, which a partitioned table needs again (partitions made later inherit them from it). */
  foreignKeys: ForeignKey[]
  /** Foreign keys that point at it (its own ones too): they move from the old table to the partitioned one. */
  referencing: ForeignKey[]
}

/** The conversions of these tables, from what the migrations made of them. */
export function partitionConversions(keys: MigrationKeys, tables: TenantTable[]): PartitionConversion[] {
  return tables.map((table) => {
    const name = quoteTable(table)
    return {
      table,
      indexes: keys.indexes.filter((index) => index.table === name),
      foreignKeys: keys.foreignKeys.filter((key) => key.table === name && key.references !== name),
      referencing: keys.foreignKeys.filter((key) => key.references === name),
    }
  })
}

/**
 * A partition's name: the table, `_p_`, then the suffix, which is the tenant
 * id when it is a plain lower-case name; otherwise (or when too long for 63
 * bytes) made safe and followed by a hash of the id, so two ids never share one.
 */
export function partitionName(table: TableName, suffix: string): TableName {
  const safe = suffix.toLowerCase().replace(/[^a-z0-9_]/g, '_')
  const plain = `${table.table}_p_${safe}`
  if (safe === suffix && Buffer.byteLength(plain) <= NAME_BYTES) return { schema: table.schema, table: plain }
  const hash = createHash('sha256').update(suffix).digest('hex').slice(0, 8)
  return { schema: table.schema, table: `${clipBytes(plain, NAME_BYTES - hash.length - 1)}_${hash}` }
}

/** The partition holding the rows of every tenant that has no partition of its own. */
export const DEFAULT_PARTITION = 'default'

/** An index of the old table renamed for the DEFAULT partition it becomes: its table prefix replaced (Prisma's names start with the table). */
function partitionIndexName(table: string, partition: string, index: string): string {
  const name = index.slice(1, -1).replaceAll('""', '"')
  const rest = name.startsWith(`${table}_`) ? name.slice(table.length) : `_${name}`
  return quoteIdent(clipBytes(`${partition}${rest}`, NAME_BYTES))
}

/**
 * The statements that make a plain tenant table partitioned by its tenant
 * column without copying a row: the old table, renamed, becomes the DEFAULT
 * partition of a new partitioned table of the old name (same columns,
 * defaults and checks), whose primary key, indexes and foreign keys are then
 * built under the old names; PostgreSQL adopts the partition's equivalent
 * indexes instead of building them again. Foreign keys of other tables move
 * to the partitioned table.
 */
export function partitionConversionLines({ table, indexes, foreignKeys, referencing }: PartitionConversion): string[] {
  const name = quoteTable(table)
  const partition = partitionName(table, DEFAULT_PARTITION)
  const partitionSql = quoteTable(partition)
  const schema = table.schema === null ? '' : `${quoteIdent(table.schema)}.`
  return [
    `-- ${table.table} is partitioned by tenant (/// @tenancy.partitioned): LIST partitions on ${table.column}, one per tenant`,
    '-- (`prisma-tenancy tenant create` makes them) and a DEFAULT partition for every other tenant. The table as it is becomes',
    '-- that DEFAULT partition, so no row is copied. Foreign keys pointing at it are moved to the partitioned table after.',
    ...referencing.map((key) => `ALTER TABLE ${key.table} DROP CONSTRAINT IF EXISTS ${key.name};`),
    `ALTER TABLE ${name} RENAME TO ${quoteIdent(partition.table)};`,
    '-- Its indexes take the partition\'s name, leaving theirs to the partitioned table\'s (which adopts them).',
    ...indexes.map((index) => `ALTER INDEX ${schema}${index.name} RENAME TO ${partitionIndexName(table.table, partition.table, index.name)};`),
    '-- Same columns, defaults and checks. Not its indexes (rebuilt below under their names), not identity (the sequence is shared).',
    `CREATE TABLE ${name} (LIKE ${partitionSql} INCLUDING ALL EXCLUDING INDEXES EXCLUDING IDENTITY) PARTITION BY LIST (${quoteIdent(table.column)});`,
    ...table.sequenceColumns.flatMap((column) => [
      `-- The sequence of ${column} belongs to the partitioned table now: dropping a partition must not drop it.`,
      `ALTER SEQUENCE ${quoteTable({ schema: table.schema, table: serialSequenceName(table.table, column) })} OWNED BY ${name}.${quoteIdent(column)};`,
    ]),
    '-- A DEFAULT partition attaches without a scan while it is the only partition.',
    `ALTER TABLE ${name} ATTACH PARTITION ${partitionSql} DEFAULT;`,
    ...indexes.map((index) =>
      index.kind === 'primary'
        ? `ALTER TABLE ${name} ADD CONSTRAINT ${index.name} PRIMARY KEY (${index.columns});`
        : `CREATE ${index.kind === 'unique' ? 'UNIQUE ' : ''}INDEX ${index.name} ON ${name}(${index.columns});`,
    ),
    ...[...foreignKeys, ...referencing].map((key) => `ALTER TABLE ${key.table} ADD CONSTRAINT ${key.name} ${key.definition};`),
  ]
}

/**
 * One statement (a DO block, semicolon-free for runners that split scripts)
 * that gives every partition of `parent` (or only the table `partition`) row-level
 * security, forced, and the parent's policies as the catalog has them now:
 * a policy on the parent does not apply when a partition is queried directly.
 * Copied, not generated again, so it holds in either mode (signed or not) and
 * includes policies added since, such as the tenant roles' one.
 */
export function protectPartitionsStatement(parent: string, partition: string | null = null): string {
  // A table named alone may not be attached yet (`tenant partition` protects it before it attaches it).
  const targets = partition === null ? `SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = ${quoteLiteral(parent)}::regclass ORDER BY 1` : `SELECT ${quoteLiteral(partition)}::regclass`
  const body = [
    'DECLARE part regclass; pol record;',
    'BEGIN',
    `  FOR part IN ${targets} LOOP`,
    "    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', part);",
    "    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', part);",
    '    FOR pol IN SELECT polname, polpermissive, polcmd, polroles, pg_get_expr(polqual, polrelid) AS qual, pg_get_expr(polwithcheck, polrelid) AS chk',
    `               FROM pg_policy WHERE polrelid = ${quoteLiteral(parent)}::regclass ORDER BY polname LOOP`,
    "      EXECUTE format('DROP POLICY IF EXISTS %I ON %s', pol.polname, part);",
    "      EXECUTE format('CREATE POLICY %I ON %s AS %s FOR %s TO %s', pol.polname, part,",
    "        CASE WHEN pol.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,",
    "        CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,",
    "        (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END, ', ') FROM unnest(pol.polroles) AS r))",
    "        || COALESCE(' USING (' || pol.qual || ')', '') || COALESCE(' WITH CHECK (' || pol.chk || ')', '');",
    '    END LOOP;',
    '  END LOOP;',
    'END',
  ].join('\n')
  return `DO ${semicolonFreeLiteral(body)}`
}

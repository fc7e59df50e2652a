import { readMigrationsDirectory } from './migrations-directory.js'

export interface ForeignKey {
  /** The quoted table, as Prisma's migration SQL writes it. */
  table: string
  /** The quoted constraint name. */
  name: string
  /** `FOREIGN KEY (...) REFERENCES ...` as the migration wrote it. */
  definition: string
  /** The quoted table it references. */
  references: string
}

export interface TableIndex {
  /** The quoted table. */
  table: string
  /** The quoted index (or primary key constraint) name. */
  name: string
  kind: 'primary' | 'unique' | 'index'
  /** The quoted columns, as the migration wrote them: `"tenant_id","id"`. */
  columns: string
}

export interface MigrationKeys {
  foreignKeys: ForeignKey[]
  indexes: TableIndex[]
}

const quoted = '"(?:[^"]|"")+"'
const qualified = `${quoted}(?:\\.${quoted})?`
const addForeignKey = new RegExp(`^ALTER TABLE (${qualified}) ADD CONSTRAINT (${quoted}) (FOREIGN KEY \\([^)]*\\) REFERENCES (${qualified})[^;]*);$`, 'gm')
const dropConstraint = new RegExp(`^ALTER TABLE (${qualified}) DROP CONSTRAINT (${quoted})`, 'gm')
// The primary key inside Prisma's CREATE TABLE, or added to an existing table (ALTER TABLE ... ADD CONSTRAINT ... PRIMARY KEY, possibly after a DROP CONSTRAINT line).
const primaryKey = new RegExp(`^(?:CREATE TABLE|ALTER TABLE) (${qualified})[^;]*?CONSTRAINT (${quoted}) PRIMARY KEY \\(([^)]*)\\)`, 'gms')
const createIndex = new RegExp(`^CREATE (UNIQUE )?INDEX (${quoted}) ON (${qualified})\\(([^)]*)\\);$`, 'gm')
const dropIndex = new RegExp(`^DROP INDEX (${qualified});$`, 'gm')

/**
 * The foreign keys, primary keys and indexes the migrations give their tables,
 * as Prisma's migration SQL writes them (one statement per line, primary keys
 * inside CREATE TABLE), minus those a later migration drops.
 */
export async function readMigrationKeys(migrationsDir: string): Promise<MigrationKeys> {
  const keys = new Map<string, ForeignKey>()
  const indexes = new Map<string, TableIndex>()
  for (const directory of (await readMigrationsDirectory(migrationsDir)).migrationDirectories) {
    if (directory.migrationFile.content.tag !== 'ok') continue
    const script = directory.migrationFile.content.value
    for (const [, table = '', name = ''] of script.matchAll(dropConstraint)) {
      keys.delete(`${table} ${name}`)
      indexes.delete(`${schemaOf(table)}${name}`)
    }
    for (const [, table = '', name = '', definition = '', references = ''] of script.matchAll(addForeignKey)) keys.set(`${table} ${name}`, { table, name, definition, references })
    for (const [, table = '', name = '', columns = ''] of script.matchAll(primaryKey)) indexes.set(`${schemaOf(table)}${name}`, { table, name, kind: 'primary', columns })
    for (const [, unique, name = '', table = '', columns = ''] of script.matchAll(createIndex)) indexes.set(`${schemaOf(table)}${name}`, { table, name, kind: unique === undefined ? 'index' : 'unique', columns })
    for (const [, name = ''] of script.matchAll(dropIndex)) indexes.delete(name)
  }
  return { foreignKeys: [...keys.values()], indexes: [...indexes.values()] }
}

/** `"schema".` of a quoted qualified table, or '' (index names are unique per schema). */
function schemaOf(table: string): string {
  const match = new RegExp(`^(${quoted})\\.`).exec(table)
  return match === null ? '' : `${match[1]}.`
}

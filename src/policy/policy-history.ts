import { z } from 'zod'
import { readMigrationsDirectory } from '../migrate/migrations-directory.js'
import type { TableName } from './classify-models.js'
import { RECORD_PREFIX, type DatabaseRecord, type PolicyRecord } from './policy-sql.js'

const tenantColumnRecord = {
  schema: z.string().nullable(),
  table: z.string(),
  column: z.string(),
  type: z.enum(['text', 'uuid', 'integer', 'bigint']),
  setting: z.string(),
  grants: z.array(z.string()),
}

const recordSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('tenant'), ...tenantColumnRecord, signed: z.boolean().optional(), partitioned: z.boolean().optional() }),
  z.object({ kind: z.literal('database'), revokedTemporary: z.array(z.string()), signed: z.boolean() }),
  z.object({ kind: z.literal('shared'), schema: z.string().nullable(), table: z.string(), grants: z.array(z.string()) }),
  z.object({ kind: z.literal('registry'), ...tenantColumnRecord, signed: z.boolean().optional() }),
])

export interface RecordedPolicy {
  /** The latest record for the table, in migration order. */
  record: Exclude<PolicyRecord, DatabaseRecord>
  migration: string
  /** Every role granted to across all records of the table. */
  grants: Set<string>
}

export interface PolicyHistory {
  /** Keyed by tableKey(). */
  tables: Map<string, RecordedPolicy>
  /** Roles an earlier migration revoked TEMPORARY on the database from. */
  revokedTemporary: Set<string>
  /** Whether an earlier migration created the signed context's key table and function. */
  signedContext: boolean
  /** The latest registry protection per table (kept apart: a later grant-only record must not hide it). */
  registries: Map<string, RecordedPolicy & { record: Extract<PolicyRecord, { kind: 'registry' }> }>
  /** Whether some migration creates the table (policies can only follow its CREATE TABLE). */
  creates(table: TableName): boolean
}

export function tableKey({ schema, table }: TableName): string {
  return JSON.stringify([schema, table])
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

function identifierPattern(name: string): string {
  const quoted = `"${escapeRegExp(name.replaceAll('"', '""'))}"`
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? `(?:${quoted}|${escapeRegExp(name)})` : quoted
}

// A damaged record counts as absent: generate then writes the table's policies again, which is safe.
function parseRecord(text: string): PolicyRecord | null {
  try {
    const parsed = recordSchema.safeParse(JSON.parse(text))
    return parsed.success ? parsed.data : null
  } catch {
    return null
  }
}

/**
 * Reads what earlier `generate` runs wrote: the record lines in each
 * migration's header, in migration order (a later record for a table
 * replaces an earlier one), plus the migration scripts themselves to tell
 * whether a table is created yet.
 */
export async function readPolicyHistory(migrationsDir: string): Promise<PolicyHistory> {
  const list = await readMigrationsDirectory(migrationsDir)
  const tables = new Map<string, RecordedPolicy>()
  const revokedTemporary = new Set<string>()
  let signedContext = false
  const registries: PolicyHistory['registries'] = new Map()
  const scripts: string[] = []
  for (const directory of list.migrationDirectories) {
    if (directory.migrationFile.content.tag !== 'ok') continue
    const script = directory.migrationFile.content.value
    scripts.push(script)
    for (const line of script.split('\n')) {
      if (!line.startsWith(RECORD_PREFIX)) continue
      const parsed = parseRecord(line.slice(RECORD_PREFIX.length))
      if (parsed === null) continue
      if (parsed.kind === 'database') {
        for (const role of parsed.revokedTemporary) revokedTemporary.add(role)
        signedContext ||= parsed.signed
        continue
      }
      const key = tableKey(parsed)
      if (parsed.kind === 'registry') {
        const grants = registries.get(key)?.grants ?? new Set<string>()
        for (const role of parsed.grants) grants.add(role)
        registries.set(key, { record: parsed, migration: directory.path, grants })
        continue
      }
      const grants = tables.get(key)?.grants ?? new Set<string>()
      for (const role of parsed.grants) grants.add(role)
      tables.set(key, { record: parsed, migration: directory.path, grants })
    }
  }
  return {
    tables,
    revokedTemporary,
    signedContext,
    registries,
    creates(table) {
      const name = `${table.schema === null ? '' : `${identifierPattern(table.schema)}\\s*\\.\\s*`}${identifierPattern(table.table)}`
      const pattern = new RegExp(`CREATE\\s+TABLE\\s+(?:IF\\s+NOT\\s+EXISTS\\s+)?${name}\\s*\\(`, 'i')
      return scripts.some((script) => pattern.test(script))
    },
  }
}

import { TenancyError } from '../errors.js'
import { openSchemaEngine, takeEnginePanic, type SchemaFile } from '../migrate/schema-engine.js'

/** One statement of the engine's migration script, with the kind it names in the comment above it. */
export interface DiffStatement {
  /** `AlterTable`, `CreateIndex`, `DropIndex`, `AddForeignKey`, `DropForeignKey`, ... */
  kind: string
  sql: string
}

/**
 * What `prisma migrate diff --from-config-datasource --to-schema` prints: the
 * engine introspects the live database and writes the script that would turn
 * it into the schema, with Prisma's own names for every index and constraint
 * (so nothing drifts once adoption is done). Adoption then reorders and
 * rewrites those statements into steps that are safe under traffic.
 */
export async function diffLiveDatabase(databaseUrl: string, schemaFiles: SchemaFile[], configDir: string): Promise<DiffStatement[]> {
  const { engine, close } = await openSchemaEngine(databaseUrl, schemaFiles)
  let script: string
  try {
    const diff = await engine.diff({
      from: { tag: 'schemaDatasource', files: schemaFiles, configDir },
      to: { tag: 'schemaDatamodel', files: schemaFiles },
      script: true,
      exitCode: true,
      filters: { externalTables: [], externalEnums: [] },
    })
    script = diff.exitCode === 2 ? (diff.stdout ?? '') : ''
  } catch (cause) {
    const message = takeEnginePanic() ?? (cause instanceof Error ? cause.message : String(cause))
    throw new TenancyError('MIGRATION_FAILED', `Comparing the live database with the schema failed: ${message.split('\n')[0]}\nCheck that the schema is valid (\`prisma validate\`) and the database reachable, then run again.`, {
      cause,
    })
  } finally {
    await close()
  }
  return parseScript(script)
}

/** The engine writes `-- Kind` on its own line above each statement, and a blank line between them. */
function parseScript(script: string): DiffStatement[] {
  const statements: DiffStatement[] = []
  for (const block of script.split(/\n\s*\n/)) {
    const lines = block.trim().split('\n')
    const heading = /^-- (\w+)$/.exec(lines[0] ?? '')
    if (heading === null) continue
    statements.push({ kind: heading[1]!, sql: lines.slice(1).join('\n').trim() })
  }
  return statements
}

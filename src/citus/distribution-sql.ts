import { quoteIdent, quoteLiteral } from '../database/sql-identifiers.js'
import { TenancyError } from '../errors.js'
import { keysWithoutTenantFixes, qualifiedName, tableName, type TableName, type TenantTable } from '../policy/classify-models.js'
import { quoteTable } from '../policy/policy-sql.js'
import type { Datamodel } from '../policy/prisma-schema.js'
import { readMigrationKeys, type ForeignKey } from '../migrate/migration-keys.js'

/**
 * Citus forwards `SET LOCAL` of a custom setting to the workers only under
 * this setting (measured on Citus 13.2: `set_config(..., true)` never reaches them).
 */
export const propagateSetting = 'citus.propagate_set_commands'

/**
 * Refuses a schema Citus cannot distribute: on a distributed table every
 * primary key and unique constraint must include the distribution column,
 * which is the tenant column. The error gives the schema change per key.
 */
export function assertCitusKeys(datamodel: Datamodel, tenantTables: TenantTable[], tenantField: string): void {
  const tenantModels = new Set(tenantTables.map((table) => table.model))
  const fixes = keysWithoutTenantFixes(datamodel, tenantModels, tenantField)
  for (const model of datamodel.models) {
    if (!tenantModels.has(model.name)) continue
    for (const field of model.fields) {
      // Prisma's default onUpdate is Cascade, which Citus refuses on a foreign key that includes the distribution column.
      const onUpdate = (field as { relationOnUpdate?: string }).relationOnUpdate ?? 'Cascade'
      if (field.kind !== 'object' || !(field.relationFromFields ?? []).includes(tenantField) || !['Cascade', 'SetNull', 'SetDefault'].includes(onUpdate)) continue
      fixes.push(`In model ${model.name}, add onUpdate: NoAction to the @relation of the field ${field.name} (Citus refuses ON UPDATE ${onUpdate} on a foreign key that includes the tenant column).`)
    }
  }
  if (fixes.length === 0) return
  throw new TenancyError(
    'SCHEMA_INVALID',
    `Citus distributes tenant tables on the tenant column: it refuses a primary or unique key without it, and a cascading ON UPDATE of a foreign key with it. Change the schema, run \`prisma-tenancy migrate dev --name citus-keys\`, then \`prisma-tenancy generate --citus\` again:\n${fixes.map((fix) => `  ${fix}`).join('\n')}`,
    { details: { fixes } },
  )
}

/**
 * Tables in an order Citus accepts: a table after every table it references
 * (reference tables first, then distributed ones), ties in code-point order so
 * the SQL is the same on every machine.
 */
function dependencyOrder(datamodel: Datamodel, tables: TableName[]): TableName[] {
  const byKey = new Map(tables.map((table) => [qualifiedName(table), table]))
  const modelByName = new Map(datamodel.models.map((model) => [model.name, model]))
  const dependsOn = new Map<string, Set<string>>()
  for (const model of datamodel.models) {
    const key = qualifiedName(tableName(model))
    if (!byKey.has(key)) continue
    const targets = new Set<string>()
    for (const field of model.fields) {
      const target = modelByName.get(field.type)
      if (field.kind !== 'object' || (field.relationFromFields ?? []).length === 0 || target === undefined) continue
      const targetKey = qualifiedName(tableName(target))
      if (targetKey !== key && byKey.has(targetKey)) targets.add(targetKey)
    }
    dependsOn.set(key, targets)
  }
  const ordered: TableName[] = []
  const done = new Set<string>()
  const remaining = [...byKey.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  while (remaining.length > 0) {
    // A cycle of foreign keys cannot be ordered; its tables keep name order (Citus reports which key it refuses).
    const index = Math.max(0, remaining.findIndex((key) => [...(dependsOn.get(key) ?? [])].every((target) => done.has(target))))
    const [key] = remaining.splice(index, 1)
    if (key === undefined) break
    done.add(key)
    const table = byKey.get(key)
    if (table !== undefined) ordered.push(table)
  }
  return ordered
}

// Not yet distributed (or made a reference table): a table that references a reference table is
// already in Citus's metadata as a "local" table, which create_distributed_table then converts.
const notYet = (table: TableName, type: 'reference' | 'distributed') =>
  `WHERE NOT EXISTS (SELECT 1 FROM citus_tables WHERE table_name = ${quoteLiteral(quoteTable(table))}::regclass AND citus_table_type = '${type}')`

/**
 * The foreign keys the migrations give these tables (their own, not those
 * pointing at them), as Prisma's migration SQL writes them.
 */
export async function foreignKeysOf(migrationsDir: string, tables: TableName[]): Promise<ForeignKey[]> {
  const names = new Set(tables.map(quoteTable))
  return (await readMigrationKeys(migrationsDir)).foreignKeys.filter((key) => names.has(key.table))
}

export interface CitusDistributionPlan {
  datamodel: Datamodel
  tenantTables: TenantTable[]
  sharedTables: TableName[]
  /** The tenant tables' foreign keys: Citus distributes no table that a local table references, so they are dropped and added back. */
  foreignKeys: ForeignKey[]
  appRole: string
}

/**
 * The Citus part of a policy migration, placed after the policies (which
 * Citus then creates on every shard): shared tables become reference tables
 * (a copy on every node), tenant tables are distributed on the tenant column,
 * all co-located so joins and foreign keys within a tenant stay on one node,
 * each in dependency order and only if not distributed yet (a later migration
 * repeats the statement for a table an earlier one distributed). Last, the
 * application role gets the propagation setting the tenancy driver needs.
 */
export function renderCitusDistribution(plan: CitusDistributionPlan): string {
  const tenantKeys = new Map(plan.tenantTables.map((table) => [qualifiedName(table), table]))
  const shared = dependencyOrder(plan.datamodel, plan.sharedTables)
  const tenant = dependencyOrder(plan.datamodel, plan.tenantTables)
  const lines = [
    '-- Citus: shared tables are reference tables, copied to every node, and tenant tables are distributed on the tenant',
    '-- column and co-located, so each tenant query is routed to the one shard that holds the tenant.',
    '-- Foreign keys to reference tables need every statement of the migration on one connection per node. A function,',
    '-- not SET LOCAL: Citus forwards a SET statement with the whole query string, which is the whole migration here.',
    "SELECT set_config('citus.multi_shard_modify_mode', 'sequential', true);",
    '-- Citus distributes no table that a table not distributed yet references: the foreign keys of the tenant tables',
    '-- are dropped first and added back, as the migrations wrote them, once every table is distributed.',
    ...plan.foreignKeys.map((key) => `ALTER TABLE ${key.table} DROP CONSTRAINT IF EXISTS ${key.name};`),
    ...shared.map((table) => `SELECT create_reference_table(${quoteLiteral(quoteTable(table))}) ${notYet(table, 'reference')};`),
    ...tenant.map((table) => {
      const column = tenantKeys.get(qualifiedName(table))?.column ?? ''
      return `SELECT create_distributed_table(${quoteLiteral(quoteTable(table))}, ${quoteLiteral(column)}, colocate_with => 'default') ${notYet(table, 'distributed')};`
    }),
    ...plan.foreignKeys.map((key) => `ALTER TABLE ${key.table} ADD CONSTRAINT ${key.name} ${key.definition};`),
    `-- The tenancy driver sends the tenant as SET LOCAL, which reaches the workers only when ${propagateSetting} is 'local'.`,
    `ALTER ROLE ${quoteIdent(plan.appRole)} SET ${propagateSetting} = 'local';`,
  ]
  return lines.join('\n')
}

/**
 * The policy migration with the distribution after the policies: Citus creates a table's policies and its
 * (forced) row-level security on every shard when it distributes it, while ALTER TABLE ... ENABLE ROW LEVEL
 * SECURITY on a table already distributed is forwarded with the whole query string, which is the whole
 * migration here, and fails ("cannot insert multiple commands into a prepared statement").
 */
export function withDistribution(script: string, distribution: string): string {
  return `${script}\n${distribution}\n`
}

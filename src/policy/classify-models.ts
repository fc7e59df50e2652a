import { TenancyError } from '../errors.js'
import type { Datamodel, DmmfField, DmmfModel } from './prisma-schema.js'

/** The doc comment that declares a model with the tenant field shared anyway: `/// @tenancy.shared`. */
export const SHARED_MARKER = '@tenancy.shared'
/** The doc comment that names the tenant registry when it is not the model `Tenant`: `/// @tenancy.registry`. */
export const REGISTRY_MARKER = '@tenancy.registry'
/** The doc comment that stores a tenant model's rows LIST-partitioned by tenant: `/// @tenancy.partitioned`. */
export const PARTITIONED_MARKER = '@tenancy.partitioned'

export type TenantColumnType = 'text' | 'uuid' | 'integer' | 'bigint'

export interface TableName {
  /** The PostgreSQL schema from @@schema, or null for the datasource's default schema. */
  schema: string | null
  /** The table name: @@map, else the model name. */
  table: string
}

export interface ModelClassification extends TableName {
  model: string
  class: 'tenant' | 'shared'
  reason: string
}

export interface SharedTable extends TableName {
  model: string
  /** Shared by the doc-comment marker (rather than for lack of the tenant field). */
  marked: boolean
}

export interface TenantTable extends TableName {
  model: string
  column: string
  columnType: TenantColumnType
  /** Columns filled from a sequence (@default(autoincrement())): the app role needs USAGE on their sequences. */
  sequenceColumns: string[]
  /** Marked PARTITIONED_MARKER: the table is LIST-partitioned on the tenant column, a partition per tenant. */
  partitioned: boolean
}

/** The tenant registry: one row per tenant, whose id is the tenant id. A shared table that a tenant reads its own row of only. */
export interface RegistryTable extends TableName {
  model: string
  /** The id column (the tenant id). */
  column: string
  columnType: TenantColumnType
}

export type FindingCode =
  | 'TENANT_DEFAULT_MISSING'
  | 'TENANT_INDEX_MISSING'
  | 'FOREIGN_KEY_WITHOUT_TENANT'
  | 'TENANT_FIELD_REMOVED'
  | 'TENANT_COLUMN_CHANGED'
  | 'TABLE_NOT_MIGRATED'

/** Something the user should fix in the schema; `fix` says exactly what. */
export interface Finding {
  code: FindingCode
  model: string | null
  table: string
  message: string
  fix: string
}

export interface SchemaAnalysis {
  models: ModelClassification[]
  tenantTables: TenantTable[]
  sharedTables: SharedTable[]
  /** The tenant registry (also listed in sharedTables), or null when the schema has none. */
  registry: RegistryTable | null
  findings: Finding[]
}

export interface ClassifyOptions {
  tenantField: string
  setting: string
}

export function noTenantColumnError(tenantField: string, setting: string, models: string[]): TenancyError {
  return new TenancyError(
    'NO_TENANT_COLUMN',
    `No model in the schema has the tenant field \`${tenantField}\`, so there is no table to protect. Add it to every tenant model, e.g. \`${tenantField} String @default(dbgenerated("${tenantDefaultExpression(setting, 'text')}")) @map("tenant_id")\`, or pass --tenant-field <name> if your field is named differently.`,
    { details: { tenantField, models } },
  )
}

export function tableName(model: DmmfModel): TableName {
  return { schema: model.schema, table: model.dbName ?? model.name }
}

export function qualifiedName({ schema, table }: TableName): string {
  return schema === null ? table : `${schema}.${table}`
}

function columnName(field: DmmfField): string {
  return field.dbName ?? field.name
}

function hasMarker(model: DmmfModel, marker: string): boolean {
  return (model.documentation ?? '').split(/\s+/).includes(marker)
}

/**
 * The schema change for each primary or unique key of these models that lacks
 * the tenant field: Citus (distribution column) and LIST partitioning
 * (partition key) both need the tenant column in every such key.
 */
export function keysWithoutTenantFixes(datamodel: Datamodel, models: ReadonlySet<string>, tenantField: string): string[] {
  const fixes: string[] = []
  for (const index of datamodel.indexes) {
    if (!models.has(index.model) || (index.type !== 'id' && index.type !== 'unique')) continue
    const fields = index.fields.map((field) => field.name)
    if (fields.includes(tenantField)) continue
    const key = `[${[tenantField, ...fields].join(', ')}]`
    if (index.type === 'id') {
      const single = fields.length === 1 ? ` (drop @id from the field ${fields[0]})` : ''
      fixes.push(`In model ${index.model}, make the primary key @@id(${key})${single}.`)
    } else fixes.push(`In model ${index.model}, replace the unique key on (${fields.join(', ')}) with @@unique(${key}).`)
  }
  return fixes
}

/** Refuses a model marked partitioned whose keys PostgreSQL cannot put on a table partitioned by the tenant column. */
function assertPartitionKeys(datamodel: Datamodel, models: ReadonlySet<string>, tenantField: string): void {
  const fixes = keysWithoutTenantFixes(datamodel, models, tenantField)
  if (fixes.length === 0) return
  throw new TenancyError(
    'PARTITION_KEY_INVALID',
    `A table partitioned by tenant can only have primary and unique keys that include the tenant column (PostgreSQL refuses others on a partitioned table). Change the schema, run \`prisma-tenancy migrate dev --name partition-keys\`, then \`prisma-tenancy generate\` again:\n${fixes.map((fix) => `  ${fix}`).join('\n')}`,
    { details: { fixes } },
  )
}

/**
 * The registry is the model marked `/// @tenancy.registry`, else the model named
 * `Tenant`. It must be shared (its rows are tenants, not rows of one) and have a
 * single-field id, which is the tenant id.
 */
function findRegistry(datamodel: Datamodel, tenantModels: Set<string>): RegistryTable | null {
  const marked = datamodel.models.filter((model) => hasMarker(model, REGISTRY_MARKER))
  if (marked.length > 1) {
    throw new TenancyError('SCHEMA_INVALID', `Several models are marked ${REGISTRY_MARKER} (${marked.map((model) => model.name).join(', ')}); there is one tenant registry. Keep the marker on one model.`)
  }
  const model = marked[0] ?? datamodel.models.find((candidate) => candidate.name === 'Tenant')
  if (model === undefined) return null
  if (tenantModels.has(model.name)) {
    if (marked.length === 0) return null // A tenant model that happens to be named Tenant: not a registry.
    throw new TenancyError('SCHEMA_INVALID', `${model.name} is marked ${REGISTRY_MARKER} but has the tenant field, which makes it a tenant table. Remove the tenant field from the registry model, or the marker.`)
  }
  const ids = model.fields.filter((field) => field.isId === true)
  const id = ids[0]
  if (ids.length !== 1 || id === undefined) {
    if (marked.length === 0) return null
    throw new TenancyError('SCHEMA_INVALID', `The tenant registry ${model.name} needs a single-field @id holding the tenant id. Give it one, e.g. \`id String @id\`.`)
  }
  return { model: model.name, ...tableName(model), column: columnName(id), columnType: tenantColumnType(model, id) }
}

function tenantColumnType(model: DmmfModel, field: DmmfField): TenantColumnType {
  const native = field.nativeType?.[0]
  if (field.kind === 'scalar' && !field.isList) {
    if (field.type === 'String' && native === 'Uuid') return 'uuid'
    if (field.type === 'String' && (native === undefined || ['Text', 'VarChar', 'Char'].includes(native))) return 'text'
    if (field.type === 'Int' && (native === undefined || native === 'Integer')) return 'integer'
    if (field.type === 'BigInt' && (native === undefined || native === 'BigInt')) return 'bigint'
  }
  throw new TenancyError(
    'SCHEMA_INVALID',
    `The tenant field ${model.name}.${field.name} has type ${field.type}${field.isList ? '[]' : ''}${native === undefined ? '' : ` @db.${native}`}, which the policies cannot compare with the tenant setting. Make it String, String @db.Uuid, Int or BigInt, or mark the model shared with a \`/// ${SHARED_MARKER}\` doc comment.`,
    { details: { model: model.name, field: field.name } },
  )
}

/** The default that fills the tenant column from the setting, as PostgreSQL prints it back (so Prisma sees no drift). */
export function tenantDefaultExpression(setting: string, type: TenantColumnType): string {
  const read = `current_setting('${setting.replaceAll("'", "''")}'::text, true)`
  return type === 'text' ? read : `(NULLIF(${read}, ''::text))::${type}`
}

function fieldLine(field: DmmfField, type: TenantColumnType, setting: string): string {
  const [nativeName, nativeArgs = []] = field.nativeType ?? []
  const native = nativeName === undefined ? '' : ` @db.${nativeName}${nativeArgs.length === 0 ? '' : `(${nativeArgs.join(', ')})`}`
  const map = field.dbName === undefined || field.dbName === null ? '' : ` @map("${field.dbName}")`
  const expression = tenantDefaultExpression(setting, type).replaceAll('\\', '\\\\').replaceAll('"', '\\"')
  return `${field.name} ${field.type}${field.isRequired ? '' : '?'}${native} @default(dbgenerated("${expression}"))${map}`
}

function hasTenantDefault(field: DmmfField, setting: string): boolean {
  const value = field.default as { name?: string; args?: unknown[] } | undefined
  if (value?.name !== 'dbgenerated') return false
  const expression = String(value.args?.[0] ?? '')
  return expression.includes(`current_setting('${setting}'`)
}

/**
 * Sorts every model into tenant or shared, and collects what the schema must
 * carry for the policies to be safe and fast without Prisma fighting them:
 * the tenant default and an index leading with the tenant column live in the
 * schema (Prisma would drop them again if only a policy migration made them),
 * and relations into tenant tables include the tenant column.
 */
export function classifyModels(datamodel: Datamodel, options: ClassifyOptions): SchemaAnalysis {
  const { tenantField, setting } = options
  const byName = new Map(datamodel.models.map((model) => [model.name, model]))
  const models: ModelClassification[] = []
  const tenantTables: TenantTable[] = []
  const sharedTables: SharedTable[] = []
  const findings: Finding[] = []
  const tenantModels = new Set<string>()

  for (const model of datamodel.models) {
    const name = tableName(model)
    const field = model.fields.find((candidate) => candidate.name === tenantField && candidate.kind !== 'object')
    const marked = hasMarker(model, SHARED_MARKER)
    if (hasMarker(model, PARTITIONED_MARKER) && (field === undefined || marked)) {
      throw new TenancyError('SCHEMA_INVALID', `${model.name} is marked ${PARTITIONED_MARKER}, but ${field === undefined ? `has no tenant field ${tenantField}` : `is also marked ${SHARED_MARKER}`}: only a tenant table is partitioned by tenant. Remove the marker, or give the model the tenant field.`)
    }
    if (field === undefined || marked) {
      models.push({ model: model.name, ...name, class: 'shared', reason: marked ? `marked ${SHARED_MARKER}` : `no ${tenantField} field` })
      sharedTables.push({ model: model.name, ...name, marked })
      continue
    }
    const columnType = tenantColumnType(model, field)
    const column = columnName(field)
    tenantModels.add(model.name)
    models.push({ model: model.name, ...name, class: 'tenant', reason: `has ${tenantField} (column ${column}, ${columnType})` })
    tenantTables.push({
      model: model.name,
      ...name,
      column,
      columnType,
      sequenceColumns: model.fields
        .filter((candidate) => (candidate.default as { name?: string } | undefined)?.name === 'autoincrement')
        .map(columnName),
      partitioned: hasMarker(model, PARTITIONED_MARKER),
    })
    if (!hasTenantDefault(field, setting)) {
      findings.push({
        code: 'TENANT_DEFAULT_MISSING',
        model: model.name,
        table: qualifiedName(name),
        message: `${model.name}.${tenantField} has no default from the tenant setting, so every insert must name the tenant itself.`,
        fix: `In model ${model.name}, write the field as: ${fieldLine(field, columnType, setting)}`,
      })
    }
    const leadingIndex = datamodel.indexes.some((index) => index.model === model.name && index.fields[0]?.name === tenantField)
    if (!leadingIndex) {
      findings.push({
        code: 'TENANT_INDEX_MISSING',
        model: model.name,
        table: qualifiedName(name),
        message: `${model.name} has no index that starts with ${tenantField}; every query filters on it, so each one scans the table.`,
        fix: `In model ${model.name}, add: @@index([${tenantField}])  (or lead an existing @@id/@@unique/@@index with ${tenantField})`,
      })
    }
  }

  for (const model of datamodel.models) {
    for (const relation of model.fields) {
      const from = relation.relationFromFields ?? []
      if (relation.kind !== 'object' || from.length === 0 || !tenantModels.has(relation.type)) continue
      const to = relation.relationToFields ?? []
      const target = byName.get(relation.type)
      const position = to.indexOf(tenantField)
      const sourceIsTenant = tenantModels.has(model.name)
      if (position !== -1 && sourceIsTenant && from[position] === tenantField) continue
      const targetKey = to.filter((name) => name !== tenantField)
      const sourceKey = from.filter((_, index) => to[index] !== tenantField)
      findings.push({
        code: 'FOREIGN_KEY_WITHOUT_TENANT',
        model: model.name,
        table: qualifiedName(tableName(model)),
        message: sourceIsTenant
          ? `${model.name}.${relation.name} references ${relation.type} by (${from.join(', ')}) without ${tenantField}: a row can point at another tenant's row, and the foreign key check reveals whether an id exists in another tenant.`
          : `${model.name} is shared but ${model.name}.${relation.name} references the tenant table ${relation.type}: the foreign key check reveals whether an id exists in any tenant.`,
        fix: sourceIsTenant
          ? `Write the relation as @relation(fields: [${[tenantField, ...sourceKey].join(', ')}], references: [${[tenantField, ...targetKey].join(', ')}]) and give ${target?.name ?? relation.type} @@unique([${[tenantField, ...targetKey].join(', ')}]).`
          : `Give ${model.name} a ${tenantField} field (making it a tenant table) or remove the relation to ${relation.type}.`,
      })
    }
  }

  assertPartitionKeys(datamodel, new Set(tenantTables.filter((table) => table.partitioned).map((table) => table.model)), tenantField)

  // Code-point order, not locale order: the generated SQL must be the same on every machine.
  const order = (a: TableName, b: TableName) => (qualifiedName(a) < qualifiedName(b) ? -1 : qualifiedName(a) > qualifiedName(b) ? 1 : 0)
  const registry = findRegistry(datamodel, tenantModels)
  if (registry !== null) {
    const entry = models.find((model) => model.model === registry.model)
    if (entry !== undefined) entry.reason = `tenant registry (id column ${registry.column})`
  }
  return { models, tenantTables: tenantTables.sort(order), sharedTables: sharedTables.sort(order), registry, findings }
}

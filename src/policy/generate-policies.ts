import { z } from 'zod'
import { readSchemaFiles, resolveProject } from '../config/project-config.js'
import { parseTenancyNames } from '../context/tenant-setting.js'
import { TenancyError } from '../errors.js'
import { parseMigrationName } from '../migrate/migrate.js'
import { migrationFolderName, writeMigration } from '../migrate/migrations-directory.js'
import { classifyModels, noTenantColumnError, PARTITIONED_MARKER, qualifiedName, SHARED_MARKER, type Finding, type ModelClassification, type TableName, type TenantTable } from './classify-models.js'
import { readPolicyHistory, tableKey } from './policy-history.js'
import { assertCitusKeys, foreignKeysOf, renderCitusDistribution, withDistribution } from '../citus/distribution-sql.js'
import { readMigrationKeys } from '../migrate/migration-keys.js'
import { partitionConversions } from './partition-sql.js'
import { ACCESS_POLICY, ISOLATION_POLICY, quoteTable, renderPolicyMigration, type PolicyPlan } from './policy-sql.js'
import { SIGNED_TENANT_FUNCTION } from './signed-context.js'
import { parseDatamodel } from './prisma-schema.js'

export interface GeneratePoliciesOptions {
  cwd?: string | undefined
  config?: string | undefined
  schema?: string | undefined
  migrations?: string | undefined
  /** Name part of the migration folder. Default `rls`. */
  name?: string | undefined
  /** The Prisma field that holds the tenant. Default `tenantId`. */
  tenantField?: string | undefined
  /** The PostgreSQL setting holding the current tenant. Default `app.current_tenant`. */
  setting?: string | undefined
  /** Role to grant table access to (tenant tables: read and write; shared tables: read), and to revoke TEMPORARY from. Default: no grants. */
  appRole?: string | undefined
  /** Policies trust the tenant only with a valid signature (the signed tenant context). Default false. */
  signed?: boolean | undefined
  /** Clock for the migration folder's timestamp. */
  now?: Date | undefined
  /** Also distribute the tables on Citus (reference tables for shared ones); needs appRole. */
  citus?: boolean | undefined
}

export type PendingReason = 'missing' | 'changed' | 'grant' | 'unshared' | 'not-migrated' | 'database'

/** A table whose policy migration does not exist yet (or no longer matches the schema); `(database)` for database-wide statements. */
export interface PendingTable {
  table: string
  model: string
  reason: PendingReason
  detail: string
}

export interface GeneratePoliciesResult {
  migrationsDir: string
  models: ModelClassification[]
  pending: PendingTable[]
  findings: Finding[]
  /** The migration folder written, or null (nothing new, or a check). */
  created: string | null
  /** True when every tenant table's policies are in the migrations and nothing needs a person. */
  upToDate: boolean
}

const appRoleSchema = z.string().min(1).max(63).optional()

function parseOptions(options: GeneratePoliciesOptions) {
  const names = parseTenancyNames(options)
  const appRole = appRoleSchema.safeParse(options.appRole)
  if (!appRole.success) {
    throw new TenancyError('CONFIG_INVALID', 'The option appRole must be a role name of 1 to 63 characters. Fix it and run again.', { cause: appRole.error })
  }
  return { ...names, appRole: appRole.data }
}

/** The `table` of pending database-wide statements. */
const DATABASE = '(database)'

interface Planned {
  migrationsDir: string
  models: ModelClassification[]
  pending: PendingTable[]
  findings: Finding[]
  plan: PolicyPlan
  /** With citus: the distribution statements, which go after the policies. */
  distribution: string | null
}

async function planPolicies(options: GeneratePoliciesOptions): Promise<Planned> {
  const { tenantField, setting, appRole } = parseOptions(options)
  const project = await resolveProject(options)
  const datamodel = parseDatamodel(await readSchemaFiles(project.schemaPath))
  const analysis = classifyModels(datamodel, { tenantField, setting })
  if (options.citus === true) {
    if (appRole === undefined) throw new TenancyError('CONFIG_INVALID', 'generate --citus needs --app-role <role>: the role gets the Citus setting that lets the tenant reach the workers.')
    assertCitusKeys(datamodel, analysis.tenantTables, tenantField)
  }
  const history = await readPolicyHistory(project.migrationsDir)
  // Without the field anywhere, the option or the schema is wrong, unless the field was removed after policies were made (reported below).
  if (analysis.tenantTables.length === 0 && !analysis.sharedTables.some((table) => table.marked)) {
    if (![...history.tables.values()].some((recorded) => recorded.record.kind === 'tenant')) {
      throw noTenantColumnError(tenantField, setting, analysis.models.map((model) => model.model))
    }
  }
  const findings = [...analysis.findings]
  const pending: PendingTable[] = []
  const signed = options.signed === true
  const plan: PolicyPlan = { setting, appRole: appRole ?? null, tenantTables: [], sharedTables: [], liftedTables: [], signed, registry: null }
  if (appRole !== undefined && !history.revokedTemporary.has(appRole)) {
    plan.revokeTemporary = true
    pending.push({ table: DATABASE, model: '', reason: 'database', detail: `TEMPORARY not revoked from PUBLIC and ${appRole} yet` })
  }
  if (signed && !history.signedContext) {
    plan.createSignedContext = true
    pending.push({ table: DATABASE, model: '', reason: 'database', detail: `no ${SIGNED_TENANT_FUNCTION}() and key table yet` })
  }

  // Policies can only follow a table's CREATE TABLE: a table no migration creates yet is reported, not written.
  const notMigrated = (table: TableName & { model: string }): boolean => {
    if (history.creates(table)) return false
    const name = qualifiedName(table)
    pending.push({ table: name, model: table.model, reason: 'not-migrated', detail: `no migration creates ${name} yet` })
    findings.push({
      code: 'TABLE_NOT_MIGRATED',
      model: table.model,
      table: name,
      message: `No migration creates ${name} yet, and its policies can only follow its CREATE TABLE.`,
      fix: 'Run `prisma-tenancy migrate dev --name <name>` first, then `prisma-tenancy generate`.',
    })
    return true
  }

  const include = (table: TenantTable, reason: PendingReason, detail: string) => {
    if (notMigrated(table)) return
    pending.push({ table: qualifiedName(table), model: table.model, reason, detail })
    plan.tenantTables.push(table)
  }

  for (const table of analysis.tenantTables) {
    const recorded = history.tables.get(tableKey(table))
    const record = recorded?.record
    if (record === undefined || record.kind !== 'tenant') {
      include(table, 'missing', 'no policy migration')
      continue
    }
    const changes = [
      record.column === table.column ? null : `column ${record.column} → ${table.column}`,
      record.type === table.columnType ? null : `type ${record.type} → ${table.columnType}`,
      record.setting === setting ? null : `setting ${record.setting} → ${setting}`,
      (record.signed ?? false) === signed ? null : signedChange(signed),
      (record.partitioned ?? false) === table.partitioned ? null : 'partitioned by tenant',
    ].filter((change) => change !== null)
    if (record.partitioned === true && !table.partitioned) {
      throw new TenancyError(
        'SCHEMA_INVALID',
        `${table.model} is no longer marked ${PARTITIONED_MARKER}, but ${qualifiedName(table)} was partitioned by tenant in ${recorded?.migration}. Turning it back into a plain table is not generated: put the marker back, or write that migration by hand.`,
      )
    }
    if (record.column !== table.column) {
      findings.push({
        code: 'TENANT_COLUMN_CHANGED',
        model: table.model,
        table: qualifiedName(table),
        message: `The policies on ${qualifiedName(table)} (from ${recorded?.migration}) use column ${record.column}, but the schema now names ${table.column}. Prisma migrates a renamed column as drop and add, and PostgreSQL refuses to drop a column that policies use.`,
        fix: `Write the rename by hand in a migration (ALTER TABLE ${quoteTable(table)} RENAME COLUMN "${record.column}" TO "${table.column}"; the policies follow the rename), or keep the old name with @map("${record.column}").`,
      })
    }
    if (changes.length > 0) include(table, 'changed', changes.join(', '))
    else if (appRole !== undefined && !(recorded?.grants.has(appRole) ?? false)) include(table, 'grant', `no grants to ${appRole} yet`)
  }

  const registry = analysis.registry
  for (const table of analysis.sharedTables) {
    // The registry's grants are its own block's (it also revokes writes), planned below.
    if (registry !== null && tableKey(table) === tableKey(registry)) continue
    const recorded = history.tables.get(tableKey(table))
    const name = qualifiedName(table)
    if (recorded?.record.kind === 'tenant') {
      if (table.marked) {
        pending.push({ table: name, model: table.model, reason: 'unshared', detail: `marked ${SHARED_MARKER}: its tenant policies are removed` })
        plan.liftedTables.push(table)
        if (appRole !== undefined) plan.sharedTables.push(table)
        continue
      }
      findings.push({
        code: 'TENANT_FIELD_REMOVED',
        model: table.model,
        table: name,
        message: `${table.model} no longer has the tenant field ${tenantField}, but ${name} still has tenant policies (from ${recorded.migration}) on column ${recorded.record.column}. PostgreSQL refuses to drop that column while policies use it, and the table stays filtered by tenant.`,
        fix: `If you renamed the field, pass --tenant-field <new name> (or rename it back). If ${table.model} is shared now, add a \`/// ${SHARED_MARKER}\` doc comment above the model and run \`prisma-tenancy generate\` before the migration that drops the column: it removes the policies (${ISOLATION_POLICY}, ${ACCESS_POLICY}).`,
      })
      continue
    }
    if (appRole !== undefined && !(recorded?.grants.has(appRole) ?? false)) {
      pending.push({ table: name, model: table.model, reason: 'grant', detail: `no read grant to ${appRole} yet` })
      plan.sharedTables.push(table)
    }
  }
  if (registry !== null) {
    const recorded = history.registries.get(tableKey(registry))
    const record = recorded?.record
    const detail =
      record === undefined
        ? 'the tenant registry is not protected yet'
        : record.column !== registry.column || record.type !== registry.columnType || record.setting !== setting
          ? `registry id column or setting changed (${record.column} ${record.type} ${record.setting} → ${registry.column} ${registry.columnType} ${setting})`
          : (record.signed ?? false) !== signed
            ? signedChange(signed)
            : appRole !== undefined && !(recorded?.grants.has(appRole) ?? false)
              ? `no read grant to ${appRole} yet`
              : null
    if (detail !== null && !notMigrated(registry)) {
      pending.push({ table: qualifiedName(registry), model: registry.model, reason: record === undefined ? 'missing' : appRole !== undefined && detail.startsWith('no read') ? 'grant' : 'changed', detail })
      plan.registry = registry
    }
  }
  const wasPartitioned = (table: TenantTable) => {
    const record = history.tables.get(tableKey(table))?.record
    return record?.kind === 'tenant' && record.partitioned === true
  }
  const converting = plan.tenantTables.filter((table) => table.partitioned && !wasPartitioned(table))
  if (converting.length > 0) plan.conversions = partitionConversions(await readMigrationKeys(project.migrationsDir), converting)
  const distribution =
    options.citus === true && appRole !== undefined
      ? renderCitusDistribution({
          datamodel,
          tenantTables: plan.tenantTables,
          sharedTables: analysis.sharedTables.filter((table) => history.creates(table)),
          foreignKeys: await foreignKeysOf(project.migrationsDir, plan.tenantTables),
          appRole,
        })
      : null
  return { migrationsDir: project.migrationsDir, models: analysis.models, pending, findings, plan, distribution }
}

/** What a switch between the signed and the unsigned mode changes, as a pending table's detail. */
function signedChange(signed: boolean): string {
  return signed ? 'signed tenant context' : 'unsigned tenant setting'
}

/** Findings that are errors: generate writes nothing and --check fails until they are fixed. */
export const blockingFindings: ReadonlySet<string> = new Set(['TENANT_FIELD_REMOVED', 'TENANT_INDEX_MISSING'])

function isUpToDate(planned: Planned): boolean {
  return planned.pending.length === 0 && !planned.findings.some((finding) => blockingFindings.has(finding.code))
}

/**
 * Reads the schema and the migrations folder and writes one new migration
 * holding row-level security for every tenant table that has none yet (or
 * whose tenant column, type or setting changed), grants when an app role is
 * given, and the removal of policies from tables now marked shared. Writes
 * nothing when the migrations already cover the schema.
 */
export async function generatePolicies(options: GeneratePoliciesOptions = {}): Promise<GeneratePoliciesResult> {
  const name = parseMigrationName(options.name ?? 'rls')
  const planned = await planPolicies(options)
  const { plan } = planned
  let created: string | null = null
  // The policies' comparison needs an index leading with the tenant column (README, How it works).
  const indexMissing = planned.findings.some((finding) => finding.code === 'TENANT_INDEX_MISSING')
  if (!indexMissing && (planned.pending.some((table) => table.reason !== 'not-migrated') || plan.registry !== null)) {
    const script = renderPolicyMigration(plan)
    created = await writeMigration(planned.migrationsDir, migrationFolderName(name, options.now), planned.distribution === null ? script : withDistribution(script, planned.distribution))
  }
  const pending = planned.pending.filter((table) => table.reason === 'not-migrated')
  return {
    migrationsDir: planned.migrationsDir,
    models: planned.models,
    pending,
    findings: planned.findings,
    created,
    upToDate: isUpToDate({ ...planned, pending }),
  }
}

/**
 * The CI drift gate: what `generatePolicies` would write, without writing.
 * `upToDate` is false when a tenant table has no policy migration yet.
 */
export async function checkPolicies(options: GeneratePoliciesOptions = {}): Promise<GeneratePoliciesResult> {
  const planned = await planPolicies(options)
  return {
    migrationsDir: planned.migrationsDir,
    models: planned.models,
    pending: planned.pending,
    findings: planned.findings,
    created: null,
    upToDate: isUpToDate(planned),
  }
}

export type { Finding, ModelClassification, TableName }

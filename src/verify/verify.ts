import { performance } from 'node:perf_hooks'
import { readSchemaFiles, resolveProject, type ProjectOptions } from '../config/project-config.js'
import { parseTenancyNames } from '../context/tenant-setting.js'
import { withClient } from '../database/admin.js'
import { databaseName, parseDatabaseUrl } from '../database/connection-url.js'
import { TenancyError } from '../errors.js'
import { classifyModels, noTenantColumnError } from '../policy/classify-models.js'
import { parseDatamodel, type Datamodel } from '../policy/prisma-schema.js'
import { readCatalog, roleExists } from './catalog.js'
import { runCitusChecks, runsCitus } from './citus-checks.js'
import { runProbes } from './probes.js'
import { probeCoverage, summarise, tableVerdicts, type VerifyReport } from './report.js'
import { qualify, runStaticChecks, type TableRef } from './static-checks.js'
import { checkTenantRoles } from './tenant-roles.js'

export interface VerifyOptions extends ProjectOptions {
  /**
   * The role the application connects as; every check is about it. Default:
   * the user of the connection. When it differs, the connecting user must be
   * allowed to SET ROLE to it (a superuser or a member) for the probes.
   */
  role?: string | undefined
  /** The Prisma field holding the tenant. Default: tenantId. */
  tenantField?: string | undefined
  /** The setting policies read the tenant from. Default: app.current_tenant. */
  setting?: string | undefined
  /** Run the behavioural probes (default true); false checks the catalogs only. */
  probes?: boolean | undefined
  /** Warnings fail too (report.ok false). */
  strict?: boolean | undefined
}

/** The doc comment that marks the tenant registry (else the model named Tenant): `/// @tenancy.registry`. */
const REGISTRY_MARKER = '@tenancy.registry'

/** The registry models, each with the column of its single-field id (the tenant id), or null. */
function registryKeys(datamodel: Datamodel): Map<string, string | null> {
  const marked = datamodel.models.filter((model) => (model.documentation ?? '').split(/\s+/).includes(REGISTRY_MARKER))
  const registries = marked.length > 0 ? marked : datamodel.models.filter((model) => model.name === 'Tenant')
  return new Map(
    registries.map((model) => {
      const id = datamodel.indexes.find((index) => index.model === model.name && index.type === 'id')
      const field = id?.fields.length === 1 ? model.fields.find((candidate) => candidate.name === id.fields[0]?.name) : undefined
      return [model.name, field === undefined ? null : (field.dbName ?? field.name)]
    }),
  )
}

/**
 * Proves that every tenant table of the Prisma schema is isolated for the
 * application role: static checks over the catalogs, then behavioural probes
 * in a transaction that is always rolled back. Never throws for a failing
 * check (that is the report's `ok`); throws TenancyError for configuration
 * and connection problems.
 */
export async function verify(options: VerifyOptions = {}): Promise<VerifyReport> {
  const started = performance.now()
  const { setting, tenantField } = parseTenancyNames(options)
  const project = await resolveProject(options)
  const databaseUrl = parseDatabaseUrl(project.databaseUrl)
  const datamodel = parseDatamodel(await readSchemaFiles(project.schemaPath))
  const analysis = classifyModels(datamodel, { tenantField, setting })
  const registries = registryKeys(datamodel)
  // Nothing to verify is no proof of isolation: a mistyped --tenant-field must not pass.
  if (analysis.tenantTables.length === 0 && !analysis.sharedTables.some((table) => table.marked)) {
    throw noTenantColumnError(tenantField, setting, analysis.models.map((model) => model.model))
  }
  return withClient(databaseUrl, async (client) => {
    const currentUser = (await client.query<{ user: string }>('SELECT current_user AS user')).rows[0]!.user
    const role = options.role ?? currentUser
    if (!(await roleExists(client, role))) {
      throw new TenancyError('CONFIG_INVALID', `Role ${role} does not exist in ${databaseName(databaseUrl)}. Pass --role with the role your application connects as.`, { details: { role } })
    }
    const catalog = await readCatalog(client, role, setting)
    const resolve = (schema: string | null, table: string, column: string | null): TableRef => ({ schema: schema ?? catalog.defaultSchema, table, column })
    const tenantTables = analysis.tenantTables.map((table) => resolve(table.schema, table.table, table.column))
    const sharedTables = analysis.sharedTables.map((table) => {
      const key = registries.get(table.model)
      return { ...resolve(table.schema, table.table, null), ...(key === undefined ? {} : { registry: { key } }) }
    })
    const results = runStaticChecks(catalog, tenantTables, sharedTables, setting)
    const registry = analysis.registry === null ? null : resolve(analysis.registry.schema, analysis.registry.table, analysis.registry.column)
    results.push(...(await checkTenantRoles(client, role, tenantTables, sharedTables, registry)))
    const citus = await runsCitus(client)
    if (citus) results.push(...(await runCitusChecks(client, role, tenantTables)))
    const probes = options.probes === false ? { results: [], probed: [] } : await runProbes(client, catalog, tenantTables, setting, citus)
    results.push(...probes.results)
    if (options.probes !== false) results.push(...probeCoverage(probes.probed, tenantTables.map((table) => qualify(table.schema, table.table)), role, catalog.sessionUser))
    const summary = summarise(results)
    const tenantNames = tenantTables.map((table) => qualify(table.schema, table.table))
    const sharedNames = sharedTables.map((table) => qualify(table.schema, table.table))
    return {
      ok: summary.failed === 0 && (options.strict !== true || summary.warned === 0),
      database: catalog.database,
      role,
      setting,
      tenantTables: tenantNames,
      sharedTables: sharedNames,
      probedTables: probes.probed,
      tables: tableVerdicts(results, tenantNames, sharedNames, probes.probed),
      results,
      summary,
      durationMs: performance.now() - started,
    }
  })
}

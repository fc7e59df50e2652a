import { performance } from 'node:perf_hooks'
import { readSchemaFiles, resolveProject, type ProjectOptions } from '../config/project-config.js'
import { parseTenancyNames } from '../context/tenant-setting.js'
import { withClient } from '../database/admin.js'
import { databaseName, parseDatabaseUrl } from '../database/connection-url.js'
import { TenancyError } from '../errors.js'
import { classifyModels, noTenantColumnError } from '../policy/classify-models.js'
import { parseDatamodel } from '../policy/prisma-schema.js'
import { readCatalog, roleExists } from './catalog.js'
import { runProbes } from './probes.js'
import { probeCoverage, summarise, tableVerdicts, type VerifyReport } from './report.js'
import { qualify, runStaticChecks, type TableRef } from './static-checks.js'

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
  const analysis = classifyModels(parseDatamodel(await readSchemaFiles(project.schemaPath)), { tenantField, setting })
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
    const sharedTables = analysis.sharedTables.map((table) => resolve(table.schema, table.table, null))
    const results = runStaticChecks(catalog, tenantTables, sharedTables, setting)
    const probes = options.probes === false ? { results: [], probed: [] } : await runProbes(client, catalog, tenantTables, setting)
    results.push(...probes.results)
    if (options.probes !== false) results.push(...probeCoverage(probes.probed, tenantTables.map((table) => qualify(table.schema, table.table)), role, catalog.sessionUser))
    const summary = summarise(results)
    const tenantNames = tenantTables.map((table) => qualify(table.schema, table.table))
    const sharedNames = sharedTables.map((table) => qualify(table.schema, table.table))
    return {
      ok: summary.failed === 0,
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

import { blockingFindings, checkPolicies, generatePolicies, type GeneratePoliciesOptions, type GeneratePoliciesResult } from '../../policy/generate-policies.js'
import type { CliIo } from '../output.js'
import { exitCodes } from '../output.js'

export interface GenerateCommandOptions extends GeneratePoliciesOptions {
  check?: boolean | undefined
  /** Warnings (missing tenant default, foreign keys without the tenant column) fail too; a missing tenant index always does. */
  strict?: boolean | undefined
  json?: boolean | undefined
}

function describe(result: GeneratePoliciesResult, check: boolean): string {
  const lines = ['Models:']
  for (const model of result.models) {
    lines.push(`  ${model.class.padEnd(6)} ${model.model}${model.table === model.model && model.schema === null ? '' : ` (table ${model.schema === null ? '' : `${model.schema}.`}${model.table})`}: ${model.reason}`)
  }
  if (check) {
    if (result.pending.length > 0) {
      lines.push('Tables whose policy migration does not exist yet:')
      for (const table of result.pending) lines.push(`  ${table.table} (model ${table.model}): ${table.detail}`)
      lines.push('Run `prisma-tenancy generate` and commit the migration it writes.')
    }
  } else if (result.created !== null) {
    lines.push(`Created ${result.created}/migration.sql in ${result.migrationsDir}`, 'Apply it with `prisma-tenancy migrate deploy` (or `prisma migrate deploy`).')
  } else if (result.upToDate) {
    lines.push('The migrations already hold the policies for every tenant table; nothing written.')
  }
  for (const table of check ? [] : result.pending) lines.push(`Not written: ${table.table} (model ${table.model}): ${table.detail}`)
  for (const finding of result.findings) lines.push(`${blockingFindings.has(finding.code) ? 'error' : 'warning'} ${finding.code} ${finding.table}: ${finding.message}\n  fix: ${finding.fix}`)
  if (!check && result.created === null && result.findings.some((finding) => finding.code === 'TENANT_INDEX_MISSING')) lines.push('Nothing written: add the indexes above, run `prisma-tenancy migrate dev`, then generate again.')
  if (check && result.upToDate) lines.push('Policies are up to date.')
  return lines.join('\n')
}

/**
 * `generate`: writes the policy migration; with --check, only reports. Exits 1 when a
 * tenant table is left without policies (drift, or a table it could not write for),
 * and with --strict also on warnings, so `generate && migrate deploy` stops there.
 */
export async function generateCommand(options: GenerateCommandOptions, io: CliIo): Promise<number> {
  const check = options.check === true
  const result = check ? await checkPolicies(options) : await generatePolicies(options)
  if (options.json === true) io.stdout(JSON.stringify(result))
  io.stderr(describe(result, check))
  const failed = !result.upToDate || (options.strict === true && result.findings.length > 0)
  return failed ? exitCodes.failed : exitCodes.ok
}

/** Every check the verifier runs, by its stable id (documented in README, shown in every output). */
export const checkIds = [
  'table-missing',
  'rls-disabled',
  'rls-not-forced',
  'no-policy',
  'command-uncovered',
  'policy-not-tenant-scoped',
  'role-bypasses-rls',
  'role-owns-table',
  'partition-unprotected',
  'immutable-policy-function',
  'default-tenant-setting',
  'view-bypasses-rls',
  'definer-function',
  'leakproof-function',
  'dangerous-privilege',
  'fk-not-tenant-scoped',
  'unique-not-tenant-scoped',
  'sequence-readable',
  'untracked-table',
  'shared-table-writable',
  'registry-writable',
  'temporary-privilege',
  'signed-context',
  'tenant-column',
  'tenant-role-privilege',
  'tenant-role-unmapped',
  'tenant-role-unbound',
  'citus-distributed',
  'citus-shard-policies',
  'citus-propagation',
  'probe-read',
  'probe-update',
  'probe-delete',
  'probe-insert',
  'probe-move',
  'probe-no-tenant',
  'not-probed',
  'nothing-probed',
] as const

export type CheckId = (typeof checkIds)[number]
export type CheckStatus = 'pass' | 'warn' | 'fail'

/** One check's verdict; `table` is the schema-qualified relation it is about, or null for database-wide checks. */
export interface CheckResult {
  check: CheckId
  status: CheckStatus
  table: string | null
  /** Why, in one line. */
  message: string
  /** How to fix it, in one line (empty when it passed). */
  fix: string
}

/**
 * The verifier's answer; `--json` prints exactly this object. `ok` is false
 * when any result failed. Passing results are listed too, so a report shows
 * what was proven and not only what went wrong.
 */
export interface VerifyReport {
  ok: boolean
  database: string
  role: string
  setting: string
  tenantTables: string[]
  sharedTables: string[]
  /** Tenant tables the behavioural probes ran on. */
  probedTables: string[]
  /** Every relation a result is about, with its worst status. */
  tables: TableVerdict[]
  results: CheckResult[]
  summary: { passed: number; warned: number; failed: number }
  durationMs: number
}

export interface TableVerdict {
  table: string
  kind: 'tenant' | 'shared' | 'other'
  status: CheckStatus
  probed: boolean
}

const severity: Record<CheckStatus, number> = { pass: 0, warn: 1, fail: 2 }

export function tableVerdicts(results: CheckResult[], tenantTables: string[], sharedTables: string[], probedTables: string[]): TableVerdict[] {
  const verdicts = new Map<string, TableVerdict>()
  const kind = (table: string) => (tenantTables.includes(table) ? 'tenant' : sharedTables.includes(table) ? 'shared' : 'other')
  for (const table of tenantTables) verdicts.set(table, { table, kind: 'tenant', status: 'pass', probed: probedTables.includes(table) })
  for (const result of results) {
    if (result.table === null) continue
    const verdict = verdicts.get(result.table) ?? { table: result.table, kind: kind(result.table), status: 'pass', probed: probedTables.includes(result.table) }
    if (severity[result.status] > severity[verdict.status]) verdict.status = result.status
    verdicts.set(result.table, verdict)
  }
  return [...verdicts.values()]
}

/**
 * A run with probes that probed no tenant table proved nothing by behaviour: it
 * fails, naming the set-up that lets the probes run. Probes act as the app role
 * (SET ROLE) and write shared parent rows (the tenant registry) as the
 * connecting user, so that user must be a member of the app role and able to
 * write the shared tables: the migration role, with GRANT app TO it.
 */
export function probeCoverage(probed: string[], tenantTables: string[], role: string, sessionUser: string): CheckResult[] {
  if (tenantTables.length === 0 || probed.length > 0) return []
  const fix =
    role === sessionUser
      ? `Connect as the migration role (it writes the shared rows the probes need) after GRANT ${role} TO <migration role>; and pass --role ${role}, or pass --no-probes to check the catalogs only.`
      : `GRANT ${role} TO ${sessionUser}; (so ${sessionUser} can act as ${role}) and run verify again, or pass --no-probes to check the catalogs only.`
  return [{ check: 'nothing-probed', status: 'fail', table: null, message: `None of the ${tenantTables.length} tenant table(s) could be probed as ${role}: nothing was proven by behaviour.`, fix }]
}

export function summarise(results: CheckResult[]): VerifyReport['summary'] {
  const summary = { passed: 0, warned: 0, failed: 0 }
  for (const result of results) summary[result.status === 'pass' ? 'passed' : result.status === 'warn' ? 'warned' : 'failed']++
  return summary
}

/**
 * The readable report: every warning and failure with its why and fix,
 * grouped by table, then one line per table whose checks all passed, then
 * the summary line.
 */
export function formatReport(report: VerifyReport): string {
  const lines: string[] = [`Verifying ${report.tenantTables.length} tenant table(s) in ${report.database} as role ${report.role} (tenant setting ${report.setting})`]
  const byTable = new Map<string, CheckResult[]>()
  for (const result of report.results) {
    const key = result.table ?? '(database)'
    byTable.set(key, [...(byTable.get(key) ?? []), result])
  }
  const clean: string[] = []
  for (const [table, results] of byTable) {
    const problems = results.filter((result) => result.status !== 'pass')
    if (problems.length === 0) {
      clean.push(`  pass  ${table}  (${results.length} checks)`)
      continue
    }
    lines.push('', table)
    for (const result of problems) {
      lines.push(`  ${result.status.padEnd(4)}  ${result.check.padEnd(25)}  ${result.message}`)
      if (result.fix !== '') lines.push(`  ${''.padEnd(4)}  ${'fix:'.padEnd(25)}  ${result.fix}`)
    }
  }
  if (clean.length > 0) lines.push('', ...clean)
  const { passed, warned, failed } = report.summary
  lines.push(
    '',
    `${report.ok ? 'OK' : 'FAILED'}: ${failed} failed, ${warned} warning(s), ${passed} passed; ${report.probedTables.length}/${report.tenantTables.length} tenant table(s) probed; ${Math.round(report.durationMs)} ms`,
  )
  return lines.join('\n')
}

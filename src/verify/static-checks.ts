import { quoteIdent } from '../database/sql-identifiers.js'
import type { Catalog, FunctionInfo, Policy, Relation } from './catalog.js'
import type { CheckId, CheckResult, CheckStatus } from './report.js'
import { SIGNED_TENANT_FUNCTION, SIGNING_KEY_TABLE, signedTenantFunctionBody } from '../policy/signed-context.js'
import { isTenantScoped } from './tenant-expression.js'

/** A table the schema names, resolved to database names. */
export interface TableRef {
  schema: string
  table: string
  /** Tenant column; null for shared tables. */
  column: string | null
  /** A shared table that is the tenant registry: its key column holds the tenant id (null: no single-column key). */
  registry?: { key: string | null } | undefined
}

export const qualify = (schema: string, name: string): string => `${schema}.${name}`

/** An identifier as SQL needs it in a fix: quoted unless it is a plain lower-case name. */
const ident = (name: string): string => (/^[a-z_][a-z0-9_$]*$/.test(name) ? name : quoteIdent(name))
const sqlName = (relation: { schema: string; name: string }): string => `${ident(relation.schema)}.${ident(relation.name)}`

const commands = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const
type Command = (typeof commands)[number]
const commandCode: Record<Command, string> = { SELECT: 'r', INSERT: 'a', UPDATE: 'w', DELETE: 'd' }

/** The expressions a policy contributes for a command: USING filters rows, WITH CHECK vets new rows (defaulting to USING). */
function expressions(policy: Policy, command: Command): { clause: 'USING' | 'WITH CHECK'; expression: string | null }[] {
  const check = policy.check ?? policy.using
  if (command === 'INSERT') return [{ clause: 'WITH CHECK', expression: check }]
  if (command === 'UPDATE') return [{ clause: 'USING', expression: policy.using }, { clause: 'WITH CHECK', expression: check }]
  return [{ clause: 'USING', expression: policy.using }]
}

interface PolicyAnalysis {
  applicable: Policy[]
  uncovered: Command[]
  /** Permissive policy clauses that let rows of other tenants through, with no restrictive tenant policy guarding them. */
  leaks: { policy: string; command: Command; clause: 'USING' | 'WITH CHECK' }[]
}

/**
 * Row-level security ORs the permissive policies and ANDs the restrictive
 * ones. So a command is isolated when a restrictive policy compares the
 * tenant column with the setting, or else when every permissive policy does.
 */
export function analysePolicies(policies: Policy[], column: string, setting: string): PolicyAnalysis {
  const applicable = policies.filter((policy) => policy.applies)
  const uncovered: Command[] = []
  const leaks: PolicyAnalysis['leaks'] = []
  for (const command of commands) {
    const forCommand = applicable.filter((policy) => policy.command === '*' || policy.command === commandCode[command])
    const permissive = forCommand.filter((policy) => policy.permissive)
    if (permissive.length === 0) uncovered.push(command)
    for (const policy of permissive) {
      for (const { clause, expression } of expressions(policy, command)) {
        if (isTenantScoped(expression, column, setting)) continue
        const guarded = forCommand.some(
          (restrictive) =>
            !restrictive.permissive &&
            expressions(restrictive, command).some((other) => other.clause === clause && isTenantScoped(other.expression, column, setting)),
        )
        if (!guarded) leaks.push({ policy: policy.name, command, clause })
      }
    }
  }
  return { applicable, uncovered, leaks }
}

function describeLeaks(leaks: PolicyAnalysis['leaks']): string {
  const byPolicy = new Map<string, string[]>()
  for (const leak of leaks) byPolicy.set(leak.policy, [...(byPolicy.get(leak.policy) ?? []), `${leak.clause} for ${leak.command}`])
  return [...byPolicy].map(([policy, where]) => `policy ${policy} (${where.join(', ')})`).join('; ')
}

export function runStaticChecks(catalog: Catalog, tenantTables: TableRef[], sharedTables: TableRef[], setting: string): CheckResult[] {
  const results: CheckResult[] = []
  const add = (check: CheckId, status: CheckStatus, table: string | null, message: string, fix = '') => results.push({ check, status, table, message, fix })
  const pass = (check: CheckId, table: string | null, message: string) => add(check, 'pass', table, message)

  const byOid = new Map(catalog.relations.map((relation) => [relation.oid, relation]))
  const byName = new Map(catalog.relations.map((relation) => [qualify(relation.schema, relation.name), relation]))
  const columnsOf = (relid: number) => catalog.columns.filter((column) => column.relid === relid)
  const policiesOf = new Map<number, Policy[]>()
  for (const policy of catalog.policies) policiesOf.set(policy.relid, [...(policiesOf.get(policy.relid) ?? []), policy])
  const childrenOf = new Map<number, number[]>()
  for (const { child, parent } of catalog.inherits) childrenOf.set(parent, [...(childrenOf.get(parent) ?? []), child])
  const descendants = (oid: number): number[] => (childrenOf.get(oid) ?? []).flatMap((child) => [child, ...descendants(child)])
  const role = catalog.role.name

  const tenantOids = new Map<number, { name: string; column: string }>()
  for (const ref of tenantTables) {
    const name = qualify(ref.schema, ref.table)
    const relation = byName.get(name)
    const column = ref.column!
    if (relation === undefined || !['r', 'p'].includes(relation.kind)) {
      add('table-missing', 'fail', name, `The schema declares tenant table ${name}, but the database has no such table.`, 'Apply the migrations (prisma-tenancy migrate deploy) or fix --schema / --database-url.')
      continue
    }
    tenantOids.set(relation.oid, { name, column })
    const sql = sqlName(relation)
    for (const child of descendants(relation.oid)) tenantOids.set(child, { name: qualify(byOid.get(child)?.schema ?? '', byOid.get(child)?.name ?? String(child)), column })

    if (relation.rls) pass('rls-disabled', name, 'row-level security is enabled')
    else add('rls-disabled', 'fail', name, 'Row-level security is disabled: every role with table privileges sees all tenants.', `ALTER TABLE ${sql} ENABLE ROW LEVEL SECURITY;`)
    if (relation.forced || !relation.rls) pass('rls-not-forced', name, 'row-level security is forced for the owner')
    else add('rls-not-forced', 'fail', name, `Row-level security is not forced, so the owner (${relation.owner}) bypasses the policies.`, `ALTER TABLE ${sql} FORCE ROW LEVEL SECURITY;`)

    const policies = policiesOf.get(relation.oid) ?? []
    const analysis = analysePolicies(policies, column, setting)
    if (analysis.applicable.length === 0) {
      add(
        'no-policy',
        'fail',
        name,
        policies.length === 0 ? 'No policy on the table: with row-level security on, every query of the app is denied.' : `None of its policies (${policies.map((policy) => policy.name).join(', ')}) applies to role ${role}: every query of the app is denied.`,
        'Generate the tenant policies (prisma-tenancy generate) and apply them (prisma-tenancy migrate deploy).',
      )
    } else {
      pass('no-policy', name, `${analysis.applicable.length} policies apply to ${role}`)
      if (analysis.uncovered.length === 0) pass('command-uncovered', name, 'SELECT, INSERT, UPDATE and DELETE are covered')
      else add('command-uncovered', 'fail', name, `No permissive policy for ${role} covers ${analysis.uncovered.join(', ')}: those commands are denied.`, `Create a tenant policy FOR ALL (or for ${analysis.uncovered.join(', ')}) on ${name}.`)
    }
    if (analysis.leaks.length === 0) pass('policy-not-tenant-scoped', name, `every permissive policy compares ${column} with ${setting} or is guarded by a restrictive one that does`)
    else
      add(
        'policy-not-tenant-scoped',
        'fail',
        name,
        `${describeLeaks(analysis.leaks)} does not compare ${column} with current_setting('${setting}') and no restrictive tenant policy guards it: rows of other tenants pass.`,
        `Drop or rewrite those policies, or add: CREATE POLICY tenancy_isolation ON ${sql} AS RESTRICTIVE FOR ALL USING (${ident(column)} = NULLIF(current_setting('${setting}', true), '')) WITH CHECK (same);`,
      )

    if (relation.roleOwns) add('role-owns-table', 'fail', name, `Role ${role} owns the table or is a member of its owner ${relation.owner}: it can disable row-level security or drop the policies.`, relation.owner === role
          ? `Connect the app as a role that owns nothing (prisma-tenancy init writes one), or ALTER TABLE ${sql} OWNER TO <migration role>;`
          : `ALTER TABLE ${sql} OWNER TO <migration role>; and REVOKE ${ident(relation.owner)} FROM ${ident(role)};`)
    else pass('role-owns-table', name, `${role} does not own the table`)

    const unprotected = descendants(relation.oid)
      .map((oid) => byOid.get(oid))
      .filter((child): child is Relation => child !== undefined)
      .filter((child) => {
        // Without policies of its own (RLS on, none applies) a partition is closed, but the lifecycle gives each one the parent's: it is unprotected by mistake.
        const own = analysePolicies(policiesOf.get(child.oid) ?? [], column, setting)
        return !child.rls || (child.roleOwns && !child.forced) || own.leaks.length > 0 || own.applicable.length === 0
      })
    if (unprotected.length === 0) pass('partition-unprotected', name, 'no partition or child table without its own tenant policies')
    else
      add(
        'partition-unprotected',
        'fail',
        name,
        `Partition or child ${unprotected.map((child) => qualify(child.schema, child.name)).join(', ')} of ${name} has no row-level security or no tenant policies of its own: queried directly, it ignores ${name}'s policies.`,
        `Enable and force row-level security and create the tenant policies on ${unprotected.map((child) => qualify(child.schema, child.name)).join(', ')} too.`,
      )

    const immutable = catalog.immutablePolicyFunctions.filter((entry) => entry.relid === relation.oid)
    if (immutable.length === 0) pass('immutable-policy-function', name, 'no policy calls an IMMUTABLE user function')
    else
      add(
        'immutable-policy-function',
        'fail',
        name,
        `Policy ${immutable.map((entry) => `${entry.policy} calls ${entry.function}`).join(', ')}, declared IMMUTABLE: PostgreSQL may fold it into a cached plan and serve one tenant's answer to another.`,
        `ALTER FUNCTION ${immutable[0]!.function} STABLE; (anything reading a setting or a table is STABLE at most)`,
      )

    const dangerous = (['truncate', 'references', 'trigger'] as const).filter((privilege) => relation.privileges[privilege]).map((privilege) => privilege.toUpperCase())
    if (catalog.schemas.find((schema) => schema.name === relation.schema)?.create === true) dangerous.push(`CREATE on schema ${relation.schema}`)
    if (dangerous.length === 0) pass('dangerous-privilege', name, 'no TRUNCATE, REFERENCES, TRIGGER or schema CREATE')
    else
      add(
        'dangerous-privilege',
        'fail',
        name,
        `Role ${role} holds ${dangerous.join(', ')}: TRUNCATE ignores row-level security, REFERENCES and TRIGGER let it observe or act on other tenants' rows, CREATE lets it shadow objects.`,
        `REVOKE TRUNCATE, REFERENCES, TRIGGER ON ${sql} FROM ${ident(role)};${dangerous.some((item) => item.startsWith('CREATE')) ? ` REVOKE CREATE ON SCHEMA ${ident(relation.schema)} FROM ${ident(role)}, PUBLIC;` : ''}`,
      )

    const columns = columnsOf(relation.oid)
    const tenantColumn = columns.find((candidate) => candidate.name === column)
    const indexes = catalog.indexes.filter((index) => index.relid === relation.oid)
    if (tenantColumn === undefined) {
      add('tenant-column', 'fail', name, `The table has no column ${column}, the tenant field of the schema.`, 'Apply the migrations, or fix the tenant field (--tenant-field).')
    } else {
      if (!tenantColumn.notNull) add('tenant-column', 'fail', name, `${column} is nullable: a row without a tenant belongs to no one, and policies comparing with NULL hide it from everyone but not from the owner.`, `ALTER TABLE ${sql} ALTER COLUMN ${ident(column)} SET NOT NULL; (make the field required in the schema)`)
      else if (!indexes.some((index) => index.columns[0] === tenantColumn.num && !index.partial)) add('tenant-column', 'warn', name, `No index starts with ${column}: every policy-filtered query scans the table.`, `Add @@index([tenantId]) to the model, or lead an existing @@id/@@unique with it.`)
      else pass('tenant-column', name, `${column} is NOT NULL and leads an index`)
      const global = indexes.filter((index) => index.unique && !index.primary && !index.columns.includes(tenantColumn.num))
      if (global.length === 0) pass('unique-not-tenant-scoped', name, `every unique index includes ${column}`)
      else
        add(
          'unique-not-tenant-scoped',
          'warn',
          name,
          `Unique index ${global.map((index) => index.name).join(', ')} does not include ${column}: values are unique across tenants, and a duplicate-key error tells one tenant that another holds that value.`,
          `Include ${column} in the unique constraint: @@unique([tenantId, ...]).`,
        )
    }
  }

  // Foreign keys into tenant tables must carry the tenant column on both sides.
  const tenantByOid = new Map<number, string>()
  for (const [oid, { column }] of tenantOids) tenantByOid.set(oid, column)
  const numberOf = (relid: number, column: string | undefined) => columnsOf(relid).find((candidate) => candidate.name === column)?.num
  const fkProblems = new Map<string, string[]>()
  for (const fk of catalog.foreignKeys) {
    const refColumn = tenantByOid.get(fk.refRelid)
    if (refColumn === undefined) continue
    const refNum = numberOf(fk.refRelid, refColumn)
    const position = refNum === undefined ? -1 : fk.refColumns.indexOf(refNum)
    const sourceColumn = tenantByOid.get(fk.relid)
    const scoped = position !== -1 && sourceColumn !== undefined && fk.columns[position] === numberOf(fk.relid, sourceColumn)
    if (scoped) continue
    const source = byOid.get(fk.relid)
    const target = byOid.get(fk.refRelid)
    if (source === undefined || target === undefined) continue
    const name = qualify(source.schema, source.name)
    fkProblems.set(name, [...(fkProblems.get(name) ?? []), `${fk.name} → ${qualify(target.schema, target.name)}`])
  }
  for (const ref of tenantTables) {
    const name = qualify(ref.schema, ref.table)
    if (byName.has(name) && !fkProblems.has(name)) pass('fk-not-tenant-scoped', name, 'every foreign key into a tenant table includes the tenant column')
  }
  for (const [name, keys] of fkProblems)
    add(
      'fk-not-tenant-scoped',
      'fail',
      name,
      `Foreign key ${keys.join(', ')} does not match on the tenant column: a row can point at another tenant's row, and the key check reveals whether that row exists.`,
      'Make the relation composite: @relation(fields: [tenantId, xId], references: [tenantId, id]) with @@unique([tenantId, id]) on the target.',
    )

  sharedTableChecks(catalog, sharedTables, setting, policiesOf, add)

  // Database-wide checks.
  const roleInfo = catalog.role
  if (roleInfo.temporary)
    add(
      'temporary-privilege',
      'fail',
      null,
      `Role ${role} can create temporary tables in ${catalog.database}: they outlive the transaction on a pooled connection and can carry one tenant's rows to the next.`,
      `REVOKE TEMPORARY ON DATABASE ${ident(catalog.database)} FROM PUBLIC, ${ident(role)}; (prisma-tenancy generate --app-role ${role} writes it)`,
    )
  else pass('temporary-privilege', null, `${role} cannot create temporary tables`)
  signedContextChecks(catalog, tenantOids, setting, add)
  const bypass = [roleInfo.superuser ? 'is SUPERUSER' : null, roleInfo.bypassRls ? 'has BYPASSRLS' : null, roleInfo.bypassVia.length > 0 ? `is a member of ${roleInfo.bypassVia.join(', ')}, which bypasses row-level security` : null].filter(
    (item): item is string => item !== null,
  )
  if (bypass.length === 0) pass('role-bypasses-rls', null, `${role} is neither superuser nor BYPASSRLS, directly or through membership`)
  else add('role-bypasses-rls', 'fail', null, `Role ${role} ${bypass.join(' and ')}: no policy applies to it.`, `ALTER ROLE ${role} NOSUPERUSER NOBYPASSRLS; and revoke its membership in roles that have them. Connect the app as that plain role.`)

  if (catalog.tenantSettingDefaults.length === 0) pass('default-tenant-setting', null, `no role or database default for ${setting}`)
  for (const entry of catalog.tenantSettingDefaults)
    add(
      'default-tenant-setting',
      'fail',
      null,
      `A ${entry.scope} default sets ${entry.value}${entry.role === null ? '' : ` for role ${entry.role}`}: a connection that never chose a tenant acts as that tenant.`,
      entry.role === null ? `ALTER DATABASE ${catalog.database} RESET ${setting};` : `ALTER ROLE ${entry.role}${entry.scope === 'role in database' ? ` IN DATABASE ${catalog.database}` : ''} RESET ${setting};`,
    )

  const reads = new Map<number, number[]>()
  for (const { view, relation } of catalog.viewReads) reads.set(view, [...(reads.get(view) ?? []), relation])
  const tenantReads = (oid: number, seen = new Set<number>()): string[] => {
    if (seen.has(oid)) return []
    seen.add(oid)
    return (reads.get(oid) ?? []).flatMap((target) => {
      const tenant = tenantOids.get(target)
      return [...(tenant === undefined ? [] : [tenant.name]), ...(['v', 'm'].includes(byOid.get(target)?.kind ?? '') ? tenantReads(target, seen) : [])]
    })
  }
  const isInvoker = (relation: Relation) => relation.options.some((option) => /^security_invoker=(true|on|yes|1)$/i.test(option))
  for (const view of catalog.relations.filter((relation) => relation.kind === 'v' || relation.kind === 'm')) {
    const tables = [...new Set(tenantReads(view.oid))]
    if (tables.length === 0 || !view.privileges.select || !view.schemaUsage) continue
    const name = qualify(view.schema, view.name)
    if (view.kind === 'v' && isInvoker(view)) pass('view-bypasses-rls', name, 'security_invoker view: policies apply to the caller')
    else
      add(
        'view-bypasses-rls',
        'fail',
        name,
        view.kind === 'm'
          ? `Materialized view reading ${tables.join(', ')} is readable by ${role}: it holds every tenant's rows and row-level security does not apply to it.`
          : `View reading ${tables.join(', ')} runs with its owner's (${view.owner}) rights, not ${role}'s: the owner's policies, or none, decide what it shows.`,
        view.kind === 'm' ? `REVOKE SELECT ON ${sqlName(view)} FROM ${ident(role)}; (or replace it with a security_invoker view)` : `ALTER VIEW ${sqlName(view)} SET (security_invoker = true);`,
      )
  }

  const tenantNames = [...new Set([...tenantOids.values()].map((entry) => entry.name))]
  const mentions = (source: string, qualified: string) => {
    const bare = qualified.slice(qualified.indexOf('.') + 1).toLowerCase()
    const text = source.toLowerCase()
    return new RegExp(`(^|[^\\w$])"?${bare.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"?($|[^\\w$])`).test(text)
  }
  for (const fn of catalog.functions) {
    const name = `${qualify(fn.schema, fn.name)}(${fn.args})`
    if (fn.definer && fn.executable && isSignedTenantFunction(fn, setting)) {
      // Its owner may bypass row-level security: the body, exactly generate's, reads the key table only.
      pass('definer-function', name, `the signed context's function, with the body generate --signed writes`)
    } else if (fn.definer && fn.executable) {
      const touched = tenantNames.filter((table) => fn.dependsOn.includes(table) || mentions(fn.source, table))
      const reasons = [
        touched.length > 0 ? `reads or writes ${touched.join(', ')}` : null,
        fn.ownerBypasses ? `its owner ${fn.owner} bypasses row-level security` : null,
        fn.pinnedSearchPath ? null : 'it has no pinned search_path',
      ].filter((item): item is string => item !== null)
      if (reasons.length === 0) pass('definer-function', name, 'SECURITY DEFINER with a pinned search_path, touching no tenant table')
      else add('definer-function', 'fail', name, `SECURITY DEFINER function executable by ${role}: ${reasons.join('; ')}.`, `Make it SECURITY INVOKER, or REVOKE EXECUTE ON FUNCTION ${name} FROM ${role}, PUBLIC; and pin SET search_path.`)
    }
    if (fn.leakproof) add('leakproof-function', 'fail', name, 'Marked LEAKPROOF: the planner may run it on rows before the policies filter them, and its errors or notices reveal them.', `ALTER FUNCTION ${name} NOT LEAKPROOF;`)
  }
  if (!catalog.functions.some((fn) => fn.leakproof)) pass('leakproof-function', null, 'no user function is LEAKPROOF')

  for (const sequence of catalog.relations.filter((relation) => relation.kind === 'S' && relation.privileges.select && relation.schemaUsage)) {
    const name = qualify(sequence.schema, sequence.name)
    add('sequence-readable', 'warn', name, `Role ${role} can read or advance sequence ${name}: its value counts rows of all tenants.`, 'Prefer uuid/cuid ids for tenant tables, or accept the leak of global counts.')
  }

  const known = new Set([...tenantTables, ...sharedTables].map((ref) => qualify(ref.schema, ref.table)))
  const inheritsKnown = (oid: number): boolean => catalog.inherits.some(({ child, parent }) => child === oid && (known.has(qualify(byOid.get(parent)?.schema ?? '', byOid.get(parent)?.name ?? '')) || inheritsKnown(parent)))
  const untracked = catalog.relations.filter((relation) => {
    if (!['r', 'p', 'f'].includes(relation.kind) || !relation.schemaUsage) return false
    const { select, insert, update, delete: del } = relation.privileges
    const name = qualify(relation.schema, relation.name)
    return (select || insert || update || del) && !known.has(name) && relation.name !== '_prisma_migrations' && !inheritsKnown(relation.oid)
  })
  if (untracked.length === 0) pass('untracked-table', null, 'every table the role can reach is in the schema')
  for (const relation of untracked) {
    const name = qualify(relation.schema, relation.name)
    add('untracked-table', 'fail', name, `Role ${role} can reach ${name}, which the Prisma schema does not declare: nothing says whether it is tenant data or shared.`, `Add it to the schema (db pull) so it is classified, or REVOKE ALL ON ${sqlName(relation)} FROM ${ident(role)};`)
  }
  return results
}

type Add = (check: CheckId, status: CheckStatus, table: string | null, message: string, fix?: string) => void

const writeCommands = ['INSERT', 'UPDATE', 'DELETE'] as const

/**
 * Shared tables are read by every tenant, so a write grant lets one tenant change what all see: a
 * warning (verify --strict fails it). The tenant registry is worse: a tenant could rename, add or
 * remove other tenants, so a write there must be confined by policies to the caller's own row
 * (or denied), else it fails. TRUNCATE ignores row-level security altogether.
 */
function sharedTableChecks(catalog: Catalog, sharedTables: TableRef[], setting: string, policiesOf: Map<number, Policy[]>, add: Add): void {
  const role = catalog.role.name
  const byName = new Map(catalog.relations.map((relation) => [qualify(relation.schema, relation.name), relation]))
  for (const ref of sharedTables) {
    const name = qualify(ref.schema, ref.table)
    const relation = byName.get(name)
    if (relation === undefined || !relation.schemaUsage) continue
    const { insert, update, delete: del, truncate } = relation.privileges
    const granted = writeCommands.filter((_, index) => [insert, update, del][index])
    const writes = [...granted, ...(truncate ? ['TRUNCATE'] : [])]
    const revoke = `REVOKE ${writes.join(', ')} ON ${sqlName(relation)} FROM ${ident(role)};`
    if (ref.registry === undefined) {
      if (writes.length === 0) add('shared-table-writable', 'pass', name, `${role} can only read the shared table`)
      else add('shared-table-writable', 'warn', name, `Role ${role} holds ${writes.join(', ')} on the shared table ${name}: any tenant can change what every tenant reads.`, `${revoke} (writes belong to an admin role; prisma-tenancy generate --app-role grants SELECT only)`)
      continue
    }
    const enforced = relation.rls && (relation.forced || !relation.roleOwns)
    const leaks = enforced ? analysePolicies(policiesOf.get(relation.oid) ?? [], ref.registry.key ?? '', setting).leaks : []
    const open = [...granted.filter((command) => !enforced || leaks.some((leak) => leak.command === command)), ...(truncate ? ['TRUNCATE'] : [])]
    if (open.length === 0) add('registry-writable', 'pass', name, writes.length === 0 ? `${role} can only read the tenant registry` : `policies confine ${role}'s ${writes.join(', ')} to its own registry row`)
    else
      add(
        'registry-writable',
        'fail',
        name,
        `Role ${role} can ${open.join(', ')} rows of the tenant registry ${name} with no policy confining it to its own row${enforced ? '' : ' (row-level security is off or not forced)'}: one tenant can rename, create or remove others.`,
        `${revoke} (tenants are created and removed by an admin role), or protect the registry with policies.`,
      )
  }
}

/**
 * Signed policies are only as sound as the function they call and the secrecy of its key: the
 * function must be what `generate --signed` writes (SECURITY DEFINER, STABLE, pinned search_path,
 * the very body), and the application role must not reach the key table at all.
 */
function isSignedTenantFunction(fn: FunctionInfo, setting: string): boolean {
  return qualify(fn.schema, fn.name) === SIGNED_TENANT_FUNCTION && fn.args === '' && fn.source === signedTenantFunctionBody(setting)
}

function signedContextChecks(catalog: Catalog, tenantOids: Map<number, { name: string }>, setting: string, add: Add): void {
  const call = `${SIGNED_TENANT_FUNCTION}()`
  const signed = catalog.policies.filter((policy) => tenantOids.has(policy.relid) && `${policy.using ?? ''} ${policy.check ?? ''}`.includes(call))
  if (signed.length === 0) return
  const fn = catalog.functions.find((candidate) => qualify(candidate.schema, candidate.name) === SIGNED_TENANT_FUNCTION && candidate.args === '')
  const key = catalog.relations.find((relation) => qualify(relation.schema, relation.name) === SIGNING_KEY_TABLE)
  const reached = key === undefined ? [] : Object.entries(key.privileges).filter(([, held]) => held).map(([privilege]) => privilege.toUpperCase())
  const problems = [
    fn === undefined ? `${call} is not a SECURITY DEFINER function` : null,
    fn !== undefined && !fn.pinnedSearchPath ? `${call} has no pinned search_path` : null,
    fn !== undefined && fn.volatility !== 's' ? `${call} is not STABLE` : null,
    fn !== undefined && !isSignedTenantFunction(fn, setting) ? `the body of ${call} is not the one generate --signed writes for ${setting}` : null,
    key === undefined ? `${SIGNING_KEY_TABLE} is missing` : null,
    key !== undefined && (key.roleOwns || reached.length > 0) ? `${catalog.role.name} ${key.roleOwns ? 'owns' : `holds ${reached.join(', ')} on`} ${SIGNING_KEY_TABLE}, so it can read or replace the key and sign any tenant` : null,
  ].filter((item): item is string => item !== null)
  if (problems.length === 0) add('signed-context', 'pass', null, `${signed.length} policies trust the tenant through ${call}, whose key ${catalog.role.name} cannot reach`)
  else add('signed-context', 'fail', null, `Signed policies depend on ${call}, but ${problems.join('; ')}.`, `Run \`prisma-tenancy generate --signed\` and apply it, and REVOKE ALL ON ${SIGNING_KEY_TABLE} FROM PUBLIC, ${ident(catalog.role.name)};`)
}

import type pg from 'pg'

/**
 * What the verifier knows about one database, read with one query per
 * catalog (never one per table), so 500 tables cost the same dozen round
 * trips as five. Privileges and role memberships are evaluated for the
 * application role by PostgreSQL itself (has_*_privilege, pg_has_role).
 */
export interface Catalog {
  database: string
  defaultSchema: string
  sessionUser: string
  role: RoleInfo
  relations: Relation[]
  columns: Column[]
  policies: Policy[]
  inherits: { child: number; parent: number }[]
  foreignKeys: ForeignKey[]
  indexes: Index[]
  schemas: SchemaInfo[]
  tenantSettingDefaults: SettingDefault[]
  viewReads: { view: number; relation: number }[]
  functions: FunctionInfo[]
  immutablePolicyFunctions: { relid: number; policy: string; function: string }[]
}

export interface RoleInfo {
  name: string
  superuser: boolean
  bypassRls: boolean
  /** Roles it is a member of that are superuser or BYPASSRLS. */
  bypassVia: string[]
  /** It may create temporary tables in this database (TEMPORARY, often through PUBLIC). */
  temporary: boolean
}

export interface Relation {
  oid: number
  schema: string
  name: string
  /** r table, p partitioned table, v view, m materialized view, f foreign table, S sequence */
  kind: string
  rls: boolean
  forced: boolean
  owner: string
  /** The application role owns it or is a member of its owner. */
  roleOwns: boolean
  options: string[]
  schemaUsage: boolean
  privileges: { select: boolean; insert: boolean; update: boolean; delete: boolean; truncate: boolean; references: boolean; trigger: boolean }
}

export interface Column {
  relid: number
  name: string
  num: number
  type: string
  /** The base type's name (domains resolved), e.g. text, uuid, int4. */
  baseType: string
  /** pg_type.typcategory of the base type. */
  category: string
  notNull: boolean
  hasDefault: boolean
  /** Identity or generated column: PostgreSQL fills it. */
  generated: boolean
  firstEnumLabel: string | null
}

export interface Policy {
  relid: number
  name: string
  /** r SELECT, a INSERT, w UPDATE, d DELETE, * ALL */
  command: string
  permissive: boolean
  using: string | null
  check: string | null
  /** The policy applies to the application role (PUBLIC or a role it has the privileges of). */
  applies: boolean
}

export interface ForeignKey {
  name: string
  relid: number
  refRelid: number
  columns: number[]
  refColumns: number[]
}

export interface Index {
  relid: number
  name: string
  unique: boolean
  primary: boolean
  /** Column numbers; 0 is an expression. */
  columns: number[]
  partial: boolean
}

export interface SchemaInfo {
  name: string
  usage: boolean
  create: boolean
}

export interface SettingDefault {
  scope: 'role' | 'database' | 'role in database'
  role: string | null
  value: string
}

export interface FunctionInfo {
  schema: string
  name: string
  args: string
  definer: boolean
  leakproof: boolean
  pinnedSearchPath: boolean
  owner: string
  ownerBypasses: boolean
  executable: boolean
  source: string
  /** Relations its body depends on (SQL-standard bodies record them). */
  dependsOn: string[]
  /** i IMMUTABLE, s STABLE, v VOLATILE */
  volatility: string
}

const userSchema = (alias: string) =>
  `${alias}.nspname NOT IN ('pg_catalog', 'information_schema') AND ${alias}.nspname NOT LIKE 'pg\\_toast%' AND ${alias}.nspname NOT LIKE 'pg\\_temp%'`
const notExtensionMember = (classid: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '${classid}'::regclass AND e.objid = ${oid} AND e.deptype = 'e')`

const queries = {
  role: `
    SELECT r.rolname AS name, r.rolsuper AS superuser, r.rolbypassrls AS "bypassRls",
      has_database_privilege(r.oid, current_database(), 'TEMPORARY') AS temporary,
      ARRAY(SELECT o.rolname::text FROM pg_roles o
            WHERE o.oid <> r.oid AND (o.rolsuper OR o.rolbypassrls) AND pg_has_role(r.oid, o.oid, 'MEMBER') ORDER BY 1) AS "bypassVia"
    FROM pg_roles r WHERE r.rolname = $1`,
  relations: `
    SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind,
      c.relrowsecurity AS rls, c.relforcerowsecurity AS forced, pg_get_userbyid(c.relowner) AS owner,
      pg_has_role($1, c.relowner, 'MEMBER') AS "roleOwns", coalesce(c.reloptions::text[], '{}') AS options,
      has_schema_privilege($1, n.oid, 'USAGE') AS "schemaUsage",
      CASE WHEN c.relkind = 'S' THEN has_sequence_privilege($1, c.oid, 'SELECT') OR has_sequence_privilege($1, c.oid, 'USAGE')
           ELSE has_table_privilege($1, c.oid, 'SELECT') END AS "select",
      c.relkind <> 'S' AND has_table_privilege($1, c.oid, 'INSERT') AS "insert",
      c.relkind <> 'S' AND has_table_privilege($1, c.oid, 'UPDATE') AS "update",
      c.relkind <> 'S' AND has_table_privilege($1, c.oid, 'DELETE') AS "delete",
      c.relkind <> 'S' AND has_table_privilege($1, c.oid, 'TRUNCATE') AS "truncate",
      c.relkind <> 'S' AND has_table_privilege($1, c.oid, 'REFERENCES') AS "references",
      c.relkind <> 'S' AND has_table_privilege($1, c.oid, 'TRIGGER') AS "trigger"
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND ${userSchema('n')} AND ${notExtensionMember('pg_class', 'c.oid')}`,
  columns: `
    SELECT a.attrelid AS relid, a.attname AS name, a.attnum AS num, format_type(a.atttypid, a.atttypmod) AS type,
      b.typname AS "baseType", b.typcategory AS category, a.attnotnull AS "notNull", a.atthasdef AS "hasDefault",
      (a.attidentity <> '' OR a.attgenerated <> '') AS generated,
      (SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = b.oid ORDER BY e.enumsortorder LIMIT 1) AS "firstEnumLabel"
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_type t ON t.oid = a.atttypid
    JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND ${userSchema('n')}
    ORDER BY a.attrelid, a.attnum`,
  policies: `
    SELECT p.polrelid AS relid, p.polname AS name, p.polcmd AS command, p.polpermissive AS permissive,
      pg_get_expr(p.polqual, p.polrelid) AS using, pg_get_expr(p.polwithcheck, p.polrelid) AS check,
      (0 = ANY (p.polroles) OR EXISTS (SELECT 1 FROM unnest(p.polroles) r WHERE r <> 0 AND pg_has_role($1, r, 'USAGE'))) AS applies
    FROM pg_policy p ORDER BY p.polrelid, p.polname`,
  inherits: `SELECT inhrelid AS child, inhparent AS parent FROM pg_inherits`,
  foreignKeys: `
    SELECT conname AS name, conrelid AS relid, confrelid AS "refRelid", conkey AS columns, confkey AS "refColumns"
    FROM pg_constraint WHERE contype = 'f' AND conparentid = 0 ORDER BY conrelid, conname`,
  indexes: `
    SELECT i.indrelid AS relid, ic.relname AS name, i.indisunique AS unique, i.indisprimary AS primary,
      i.indkey::int2[] AS columns, i.indpred IS NOT NULL AS partial
    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
    WHERE ${userSchema('n')}`,
  schemas: `
    SELECT n.nspname AS name, has_schema_privilege($1, n.oid, 'USAGE') AS usage, has_schema_privilege($1, n.oid, 'CREATE') AS create
    FROM pg_namespace n WHERE ${userSchema('n')}`,
  // Role settings apply when that role logs in; database settings to every login.
  tenantSettingDefaults: `
    SELECT CASE WHEN s.setrole = 0 THEN 'database' WHEN s.setdatabase = 0 THEN 'role' ELSE 'role in database' END AS scope,
      r.rolname AS role, cfg AS value
    FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) AS cfg
    WHERE lower(split_part(cfg, '=', 1)) = lower($2)
      AND (s.setdatabase = 0 OR s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()))
      AND (s.setrole = 0 OR r.rolname = $1 OR r.rolname = session_user)`,
  viewReads: `
    SELECT DISTINCT rw.ev_class AS view, d.refobjid AS relation
    FROM pg_rewrite rw JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_class'::regclass
    WHERE d.refobjid <> rw.ev_class`,
  functions: `
    SELECT n.nspname AS schema, p.proname AS name, pg_get_function_identity_arguments(p.oid) AS args,
      p.prosecdef AS definer, p.proleakproof AS leakproof,
      EXISTS (SELECT 1 FROM unnest(p.proconfig) cfg WHERE cfg LIKE 'search\\_path=%') AS "pinnedSearchPath",
      o.rolname AS owner, (o.rolsuper OR o.rolbypassrls) AS "ownerBypasses",
      has_function_privilege($1, p.oid, 'EXECUTE') AS executable, coalesce(p.prosrc, '') AS source,
      ARRAY(SELECT DISTINCT dn.nspname || '.' || dc.relname FROM pg_depend d
            JOIN pg_class dc ON dc.oid = d.refobjid JOIN pg_namespace dn ON dn.oid = dc.relnamespace
            WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.refclassid = 'pg_class'::regclass) AS "dependsOn",
      p.provolatile AS volatility
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_roles o ON o.oid = p.proowner
    WHERE (p.prosecdef OR p.proleakproof) AND ${userSchema('n')} AND ${notExtensionMember('pg_proc', 'p.oid')}
    ORDER BY 1, 2, 3`,
  // Built-in functions are pinned and never recorded in pg_depend: what shows up here is user-defined.
  immutablePolicyFunctions: `
    SELECT pol.polrelid AS relid, pol.polname AS policy, n.nspname || '.' || p.proname AS function
    FROM pg_depend d JOIN pg_policy pol ON d.classid = 'pg_policy'::regclass AND d.objid = pol.oid
    JOIN pg_proc p ON d.refclassid = 'pg_proc'::regclass AND d.refobjid = p.oid JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE p.provolatile = 'i' ORDER BY 1, 2, 3`,
} as const

export async function readCatalog(client: pg.ClientBase, role: string, setting: string): Promise<Catalog> {
  const one = async <T>(sql: string, params: unknown[] = [role]): Promise<T[]> => (await client.query(sql, params)).rows as T[]
  const session = (await client.query<{ database: string; schema: string | null; session: string }>('SELECT current_database() AS database, current_schema() AS schema, session_user AS session')).rows[0]!
  // Sequential on one connection: pg queues them anyway, and a pool would cost more connections than it saves.
  const roles = await one<RoleInfo>(queries.role)
  const relations = await one<Relation & Relation['privileges']>(queries.relations)
  return {
    database: session.database,
    defaultSchema: session.schema ?? 'public',
    sessionUser: session.session,
    role: roles[0] ?? { name: role, superuser: false, bypassRls: false, bypassVia: [], temporary: false },
    relations: relations.map(({ select, insert, update, delete: del, truncate, references, trigger, ...relation }) => ({
      ...relation,
      privileges: { select, insert, update, delete: del, truncate, references, trigger },
    })),
    columns: await one(queries.columns, []),
    policies: await one(queries.policies),
    inherits: await one(queries.inherits, []),
    foreignKeys: await one(queries.foreignKeys, []),
    indexes: await one(queries.indexes, []),
    schemas: await one(queries.schemas),
    tenantSettingDefaults: await one(queries.tenantSettingDefaults, [role, setting]),
    viewReads: await one(queries.viewReads, []),
    functions: await one(queries.functions),
    immutablePolicyFunctions: await one(queries.immutablePolicyFunctions, []),
  }
}

export async function roleExists(client: pg.ClientBase, role: string): Promise<boolean> {
  return (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1
}

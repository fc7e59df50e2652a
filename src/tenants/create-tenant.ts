import { z } from 'zod'
import { quoteIdent } from '../database/sql-identifiers.js'
import { TenancyError } from '../errors.js'
import { inTransaction, registryHas, tenantMatch, withLifecycleDatabase, type LifecycleDatabase, type TenantLifecycleOptions } from './tenant-database.js'
import { createTenantPartitions } from './tenant-partitions.js'
import { ensureTenantRole, installTenantRoles, lockTenantRoles, mappedRole, newPassword, roleExists, TENANT_ROLE_TABLE, tenantConnectionString, tenantRoleName } from './tenant-roles.js'

export interface CreateTenantOptions extends TenantLifecycleOptions {
  /** Values for the registry row's other fields, by Prisma field name (or column name). */
  data?: Record<string, unknown> | undefined
  /** Also create the tenant's own login role; needs appRole. */
  credentials?: boolean | undefined
  /** The application role: a tenant role gets exactly its table privileges. Required with credentials. */
  appRole?: string | undefined
}

export interface CreateTenantResult {
  tenant: string
  /** What this run did; empty when everything already existed. */
  actions: string[]
  /** The tenant role's connection string, when this run set its password. Returned once: store it in a secrets manager. */
  connectionString?: string
}

const dataSchema = z.record(z.string(), z.unknown())

function registryColumns(database: LifecycleDatabase, data: Record<string, unknown>): { column: string; type: string; value: unknown }[] {
  return Object.entries(data).map(([key, value]) => {
    const field = database.registryModel.fields.find((candidate) => candidate.kind !== 'object' && (candidate.name === key || candidate.dbName === key))
    const column = database.registry.columns.find((candidate) => candidate.name === (field?.dbName ?? field?.name ?? key))
    if (column === undefined || column.name === database.registry.column) {
      const fields = database.registryModel.fields.filter((candidate) => candidate.kind !== 'object' && (candidate.dbName ?? candidate.name) !== database.registry.column).map((candidate) => candidate.name)
      throw new TenancyError('CONFIG_INVALID', `--data names ${JSON.stringify(key)}, which is ${column === undefined ? 'no field' : 'the id field'} of the registry ${database.registry.model}. Pass the tenant id as the argument and only these fields in --data: ${fields.join(', ')}.`)
    }
    // Arrays and objects reach PostgreSQL as JSON text, which json/jsonb columns parse.
    return { column: column.name, type: column.type, value: value !== null && typeof value === 'object' && !Array.isArray(value) ? JSON.stringify(value) : value }
  })
}

/** Compares with jsonb for json columns, which have no equality operator. */
function sameValue(column: string, type: string, parameter: string): string {
  const cast = type === 'json' ? 'jsonb' : type
  return `${quoteIdent(column)}${type === 'json' ? '::jsonb' : ''} IS NOT DISTINCT FROM ${parameter}::${cast}`
}

/**
 * Registers a tenant: validates the id, inserts the registry row, creates its
 * partition of every table partitioned by tenant and, with `credentials`,
 * creates its own login role. Idempotent: a rerun creates what
 * is missing (a row without a role, a role without a row) and says what it did;
 * a rerun with different data is refused and changes nothing. Everything runs
 * in one transaction.
 */
export async function createTenant(id: string, options: CreateTenantOptions = {}): Promise<CreateTenantResult> {
  const parsedData = dataSchema.safeParse(options.data ?? {})
  if (!parsedData.success) throw new TenancyError('CONFIG_INVALID', "--data must be a JSON object, such as --data '{\"name\": \"Acme\"}'.", { cause: parsedData.error })
  if (options.credentials === true && (options.appRole === undefined || options.appRole === '')) {
    throw new TenancyError('CONFIG_INVALID', 'Creating credentials needs the application role, whose table privileges the tenant role gets: pass --app-role <role>.')
  }
  return withLifecycleDatabase(options, async (database) => {
    const tenant = database.validateId(id)
    const values = registryColumns(database, parsedData.data)
    return inTransaction(database.client, async () => {
      const { client, registry } = database
      const actions: string[] = []
      if (options.credentials === true) await lockTenantRoles(database)
      const existed = await registryHas(database, tenant)
      if (existed) {
        if (values.length > 0) {
          const same = values.map((value, index) => sameValue(value.column, value.type, `$${index + 2}`)).join(' AND ')
          const { rows } = await client.query<{ same: boolean }>(`SELECT ${same} AS same FROM ${registry.sql} WHERE ${tenantMatch(registry, '$1')}`, [tenant, ...values.map((value) => value.value)])
          if (rows[0]?.same !== true) {
            throw new TenancyError('TENANT_EXISTS', `Tenant ${JSON.stringify(tenant)} already exists with other data. Nothing was changed: rerun with the same --data (or none), or choose another id.`, { details: { tenant } })
          }
        }
      } else {
        const columns = [registry.column, ...values.map((value) => value.column)].map(quoteIdent).join(', ')
        const parameters = [`$1::${registry.columnType}`, ...values.map((value, index) => `$${index + 2}::${value.type}`)].join(', ')
        await client.query(`INSERT INTO ${registry.sql} (${columns}) VALUES (${parameters})`, [tenant, ...values.map((value) => value.value)]).catch((cause: { code?: string; column?: string; message?: string }) => {
          if (cause.code === '23502' || cause.code === '22P02' || cause.code === '23514') {
            throw new TenancyError('CONFIG_INVALID', `The registry row for ${JSON.stringify(tenant)} was refused: ${cause.message ?? ''}. Give every required field of ${registry.model} a valid value in --data.`, { cause })
          }
          throw cause
        })
        actions.push(`registered ${tenant} in ${registry.name}`)
      }
      actions.push(...(await createTenantPartitions(database, tenant)))
      if (options.credentials !== true) return { tenant, actions }

      const group = await installTenantRoles(database, options.appRole!)
      const mapped = await mappedRole(database, tenant)
      const role = mapped ?? tenantRoleName(database.database, tenant)
      const exists = await roleExists(database, role)
      let connectionString: string | undefined
      // A role whose registry row or mapping was missing comes from a run that never finished, so its password never reached anyone.
      if (!exists || !existed || mapped === null) {
        const password = newPassword()
        await ensureTenantRole(database, role, group, password, exists)
        connectionString = tenantConnectionString(database, role, password)
        actions.push(exists ? `set a new password on login role ${role}, left from an unfinished create` : `created login role ${role}`)
      }
      if (mapped === null) {
        await client.query(`INSERT INTO ${TENANT_ROLE_TABLE} (role, tenant_id) VALUES ($1, $2)`, [role, tenant])
        actions.push(`mapped ${role} to ${tenant}`)
      }
      return connectionString === undefined ? { tenant, actions } : { tenant, actions, connectionString }
    })
  })
}

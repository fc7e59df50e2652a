import { quoteIdent, quoteLiteral } from '../database/sql-identifiers.js'
import { TenancyError } from '../errors.js'
import { inTransaction, registryHas, unknownTenant, withLifecycleDatabase, type TenantLifecycleOptions } from './tenant-database.js'
import { endSessions, mappedRole, newPassword, roleExists, tenantConnectionString } from './tenant-roles.js'

export interface RotateTenantResult {
  tenant: string
  /** Returned once: store it in a secrets manager. */
  connectionString: string
  /** Sessions opened with the old password that were ended. */
  endedSessions: number
}

/**
 * New credentials for one tenant: a new password on its login role (the old one
 * stops working at once) and its open sessions ended. No other role is touched.
 */
export async function rotateTenant(id: string, options: TenantLifecycleOptions = {}): Promise<RotateTenantResult> {
  return withLifecycleDatabase(options, async (database) => {
    const tenant = database.validateId(id)
    if (!(await registryHas(database, tenant))) throw unknownTenant(tenant)
    const role = await mappedRole(database, tenant)
    if (role === null || !(await roleExists(database, role))) {
      throw new TenancyError('TENANT_UNKNOWN', `Tenant ${JSON.stringify(tenant)} has no login role to rotate. Create one with \`prisma-tenancy tenant create ${tenant} --credentials --app-role <role>\`.`, { details: { tenant } })
    }
    const password = newPassword()
    await inTransaction(database.client, () => database.client.query(`ALTER ROLE ${quoteIdent(role)} PASSWORD ${quoteLiteral(password)}`))
    const endedSessions = await endSessions(database, role)
    return { tenant, connectionString: tenantConnectionString(database, role, password), endedSessions }
  })
}

import { PrismaClient } from '../../prisma/generated/client.js'
import { tenancy, tenancyAdapter } from '../../src/index.js'
import { identity, type ContenderFactory, type TenantDb } from './contenders.js'

/**
 * (b) prisma-tenancy as an application uses it: the tenancy driver adapter
 * and the `tenancy()` extension on one client, `forTenant` per request.
 * `schema` points it at another schema's tables (the adapter's option).
 */
export function prismaTenancyOn(name: string, schema?: string): ContenderFactory {
  return {
    name,
    rls: true,
    isolates: true,
    async create({ appUrl, poolSize }) {
      const base = new PrismaClient({ adapter: tenancyAdapter({ connectionString: appUrl, max: poolSize }, schema === undefined ? {} : { schema }) })
      const prisma = base.$extends(tenancy())
      return {
        ...identity(this),
        // A client-level extension leaves the model types as they are.
        scope: (tenantId, work) => work(prisma.forTenant(tenantId) as unknown as TenantDb),
        transaction: (tenantId, work) => prisma.forTenant(tenantId).$transaction((tx) => work(tx as unknown as TenantDb)),
        close: () => base.$disconnect(),
      }
    },
  }
}

export const prismaTenancy = prismaTenancyOn('prisma-tenancy')

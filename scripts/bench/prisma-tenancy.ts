import { PrismaClient } from '../../prisma/generated/client.js'
import { tenancy, tenancyAdapter, type TenancyAdapterOptions } from '../../src/index.js'
import { identity, type ContenderFactory, type TenantDb } from './contenders.js'

/**
 * (b) prisma-tenancy as an application uses it: the tenancy driver adapter
 * and the `tenancy()` extension on one client, `forTenant` per request.
 * The adapter's options: `schema` points it at another schema's tables,
 * `signingKey` signs the tenant for policies written by `generate --signed`.
 */
export function prismaTenancyOn(name: string, options: TenancyAdapterOptions = {}): ContenderFactory {
  return {
    name,
    rls: true,
    isolates: true,
    async create({ appUrl, poolSize }) {
      const base = new PrismaClient({ adapter: tenancyAdapter({ connectionString: appUrl, max: poolSize }, options) })
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

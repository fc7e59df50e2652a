import type { PrismaPg } from '@prisma/adapter-pg'
import { PrismaClient } from '../../prisma/generated/client.js'
import type { ContenderFactory, TenantDb } from './contenders.js'

type TenantClient = TenantDb & { $transaction<T>(work: (tx: TenantDb) => Promise<T>): Promise<T> }

/** The parts of the public API this contender uses, as the README documents them. */
interface TenancyApi {
  tenancy(): Parameters<PrismaClient['$extends']>[0]
  tenancyAdapter(connection: { connectionString: string; max: number }): PrismaPg
}

/**
 * (b) prisma-tenancy as an application uses it: the tenancy driver adapter
 * and the `tenancy()` extension on one client, `forTenant` per request.
 * Looked up in the public entry at run time, so the benchmark reports it as
 * not measured, rather than failing to start, while it is not exported.
 */
export async function prismaTenancyFactory(): Promise<ContenderFactory | string> {
  const api: Record<string, unknown> = await import('../../src/index.js')
  if (typeof api.tenancy !== 'function' || typeof api.tenancyAdapter !== 'function') return 'tenancy() and tenancyAdapter() are not exported from src/index.ts yet'
  const { tenancy, tenancyAdapter } = api as unknown as TenancyApi
  return {
    name: 'prisma-tenancy',
    rls: true,
    isolates: true,
    async create({ appUrl, poolSize }) {
      const base = new PrismaClient({ adapter: tenancyAdapter({ connectionString: appUrl, max: poolSize }) })
      const prisma = base.$extends(tenancy()) as unknown as { forTenant(tenantId: string): TenantClient }
      return {
        name: 'prisma-tenancy',
        rls: true,
        isolates: true,
        scope: (tenantId, work) => work(prisma.forTenant(tenantId)),
        transaction: (tenantId, work) => prisma.forTenant(tenantId).$transaction((tx) => work(tx)),
        close: () => base.$disconnect(),
      }
    },
  }
}

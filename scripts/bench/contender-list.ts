import { peerContenders, type ContenderFactory } from './contenders.js'
import { prismaTenancy, prismaTenancyOn } from './prisma-tenancy.js'
import type { Unavailable } from './results.js'

/**
 * Prisma RLS packages from the npm registry that were tried and cannot be
 * measured with the Prisma version this project uses, with the reason.
 */
export const excludedPackages: readonly Unavailable[] = [
  {
    contender: 'prisma-extension-rls',
    reason:
      'does not install next to Prisma 7.10: its peer range is @prisma/client ^4.7 || ^5 (npm ERESOLVE), and it loads the Prisma namespace from @prisma/client, which the prisma-client generator no longer fills; its approach is the batch-transaction set_config pattern measured as prisma-example-batch-set-config',
  },
  {
    contender: 'prisma-rls',
    reason: 'not PostgreSQL row-level security: it adds WHERE clauses from permission rules in the application, the same class as the prisma-tenant-extension reference',
  },
  {
    contender: '@shoito/prismarls',
    reason: 'a CLI that appends policy SQL to migrations, with no runtime client to measure',
  },
]

/** The baseline first, then prisma-tenancy, then the peers. */
export async function contenderFactories(): Promise<{ available: ContenderFactory[]; unavailable: Unavailable[] }> {
  const [baseline, ...peers] = peerContenders
  return { available: [baseline!, prismaTenancy, prismaTenancyOn('prisma-tenancy (preparedTenantStatement)', { preparedTenantStatement: true }), ...peers], unavailable: [...excludedPackages] }
}

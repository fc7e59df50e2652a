import { PrismaPg } from '@prisma/adapter-pg'
import { prismaDatabase } from '@usebetterdev/tenant-prisma'
import { betterTenant } from '@usebetterdev/tenant-core'
import { createTenantContext, createTenantExtension } from 'prisma-tenant-extension'
import { Prisma, PrismaClient } from '../../prisma/generated/client.js'
import type { Unavailable } from './results.js'

/** What a request gets to work with: the generated client's model delegates, scoped by the contender. */
export type TenantDb = Pick<PrismaClient, 'task' | 'project'>

export interface Contender {
  /** As reported: `plain-prisma`, `prisma-tenancy`, or the package or pattern's name. */
  name: string
  /** False for contenders that set no database context: their isolation, if any, is a WHERE clause, not row-level security. */
  rls: boolean
  /** False for the baseline only: it reads whatever the query names. */
  isolates: boolean
  /** One request doing one operation for `tenantId`. */
  scope<T>(tenantId: string, work: (db: TenantDb) => Promise<T>): Promise<T>
  /** One request doing an interactive transaction for `tenantId`. */
  transaction<T>(tenantId: string, work: (tx: TenantDb) => Promise<T>): Promise<T>
  close(): Promise<void>
}

export interface ContenderUrls {
  /** The plain application role: policies apply. */
  appUrl: string
  /** A BYPASSRLS role: no policy applies. */
  unrestrictedUrl: string
  poolSize: number
}

export interface ContenderFactory {
  name: string
  rls: boolean
  isolates: boolean
  create(urls: ContenderUrls): Promise<Contender>
}

/** What a started contender reports about itself: its factory's description. */
export const identity = ({ name, rls, isolates }: ContenderFactory) => ({ name, rls, isolates })

export function prismaClient(url: string, poolSize: number): PrismaClient {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: poolSize }) })
}

/** (a) The baseline: the plain client, no context, as a role no policy restricts. */
export const plainPrisma: ContenderFactory = {
  name: 'plain-prisma',
  rls: false,
  isolates: false,
  async create({ unrestrictedUrl, poolSize }) {
    const prisma = prismaClient(unrestrictedUrl, poolSize)
    return {
      ...identity(this),
      scope: (_tenantId, work) => work(prisma),
      transaction: (_tenantId, work) => prisma.$transaction((tx) => work(tx)),
      close: () => prisma.$disconnect(),
    }
  },
}

/**
 * (c) The pattern from Prisma's client-extension example "row-level-security":
 * every model operation becomes a batch transaction `[set_config, query]`,
 * with the extension built per request. The pattern has no answer for
 * interactive transactions (its batch would run outside the user's
 * transaction), so there the request sets the tenant itself as the
 * transaction's first statement, the only correct way to combine the two.
 */
const batchSetConfig: ContenderFactory = {
  name: 'prisma-example-batch-set-config',
  rls: true,
  isolates: true,
  async create({ appUrl, poolSize }) {
    const prisma = prismaClient(appUrl, poolSize)
    const forTenant = (tenantId: string) =>
      Prisma.defineExtension((client) =>
        client.$extends({
          query: {
            $allModels: {
              async $allOperations({ args, query }) {
                const [, result] = await client.$transaction([client.$executeRaw`SELECT set_config('app.current_tenant', ${tenantId}, TRUE)`, query(args)])
                return result
              },
            },
          },
        }),
      )
    return {
      ...identity(this),
      // A query-only extension leaves the model types as they are.
      scope: (tenantId, work) => work(prisma.$extends(forTenant(tenantId)) as unknown as TenantDb),
      transaction: (tenantId, work) =>
        prisma.$transaction(async (tx) => {
          await tx.$executeRaw`SELECT set_config('app.current_tenant', ${tenantId}, TRUE)`
          return work(tx)
        }),
      close: () => prisma.$disconnect(),
    }
  },
}

/** (d) Better Tenant's Prisma adapter: one interactive transaction per scope, `set_config` first. */
const betterTenantPrisma: ContenderFactory = {
  name: '@usebetterdev/tenant-prisma',
  rls: true,
  isolates: true,
  async create({ appUrl, poolSize }) {
    process.env.BETTER_TENANT_TELEMETRY = '0'
    const prisma = prismaClient(appUrl, poolSize)
    const tenant = betterTenant({
      database: prismaDatabase(prisma),
      tenantResolver: { header: 'x-tenant-id' },
      loadTenant: false,
      telemetry: { enabled: false },
    })
    const run = <T>(tenantId: string, work: (db: TenantDb) => Promise<T>) => tenant.runAs(tenantId, (tx) => work(tx as unknown as TenantDb))
    return { ...identity(this), scope: run, transaction: run, close: () => prisma.$disconnect() }
  },
}

/** (e) Reference only, NOT row-level security: an extension that adds `tenantId` to every WHERE. */
const appLevelFilter: ContenderFactory = {
  name: 'prisma-tenant-extension',
  rls: false,
  isolates: true,
  async create({ unrestrictedUrl, poolSize }) {
    const prisma = prismaClient(unrestrictedUrl, poolSize)
    const context = createTenantContext<{ tenantId: string }>()
    const client = prisma.$extends(createTenantExtension({ context, tenantField: 'tenantId' })) as unknown as TenantDb & {
      $transaction<T>(work: (tx: TenantDb) => Promise<T>): Promise<T>
    }
    return {
      ...identity(this),
      scope: (tenantId, work) => context.run({ tenantId }, () => work(client)),
      transaction: (tenantId, work) => context.run({ tenantId }, () => client.$transaction((tx) => work(tx))),
      close: () => prisma.$disconnect(),
    }
  },
}

export const peerContenders: readonly ContenderFactory[] = [plainPrisma, batchSetConfig, betterTenantPrisma, appLevelFilter]

/**
 * Starts each contender and keeps those that pass `check`; the others are
 * reported with the reason, never silently dropped.
 */
export async function startContenders(
  factories: readonly ContenderFactory[],
  urls: ContenderUrls,
  check: (contender: Contender) => Promise<string | null>,
): Promise<{ started: Contender[]; unavailable: Unavailable[] }> {
  const started: Contender[] = []
  const unavailable: Unavailable[] = []
  for (const factory of factories) {
    let contender: Contender
    try {
      contender = await factory.create(urls)
    } catch (error) {
      unavailable.push({ contender: factory.name, reason: `could not start: ${firstLine(error)}` })
      continue
    }
    const problem = await check(contender).catch((error: unknown) => `failed: ${firstLine(error)}`)
    if (problem === null) started.push(contender)
    else {
      unavailable.push({ contender: factory.name, reason: problem })
      await contender.close().catch(() => undefined)
    }
  }
  return { started, unavailable }
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error)
  return text.trim().split('\n')[0] ?? text
}

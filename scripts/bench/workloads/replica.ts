import { PrismaPg } from '@prisma/adapter-pg'
import { readReplicas } from '@prisma/extension-read-replicas'
import pg from 'pg'
import { PrismaClient } from '../../../prisma/generated/client.js'
import { tenancy, tenancyAdapter } from '../../../src/index.js'
import { recordWire, replicaAvailable, startStreamingReplica, type StreamingReplica, type WireRecorder } from '../../../src/testing/index.js'
import { identity, plainPrisma, prismaClient, startContenders, type Contender, type ContenderFactory, type TenantDb } from '../contenders.js'
import { createBenchDatabase, type BenchRoles } from '../database.js'
import { seedOperationsData, type TenantFixture } from '../fixtures.js'
import { measureInterleaved } from '../measure.js'
import { prismaTenancy } from '../prisma-tenancy.js'
import { toResults, type WorkloadOutcome } from '../results.js'
import { checkBehaviour, operations, type OperationsSize } from './operations.js'

/** Each composed contender's primary pool: a read measured through it must not reach the primary. */
const primaryWires = new WeakMap<Contender, WireRecorder>()

/** A contender of `factory` connected to the replica instead of the primary. */
function onReplica(factory: ContenderFactory, replica: StreamingReplica): ContenderFactory {
  const name = `${factory.name} on the replica`
  return {
    ...factory,
    name,
    create: async (urls) => ({ ...(await factory.create({ ...urls, appUrl: replica.url(urls.appUrl), unrestrictedUrl: replica.url(urls.unrestrictedUrl) })), name }),
  }
}

/** prisma-tenancy as the README composes it: a tenancy client on the primary, readReplicas over a tenancy client on the replica. */
function tenancyThroughReadReplicas(replica: StreamingReplica): ContenderFactory {
  return {
    name: 'prisma-tenancy + readReplicas',
    rls: true,
    isolates: true,
    async create({ appUrl, poolSize }) {
      const primaryAdapter = tenancyAdapter({ connectionString: appUrl, max: poolSize })
      const wire = recordWire(primaryAdapter.pool)
      const replicaClient = new PrismaClient({ adapter: tenancyAdapter({ connectionString: replica.url(appUrl), max: poolSize }) }).$extends(tenancy())
      const prisma = new PrismaClient({ adapter: primaryAdapter }).$extends(tenancy()).$extends(readReplicas({ replicas: [replicaClient] }))
      const contender: Contender = {
        ...identity(this),
        scope: (tenantId, work) => work(prisma.forTenant(tenantId) as unknown as TenantDb),
        transaction: (tenantId, work) => prisma.forTenant(tenantId).$transaction((tx) => work(tx as unknown as TenantDb)),
        // readReplicas' $disconnect disconnects the replica client too.
        close: () => prisma.$disconnect(),
      }
      primaryWires.set(contender, wire)
      return contender
    },
  }
}

/** The same extension over plain Prisma, as a role no policy restricts: what readReplicas itself costs. */
function plainThroughReadReplicas(replica: StreamingReplica): ContenderFactory {
  return {
    name: 'plain-prisma + readReplicas',
    rls: false,
    isolates: false,
    async create({ unrestrictedUrl, poolSize }) {
      const pool = new pg.Pool({ connectionString: unrestrictedUrl, max: poolSize })
      const wire = recordWire(pool)
      const replicaClient = prismaClient(replica.url(unrestrictedUrl), poolSize)
      const prisma = new PrismaClient({ adapter: new PrismaPg(pool) }).$extends(readReplicas({ replicas: [replicaClient] }))
      const contender: Contender = {
        ...identity(this),
        scope: (_tenantId, work) => work(prisma as unknown as TenantDb),
        transaction: (_tenantId, work) => prisma.$transaction((tx) => work(tx as unknown as TenantDb)),
        close: async () => {
          await prisma.$disconnect()
          await pool.end()
        },
      }
      primaryWires.set(contender, wire)
      return contender
    },
  }
}

/** The behaviour every contender must show, and for the composed ones, reads that reach the replica only. */
async function checkOnReplica(contender: Contender, tenants: readonly TenantFixture[]): Promise<string | null> {
  const problem = await checkBehaviour(contender, tenants)
  const wire = primaryWires.get(contender)
  if (problem !== null || wire === undefined) return problem
  wire.clear()
  const read = operations(contender, tenants)
  await read.get('findUnique')!(0, 0)
  await read.get('findMany-50')!(0, 0)
  return wire.dataStatements().length === 0 ? null : `its reads reached the primary: ${wire.dataStatements().join('; ')}`
}

const measured = ['findUnique', 'findMany-50'] as const

/**
 * Reads through a streaming replica of the bench server, at 1 client:
 * prisma-tenancy on the replica and composed with @prisma/extension-read-replicas,
 * next to plain Prisma on the same replica (the baseline) and plain Prisma
 * with the same extension. Where no replica can be started (the embedded
 * server ships no pg_basebackup; a server that refuses replication), the
 * reason is reported instead.
 */
export async function runReplicaWorkload(
  serverAdminUrl: string,
  roles: BenchRoles,
  size: OperationsSize,
  log: (line: string) => void,
  migrations?: string,
): Promise<WorkloadOutcome> {
  const available = await replicaAvailable(serverAdminUrl)
  if (!available.available) return { results: [], unavailable: [{ contender: 'reads through a streaming replica', reason: available.reason }] }
  const database = await createBenchDatabase(serverAdminUrl, roles, { migrations })
  let replica: StreamingReplica | undefined
  let contenders: Contender[] = []
  try {
    const tenants = await seedOperationsData(database.adminUrl, { tenants: size.tenants, projects: size.projectsPerTenant, tasksPerProject: size.tasksPerProject })
    replica = await startStreamingReplica(serverAdminUrl)
    await replica.waitForReplay()
    const factories = [onReplica(plainPrisma, replica), onReplica(prismaTenancy, replica), plainThroughReadReplicas(replica), tenancyThroughReadReplicas(replica)]
    const { started, unavailable } = await startContenders(factories, { appUrl: database.appUrl, unrestrictedUrl: database.unrestrictedUrl, poolSize: size.poolSize }, (contender) => checkOnReplica(contender, tenants))
    contenders = started
    for (const { contender: name, reason } of unavailable) log(`  ${name}: not measured, ${reason}`)
    const rls = new Map(factories.map((factory) => [factory.name, factory.rls]))
    const byContender = new Map(contenders.map((contender) => [contender.name, operations(contender, tenants)]))
    const results = []
    for (const workload of measured) {
      log(`  ${workload} through the replica at 1 client`)
      const perContender = new Map([...byContender].map(([name, ops]) => [name, ops.get(workload)!]))
      const summaries = await measureInterleaved(perContender, { clients: 1, rounds: size.rounds, warmupOps: size.warmupOps, opsPerClient: size.opsSingle })
      results.push(...toResults(`${workload}-replica`, 1, summaries, { name: factories[0]!.name }, (name) => rls.get(name) ?? false))
    }
    return { results, unavailable }
  } finally {
    await Promise.allSettled(contenders.map((contender) => contender.close()))
    await replica?.stop()
    await database.drop()
  }
}

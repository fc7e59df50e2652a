import { startContenders, type Contender, type ContenderFactory, type TenantDb } from '../contenders.js'
import { createBenchDatabase, createSignedBenchDatabase, type BenchRoles } from '../database.js'
import { projectOf, seedOperationsData, taskOf, tenantOf, type TenantFixture } from '../fixtures.js'
import { measureInterleaved, type Operation } from '../measure.js'
import { prismaTenancyOn } from '../prisma-tenancy.js'
import { toResults, type WorkloadOutcome } from '../results.js'
import { modeContenders, openThroughputWireFloor, openWireFloor, throughputWireBaseline, wireBaseline, wireVariantUnderPolicy, wireWorkload, wireWorkloadOf } from '../wire-floor.js'

export interface OperationsSize {
  tenants: number
  projectsPerTenant: number
  tasksPerProject: number
  /** Measured rounds at 1 client: many short ones, so drift in the machine's speed spreads over every contender. */
  rounds: number
  /** Measured rounds at `concurrency` clients: fewer, longer ones, so the clients reach a steady state. */
  concurrentRounds: number
  /** Measured operations per client and round, at 1 client and at `concurrency` clients. */
  opsSingle: number
  opsConcurrent: number
  warmupOps: number
  concurrency: number
  poolSize: number
}

/**
 * The filter of a project's tasks as each contender's users write it: the baseline has no tenant
 * context, so it filters by tenant itself, as an application without RLS must; the others rely on
 * theirs. Repeating the tenant under a policy is not free: PostgreSQL derives `tenant = setting` from
 * the two equalities and gates the scan with it in a Result node, which copies every row the scan
 * returns (the 1,260 rows a sort reads for 50, once `create` has grown the project), ~0.2 ms more per
 * query than the same rows without it (README, Caveats).
 */
function projectTasks(contender: Contender, t: TenantFixture, projectId: string) {
  return contender.isolates ? { projectId } : { tenantId: t.id, projectId }
}

export function operations(contender: Contender, tenants: readonly TenantFixture[]): Map<string, Operation> {
  const tenant = (i: number) => tenantOf(tenants, i)
  const threeQueries = (tx: TenantDb, t: TenantFixture, i: number) =>
    tx.project
      .findUnique({ where: { id: projectOf(t, i) } })
      .then(() => tx.task.findMany({ where: projectTasks(contender, t, projectOf(t, i)), take: 10 }))
      .then(() => tx.task.update({ where: { id: taskOf(t, i) }, data: { title: `updated ${i}` } }))
  return new Map<string, Operation>([
    ['findUnique', (i) => { const t = tenant(i); return contender.scope(t.id, (db) => db.task.findUnique({ where: { id: taskOf(t, i) } })) }],
    ['findMany-50', (i) => { const t = tenant(i); return contender.scope(t.id, (db) => db.task.findMany({ where: projectTasks(contender, t, projectOf(t, i)), take: 50 })) }],
    ['create', (i) => { const t = tenant(i); return contender.scope(t.id, (db) => db.task.create({ data: { tenantId: t.id, projectId: projectOf(t, i), title: `created ${i}` } })) }],
    ['update', (i) => { const t = tenant(i); return contender.scope(t.id, (db) => db.task.update({ where: { id: taskOf(t, i) }, data: { title: `updated ${i}` } })) }],
    ['transaction-3-queries', (i) => { const t = tenant(i); return contender.transaction(t.id, (tx) => threeQueries(tx, t, i)) }],
  ])
}

/**
 * findUnique with every concurrent client on a tenant of its own, as requests
 * of different tenants arrive together. As in projectTasks, the baseline
 * filters by tenant itself and the others rely on their context.
 */
function findUniqueTenantPerClient(contender: Contender, tenants: readonly TenantFixture[]): Operation {
  return (i, client) => {
    const t = tenants[client % tenants.length]!
    const id = taskOf(t, i)
    return contender.scope(t.id, (db) => db.task.findUnique({ where: contender.isolates ? { id } : { id, tenantId: t.id } }))
  }
}

/**
 * A contender is measured only once it has shown it returns the right rows
 * and none of another tenant's: a contender that reads nothing is fast for
 * the wrong reason.
 */
export async function checkBehaviour(contender: Contender, tenants: readonly TenantFixture[]): Promise<string | null> {
  const [a, b] = tenants
  if (a === undefined || b === undefined) return 'needs two tenants'
  const own = (await contender.scope(a.id, (db) => db.task.findUnique({ where: { id: a.tasks[0]! } }))) as { id?: string } | null
  if (own?.id !== a.tasks[0]) return "findUnique did not return the tenant's own row"
  const list = await contender.scope(a.id, (db) => db.task.findMany({ where: projectTasks(contender, a, a.projects[0]!), take: 50 }))
  if (list.length !== 50) return `findMany returned ${list.length} rows instead of 50`
  if (contender.isolates) {
    const foreignList = await contender.scope(b.id, (db) => db.task.findMany({ where: projectTasks(contender, b, a.projects[0]!), take: 50 }))
    if (foreignList.length !== 0) return `findMany returned ${foreignList.length} of another tenant's rows`
  }
  const foreign = await contender.scope(b.id, (db) => db.task.findUnique({ where: { id: a.tasks[0]! } }))
  if (contender.isolates && foreign !== null) return "findUnique returned another tenant's row"
  const inTransaction = (await contender.transaction(a.id, (tx) => tx.task.findUnique({ where: { id: a.tasks[0]! } }))) as { id?: string } | null
  if (inTransaction?.id !== a.tasks[0]) return "an interactive transaction did not see the tenant's own row"
  return null
}

const signedContender = 'prisma-tenancy (generate --signed, signingKey)'

/** Workload 1: cost per operation, each contender on the same rows, one request = one scope. */
export async function runOperationsWorkload(
  serverAdminUrl: string,
  roles: BenchRoles,
  factories: readonly ContenderFactory[],
  size: OperationsSize,
  log: (line: string) => void,
  migrations?: string,
): Promise<WorkloadOutcome> {
  const database = await createBenchDatabase(serverAdminUrl, roles, { migrations })
  let signed: Awaited<ReturnType<typeof createSignedBenchDatabase>> | undefined
  let contenders: Contender[] = []
  try {
    const seeded = await seedOperationsData(database.adminUrl, {
      tenants: Math.max(size.tenants, size.concurrency),
      projects: size.projectsPerTenant,
      tasksPerProject: size.tasksPerProject,
    })
    // The per-client-tenant row needs a tenant per client; the other rows keep their own tenant count,
    // so which of their concurrent calls share a tenant (and may be merged) stays as in earlier runs.
    const tenants = seeded.slice(0, size.tenants)
    const tenantPerClient = `findUnique-${size.concurrency}-tenants`
    // Cloned before anyone connects to the seeded database (a template must have no sessions).
    signed = await createSignedBenchDatabase(serverAdminUrl, roles, database, migrations)
    const { started, unavailable } = await startContenders(
      factories,
      { appUrl: database.appUrl, unrestrictedUrl: database.unrestrictedUrl, poolSize: size.poolSize },
      (contender) => checkBehaviour(contender, tenants),
    )
    contenders = started
    for (const { contender: name, reason } of unavailable) log(`  ${name}: not measured, ${reason}`)
    const rls = new Map(factories.map((f) => [f.name, f.rls]))
    const byContender = new Map(contenders.map((c) => [c.name, operations(c, tenants)]))
    const results = []
    const workloads = [...(byContender.values().next().value?.keys() ?? [])]
    for (const clients of [1, size.concurrency]) {
      for (const workload of clients === 1 ? workloads : workloads.flatMap((w) => (w === 'findUnique' ? [w, tenantPerClient] : [w]))) {
        log(`  ${workload} at ${clients} client${clients === 1 ? '' : 's'}`)
        const perContender = new Map(
          contenders.map((c) => [c.name, workload === tenantPerClient ? findUniqueTenantPerClient(c, seeded) : byContender.get(c.name)!.get(workload)!]),
        )
        const summaries = await measureInterleaved(perContender, {
          clients,
          rounds: clients === 1 ? size.rounds : size.concurrentRounds,
          warmupOps: size.warmupOps,
          opsPerClient: clients === 1 ? size.opsSingle : size.opsConcurrent,
        })
        results.push(...toResults(workload, clients, summaries, { name: 'plain-prisma' }, (name) => rls.get(name) ?? false))
      }
    }
    log(`  findMany-50 and update on the wire, without Prisma Client, next to plain Prisma and prisma-tenancy, at ${size.concurrency} clients`)
    const throughputWire = await openThroughputWireFloor(database, tenants, size.poolSize)
    try {
      for (const [workload, variants] of throughputWire.operations) {
        // Interleaved with the Prisma rows of the same workload, so the floor and the clients come from the same moments.
        const prismaRows = [...byContender].filter(([name]) => name === 'plain-prisma' || name.startsWith('prisma-tenancy')).map(([name, ops]) => [name, ops.get(workload)!] as const)
        const summaries = await measureInterleaved(new Map([...variants, ...prismaRows]), {
          clients: size.concurrency,
          rounds: size.concurrentRounds,
          warmupOps: size.warmupOps,
          opsPerClient: size.opsConcurrent,
        })
        results.push(...toResults(wireWorkloadOf(workload), size.concurrency, summaries, { name: throughputWireBaseline }, (name) => rls.get(name) ?? name !== throughputWireBaseline))
      }
    } finally {
      await throughputWire.close()
    }
    log('  findUnique on the wire, without Prisma Client, next to plain Prisma and prisma-tenancy, at 1 client')
    const wire = await openWireFloor(database, signed, tenants)
    let signedTenancy: Contender | undefined
    try {
      // The same client on the same rows under signed policies: what the signed mode costs per query.
      signedTenancy = await prismaTenancyOn(signedContender, { signingKey: signed.signingKey }).create({ appUrl: signed.appUrl, unrestrictedUrl: signed.unrestrictedUrl, poolSize: size.poolSize })
      const signedProblem = await checkBehaviour(signedTenancy, tenants)
      if (signedProblem !== null) throw new Error(`${signedContender}: ${signedProblem}`)
      // Interleaved with the wire variants, so the Prisma rows and the floor come from the same moments.
      const prismaRows = ['plain-prisma', ...modeContenders].flatMap((name) => {
        const operation = byContender.get(name)?.get('findUnique')
        return operation === undefined ? [] : [[name, operation] as const]
      })
      const summaries = await measureInterleaved(new Map([...wire.operations, ...prismaRows, [signedContender, operations(signedTenancy, tenants).get('findUnique')!]]), {
        clients: 1,
        rounds: size.rounds,
        warmupOps: size.warmupOps,
        opsPerClient: size.opsSingle,
      })
      results.push(...toResults(wireWorkload, 1, summaries, { name: wireBaseline }, (name) => rls.get(name) ?? (name === signedContender || wireVariantUnderPolicy(name))))
    } finally {
      await signedTenancy?.close()
      await wire.close()
    }
    return { results, unavailable }
  } finally {
    await Promise.allSettled(contenders.map((c) => c.close()))
    await signed?.drop()
    await database.drop()
  }
}

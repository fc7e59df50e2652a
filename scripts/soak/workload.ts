import { PrismaClient } from '../../prisma/generated/client.js'
import { runWithTenant, tenancy } from '../../src/index.js'
import type { TenancyPg } from '../../src/client/tenancy-adapter.js'

/** The example app's tenant client, as the soak drives it. */
export const soakClient = (adapter: TenancyPg) => new PrismaClient({ adapter }).$extends(tenancy())
export type SoakClient = ReturnType<typeof soakClient>

/** Rows an operation writes, by model; each row carries the operation's tag. */
export interface RowCounts {
  project: number
  task: number
  comment: number
  member: number
}
export const models = ['project', 'task', 'comment', 'member'] as const
export const noRows = (): RowCounts => ({ project: 0, task: 0, comment: 0, member: 0 })

/** Thrown inside a transaction on purpose, to prove it rolls back. */
export class IntentionalRollback extends Error {
  override readonly name = 'IntentionalRollback'
}

export const operationKinds = [
  'read',
  'findUnique-batch',
  'create',
  'nested-create',
  'update',
  'batch-transaction',
  'interactive-transaction',
  'interactive-rollback',
  'batch-rollback',
] as const
export type OperationKind = (typeof operationKinds)[number]

// How often each kind runs, out of the sum.
const weights: Record<OperationKind, number> = {
  read: 24,
  'findUnique-batch': 14,
  create: 10,
  'nested-create': 10,
  update: 8,
  'batch-transaction': 10,
  'interactive-transaction': 12,
  'interactive-rollback': 6,
  'batch-rollback': 6,
}
const totalWeight = Object.values(weights).reduce((sum, weight) => sum + weight, 0)

/** A deterministic generator (mulberry32), so a soak with the same seed runs the same operations. */
export function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function pickKind(next: () => number): OperationKind {
  let roll = next() * totalWeight
  for (const kind of operationKinds) {
    roll -= weights[kind]
    if (roll < 0) return kind
  }
  return 'read'
}

export interface OperationContext {
  client: SoakClient
  tenant: string
  /** Unique to this operation; every row it writes carries it. */
  tag: string
  /** One of the tenant's committed projects. */
  ownProject: string
  /** Further committed projects of the tenant, for a findUnique batch. */
  ownProjects: string[]
  /** A committed project of another tenant, which must stay invisible. */
  foreignProject: string | undefined
  /** Run through `forTenant` (true) or an enclosing `runWithTenant` (false). */
  bound: boolean
  /** Reports a row this tenant saw or wrote: `tenantId` must be its own. */
  saw(row: { tenantId: string }, what: string): void
  /** Reports a breach found some other way (another tenant's row updated, say). */
  breach(what: string): void
}

export interface OperationPlan {
  /** Rows this operation commits when it succeeds. */
  writes: RowCounts
  /** Whether it is meant to fail and roll back. */
  rollsBack: boolean
  /** Runs it; resolves to the id of a project it created, for later operations once committed. */
  run(context: OperationContext): Promise<string | undefined>
}

const counts = (partial: Partial<RowCounts>): RowCounts => ({ ...noRows(), ...partial })

/** What each kind does; the rows it writes are named by its tag so the run can be reconciled. */
export const plans: Record<OperationKind, OperationPlan> = {
  read: {
    writes: noRows(),
    rollsBack: false,
    async run({ client, saw }) {
      const projects = await client.project.findMany({
        take: 5,
        orderBy: { createdAt: 'desc' },
        include: { tasks: { take: 3, include: { comments: true } }, members: true },
      })
      for (const project of projects) {
        saw(project, 'project read')
        for (const task of project.tasks) {
          saw(task, 'task read')
          for (const comment of task.comments) saw(comment, 'comment read')
        }
        for (const member of project.members) saw(member, 'member read')
      }
      return undefined
    },
  },
  'findUnique-batch': {
    writes: noRows(),
    rollsBack: false,
    async run({ client, ownProjects, foreignProject, saw, breach }) {
      // Same tick, same shape: Prisma merges these into one query per tenant.
      const ids = foreignProject === undefined ? ownProjects : [...ownProjects, foreignProject]
      const found = await Promise.all(ids.map((id) => client.project.findUnique({ where: { id } })))
      found.forEach((project, index) => {
        if (ids[index] === foreignProject) {
          if (project !== null) breach(`findUnique returned another tenant's project ${foreignProject}`)
        } else if (project === null) breach(`findUnique lost the committed project ${ids[index]}`)
        else saw(project, 'project by findUnique')
      })
      return undefined
    },
  },
  create: {
    writes: counts({ project: 1 }),
    rollsBack: false,
    async run({ client, tag, saw }) {
      const project = await client.project.create({ data: { name: tag } })
      saw(project, 'project created')
      return project.id
    },
  },
  'nested-create': {
    writes: counts({ project: 1, task: 2, comment: 1, member: 1 }),
    rollsBack: false,
    async run({ client, tag, saw }) {
      const project = await client.project.create({
        data: {
          name: tag,
          tasks: { create: [{ title: tag, comments: { create: [{ body: tag }] } }, { title: tag }] },
          members: { create: [{ userEmail: `${tag}@soak.test` }] },
        },
        include: { tasks: { include: { comments: true } }, members: true },
      })
      saw(project, 'project created nested')
      for (const task of project.tasks) {
        saw(task, 'task created nested')
        for (const comment of task.comments) saw(comment, 'comment created nested')
      }
      for (const member of project.members) saw(member, 'member created nested')
      return project.id
    },
  },
  update: {
    writes: noRows(),
    rollsBack: false,
    async run({ client, ownProject, foreignProject, saw, breach }) {
      saw(await client.project.update({ where: { id: ownProject }, data: { country: 'NL' } }), 'project updated')
      await client.task.updateMany({ where: { projectId: ownProject, done: false }, data: { done: true } })
      if (foreignProject !== undefined) {
        const { count } = await client.project.updateMany({ where: { id: foreignProject }, data: { country: 'XX' } })
        if (count !== 0) breach(`updateMany changed another tenant's project ${foreignProject}`)
      }
      return undefined
    },
  },
  'batch-transaction': {
    writes: counts({ task: 2 }),
    rollsBack: false,
    async run({ client, tag, ownProject, saw }) {
      const [first, second] = await client.$transaction([
        client.task.create({ data: { title: tag, projectId: ownProject } }),
        client.task.create({ data: { title: tag, projectId: ownProject } }),
        client.task.count({ where: { projectId: ownProject } }),
      ])
      saw(first, 'task created in a batch transaction')
      saw(second, 'task created in a batch transaction')
      return undefined
    },
  },
  'interactive-transaction': {
    writes: counts({ task: 1, comment: 1 }),
    rollsBack: false,
    async run({ client, tag, ownProject, saw }) {
      await client.$transaction(async (tx) => {
        saw(await tx.project.findUniqueOrThrow({ where: { id: ownProject } }), 'project read in a transaction')
        const task = await tx.task.create({ data: { title: tag, projectId: ownProject } })
        saw(task, 'task created in a transaction')
        saw(await tx.comment.create({ data: { body: tag, taskId: task.id } }), 'comment created in a transaction')
        saw(await tx.project.update({ where: { id: ownProject }, data: { country: 'SE' } }), 'project updated in a transaction')
      })
      return undefined
    },
  },
  'interactive-rollback': {
    writes: counts({ project: 1, task: 1 }),
    rollsBack: true,
    async run({ client, tag, saw }) {
      await client.$transaction(async (tx) => {
        const project = await tx.project.create({ data: { name: tag, tasks: { create: [{ title: tag }] } }, include: { tasks: true } })
        saw(project, 'project created before a rollback')
        throw new IntentionalRollback(`rolled back on purpose after writing project ${project.id}`)
      })
      return undefined
    },
  },
  'batch-rollback': {
    writes: counts({ task: 2 }),
    rollsBack: true,
    async run({ client, tag, ownProject }) {
      // The second task points at a project that does not exist: the foreign key fails the batch (P2003).
      await client.$transaction([
        client.task.create({ data: { title: tag, projectId: ownProject } }),
        client.task.create({ data: { title: tag, projectId: `missing-${tag}` } }),
      ])
      return undefined
    },
  },
}

/** Runs one planned operation as `context.tenant`, bound the way the context says. */
export function runOperation(plan: OperationPlan, context: OperationContext): Promise<string | undefined> {
  if (context.bound) return plan.run({ ...context, client: context.client.forTenant(context.tenant) })
  return runWithTenant(context.tenant, () => plan.run(context))
}

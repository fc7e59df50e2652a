import { z } from 'zod'
import { currentTenantId, runWithTenant } from '../context/tenant-context.js'
import { tenantIdValidator, type TenantIdSchema } from '../context/tenant-id.js'
import { TenancyError } from '../errors.js'

/** What a tenant job stores in the queue: the tenant beside the job's own data. */
export interface TenantJobData<Data> {
  tenantId: string
  data: Data
}

export interface TenantJob<Data, Result, Job extends { data: unknown }> {
  /** The job data to enqueue: `data` with the current tenant. Throws TENANT_MISSING outside `runWithTenant`. */
  data(data: Data): TenantJobData<Data>
  /** `queue.add(name, job.data(data), options)` (BullMQ's `Queue`): refused at enqueue when there is no tenant. */
  add<Options, Added>(queue: { add(name: string, data: TenantJobData<Data>, options?: Options): Promise<Added> }, name: string, data: Data, options?: Options): Promise<Added>
  /** The processor for the worker, which runs the handler as the job's tenant: `new Worker(queue.name, job.process, ...)`. */
  process(job: Job): Promise<Result>
}

const envelope = z.object({ tenantId: z.unknown(), data: z.unknown() })

/**
 * A job that keeps its tenant across the queue. At enqueue (inside
 * `runWithTenant`, e.g. in a request) the current tenant is stored in the job's
 * data; the worker runs the handler inside `runWithTenant` for that tenant, so
 * the tenancy client queries as it.
 *
 *   const sendDigest = tenantJob(async ({ projectId }: { projectId: string }) => prisma.task.findMany({ where: { projectId } }))
 *   await sendDigest.add(queue, 'digest', { projectId })      // in a request: the request's tenant
 *   new Worker(queue.name, sendDigest.process, { connection })
 */
export function tenantJob<Data, Result, Job extends { data: unknown } = { data: unknown }>(
  handler: (data: Data, job: Job) => Result | Promise<Result>,
  options: { tenantId?: TenantIdSchema } = {},
): TenantJob<Data, Result, Job> {
  const validate = tenantIdValidator(options.tenantId)
  const data = (payload: Data): TenantJobData<Data> => {
    const tenantId = currentTenantId()
    if (tenantId === undefined) {
      throw new TenancyError(
        'TENANT_MISSING',
        'A tenant job was enqueued with no tenant, so it was not enqueued. Enqueue it inside runWithTenant(id, fn) (the HTTP middleware does this for a request); for cross-tenant work use a job that is not a tenantJob and an unscoped client.',
      )
    }
    return { tenantId: validate(tenantId), data: payload }
  }
  return {
    data,
    add(queue, name, payload, queueOptions) {
      // data() first, so a job with no tenant never reaches the queue.
      const jobData = data(payload)
      return queueOptions === undefined ? queue.add(name, jobData) : queue.add(name, jobData, queueOptions)
    },
    async process(job) {
      // The job's data comes back from outside the process (Redis): check it before trusting its tenant.
      const parsed = envelope.safeParse(job.data)
      if (!parsed.success || parsed.data.tenantId === undefined) {
        throw new TenancyError('TENANT_MISSING', 'This job carries no tenant, so it was not run. Enqueue tenant jobs with tenantJob(...).add(queue, name, data) or its data(...), inside runWithTenant.')
      }
      const tenantId = validate(parsed.data.tenantId)
      return runWithTenant(tenantId, () => handler(parsed.data.data as Data, job))
    },
  }
}

// prisma-tenancy/jobs: a tenant survives the hop into a queue.
export { tenantJob } from './tenant-job.js'
export type { TenantJob, TenantJobData } from './tenant-job.js'

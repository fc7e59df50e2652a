import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { Queue, Worker, type Job } from 'bullmq'
import { afterAll, describe, expect, it } from 'vitest'
import { PrismaClient } from '../prisma/generated/client.js'
import { isTenancyError } from '../src/errors.js'
import { currentTenantId, runWithTenant, tenancy } from '../src/index.js'
import { tenantJob } from '../src/jobs/index.js'
import { useTenancy } from '../src/testing/index.js'

const redis = { host: '127.0.0.1', port: 6379 }
const redisUp = await new Promise<boolean>((resolve) => {
  const socket = connect(redis.port, redis.host, () => socket.end(() => resolve(true)))
  socket.on('error', () => resolve(false))
})
if (!redisUp) console.warn(`jobs.test.ts: skipped, no Redis at ${redis.host}:${redis.port} (start redis-server to run the BullMQ tests)`)

describe.skipIf(!redisUp)('tenantJob with BullMQ on Redis', async () => {
  const app = await useTenancy({
    client: (adapter) => new PrismaClient({ adapter }).$extends(tenancy()),
    admin: (adapter) => new PrismaClient({ adapter }),
    createTenant: (admin, id) => admin.tenant.create({ data: { id, name: id } }),
  })
  await app.createTenants(['acme', 'globex'])
  const prisma = app.client

  const queueName = `prisma-tenancy-test-${randomBytes(6).toString('hex')}`
  const queue = new Queue(queueName, { connection: redis })
  const handled: string[] = []
  const recordProject = tenantJob(async ({ marker }: { marker: string }, job: Job) => {
    handled.push(marker)
    // Yield between the write and the read so interleaved jobs really overlap.
    const row = await prisma.project.create({ data: { name: marker } })
    await new Promise((resolve) => setImmediate(resolve))
    const visible = await prisma.project.findMany({ select: { name: true, tenantId: true } })
    return { jobId: job.id, tenant: currentTenantId(), stored: row.tenantId, visibleTenants: [...new Set(visible.map((project) => project.tenantId))] }
  })
  const worker = new Worker(queueName, recordProject.process, { connection: { ...redis, maxRetriesPerRequest: null }, concurrency: 8, autorun: false })
  const settled = new Map<string, { result?: unknown; error?: Error }>()
  worker.on('completed', (job, result) => settled.set(job.id!, { result }))
  worker.on('failed', (job, error) => settled.set(job!.id!, { error }))
  afterAll(async () => {
    await worker.close()
    await queue.obliterate({ force: true })
    await queue.close()
  })

  async function untilSettled(ids: string[]): Promise<void> {
    for (let attempt = 0; attempt < 600 && !ids.every((id) => settled.has(id)); attempt += 1) await new Promise((resolve) => setTimeout(resolve, 50))
  }

  it('runs each job as the tenant it was enqueued for: interleaved jobs of two tenants write and read only their own rows', async () => {
    const enqueued: Array<{ id: string; tenant: string }> = []
    for (let index = 0; index < 20; index += 1) {
      const tenant = index % 2 === 0 ? 'acme' : 'globex'
      const job = await runWithTenant(tenant, () => recordProject.add(queue, 'record', { marker: `${tenant}-${index}` }))
      expect(job.data).toEqual({ tenantId: tenant, data: { marker: `${tenant}-${index}` } })
      enqueued.push({ id: job.id!, tenant })
    }
    void worker.run()
    await untilSettled(enqueued.map((job) => job.id))
    for (const { id, tenant } of enqueued) {
      expect(settled.get(id)).toEqual({ result: { jobId: id, tenant, stored: tenant, visibleTenants: [tenant] } })
    }
    const rows = await app.admin.project.findMany({ where: { name: { contains: '-' } } })
    expect(rows.map((row) => row.name.startsWith(`${row.tenantId}-`))).toEqual(rows.map(() => true))
    expect(rows).toHaveLength(20)
  })

  it('refuses to enqueue a tenant job with no tenant, and nothing reaches the queue', async () => {
    const before = await queue.count()
    expect(() => recordProject.add(queue, 'record', { marker: 'nobody' })).toThrow(expect.objectContaining({ code: 'TENANT_MISSING' }))
    expect(() => recordProject.data({ marker: 'nobody' })).toThrow(expect.objectContaining({ code: 'TENANT_MISSING' }))
    expect(await queue.count()).toBe(before)
  })

  it('fails a job that carries no tenant or an invalid one without running the handler', async () => {
    const bare = await queue.add('record', { marker: 'bare' })
    const forged = await queue.add('record', { tenantId: "acme' OR '1'='1", data: { marker: 'forged' } })
    await untilSettled([bare.id!, forged.id!])
    expect(isTenancyError(settled.get(bare.id!)?.error, 'TENANT_MISSING')).toBe(true)
    expect(isTenancyError(settled.get(forged.id!)?.error, 'TENANT_INVALID')).toBe(true)
    expect(handled).not.toContain('bare')
    expect(handled).not.toContain('forged')
  })
})

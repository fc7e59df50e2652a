// Measures the Node side of the wire floor in instructions, which do not drift with the machine the way
// CPU time does on these shared 2-core machines (plain Prisma's findUnique took 170 to 350 µs of CPU in
// runs ten minutes apart). Each variant runs in its own Node process under valgrind's callgrind
// (instructions of the process's own threads, the JIT's code included; the kernel's are not counted),
// twice: `--short` and `--long` findUnique calls after the same start-up. The difference over the
// difference in calls is the variant's instructions per call, start-up and first compilations left out.
//   plain-prisma     the bench's baseline (a BYPASSRLS role, no context)
//   prisma-tenancy   the bench's contender (tenancy adapter, tenancy(), forTenant per call)
//   pg               Prisma's findUnique SQL through node-postgres alone
//   pg + set_config  the same with set_config in the same write (prisma-tenancy's wire form), no Prisma
// So (prisma-tenancy - plain-prisma) - (pg + set_config - pg) is what prisma-tenancy's own code adds
// over what the driver needs to send the tenant and read its replies.
//   npx tsx scripts/node-cpu-floor.ts [--short 1000] [--long 3000] [--json]   (DATABASE_URL: a server; else embedded)
// Needs valgrind (Debian's package); takes about five minutes on 2 cores.
import { spawn } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { usePostgresServer } from '../src/database/postgres-server.js'
import { benchRoles, createBenchDatabase, createRoles, dropRoles } from './bench/database.js'
import { plainPrisma, type Contender } from './bench/contenders.js'
import { seedOperationsData, type TenantFixture } from './bench/fixtures.js'
import { prismaTenancy } from './bench/prisma-tenancy.js'
import { openWireFloor, wireBaseline, wireSetConfig } from './bench/wire-floor.js'
import { operations } from './bench/workloads/operations.js'

const variants = ['plain-prisma', 'prisma-tenancy', 'pg', 'pg + set_config'] as const
type Variant = (typeof variants)[number]
interface Target {
  appUrl: string
  unrestrictedUrl: string
  tenants: TenantFixture[]
}

const { values: args } = parseArgs({
  options: { short: { type: 'string', default: '1000' }, long: { type: 'string', default: '3000' }, json: { type: 'boolean', default: false }, child: { type: 'string' }, calls: { type: 'string' }, target: { type: 'string' } },
})

/** In the child: `calls` findUnique calls of one variant, nothing else. */
async function runChild(variant: Variant, calls: number, target: Target): Promise<void> {
  let call: (i: number) => Promise<unknown>
  let close: () => Promise<void>
  if (variant === 'pg' || variant === 'pg + set_config') {
    // openWireFloor also opens the signed variant's connection; any key will do, it is not called here.
    const wire = await openWireFloor(target, { appUrl: target.appUrl, signingKey: 'k'.repeat(43) }, target.tenants)
    const name = variant === 'pg' ? wireBaseline : wireSetConfig
    const operation = wire.operations.get(name)
    if (operation === undefined) throw new Error(`no wire variant ${name}`)
    call = (i) => operation(i, 0)
    close = wire.close
  } else {
    const urls = { appUrl: target.appUrl, unrestrictedUrl: target.unrestrictedUrl, poolSize: 10 }
    const contender: Contender = await (variant === 'plain-prisma' ? plainPrisma : prismaTenancy).create(urls)
    const operation = operations(contender, target.tenants).get('findUnique')!
    call = (i) => operation(i, 0)
    close = () => contender.close()
  }
  for (let i = 0; i < calls; i++) await call(i)
  await close()
}

/** Instructions of one child process under callgrind. */
function countInstructions(variant: Variant, calls: number, targetFile: string): Promise<number> {
  const out = join(tmpdir(), `node-cpu-floor-${process.pid}-${variants.indexOf(variant)}-${calls}.out`)
  const script = fileURLToPath(import.meta.url)
  const argv = ['--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${out}`, process.execPath, '--import', 'tsx', script, '--child', variant, '--calls', String(calls), '--target', targetFile]
  return new Promise((resolve, reject) => {
    const child = spawn('valgrind', argv, { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.on('error', (error) => reject(new Error(`valgrind could not start (${error.message}); install it: apt-get install valgrind`)))
    child.on('close', (code) => {
      rmSync(out, { force: true })
      const collected = /Collected : (\d+)/.exec(stderr)?.[1]
      if (code !== 0 || collected === undefined) reject(new Error(`${variant}, ${calls} calls: valgrind exited with ${code}\n${stderr.slice(-2000)}`))
      else resolve(Number(collected))
    })
  })
}

if (args.child !== undefined) {
  await runChild(args.child as Variant, Number(args.calls), JSON.parse(readFileSync(args.target!, 'utf8')) as Target)
} else {
  const short = Number(args.short)
  const long = Number(args.long)
  const server = await usePostgresServer({ databaseUrl: process.env.DATABASE_URL })
  const roles = benchRoles()
  const targetFile = join(tmpdir(), `node-cpu-floor-${process.pid}.json`)
  try {
    await createRoles(server.adminUrl, roles)
    const database = await createBenchDatabase(server.adminUrl, roles, {})
    try {
      const tenants = await seedOperationsData(database.adminUrl, { tenants: 10, projects: 2, tasksPerProject: 60 })
      writeFileSync(targetFile, JSON.stringify({ appUrl: database.appUrl, unrestrictedUrl: database.unrestrictedUrl, tenants } satisfies Target))
      const perCall = new Map<Variant, number>()
      // Two variants at a time, each at both lengths: four processes; instructions, unlike time, do not depend on
      // how many run together. The server's own work is not counted.
      for (const pair of [variants.slice(0, 2), variants.slice(2)]) {
        const counts = await Promise.all(pair.flatMap((variant) => [short, long].map((calls) => countInstructions(variant, calls, targetFile))))
        pair.forEach((variant, index) => perCall.set(variant, (counts[2 * index + 1]! - counts[2 * index]!) / (long - short)))
        process.stderr.write(`${pair.join(', ')}: done\n`)
      }
      const get = (variant: Variant) => perCall.get(variant)!
      const tenancyOverPlain = get('prisma-tenancy') - get('plain-prisma')
      const driverFloor = get('pg + set_config') - get('pg')
      const tenancyOverFloor = tenancyOverPlain - driverFloor
      const result = { instructions_per_call: Object.fromEntries(perCall), tenancy_over_plain: tenancyOverPlain, driver_floor: driverFloor, tenancy_over_floor: tenancyOverFloor }
      if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
      else {
        for (const [variant, count] of perCall) process.stdout.write(`${variant.padEnd(16)} ${Math.round(count).toLocaleString('en')} instructions per findUnique\n`)
        const signed = (count: number) => `${count < 0 ? '−' : '+'}${Math.abs(Math.round(count)).toLocaleString('en')}`
        process.stdout.write(`prisma-tenancy over plain Prisma: ${signed(tenancyOverPlain)}; the driver's set_config alone: ${signed(driverFloor)}; prisma-tenancy's own: ${signed(tenancyOverFloor)} (${((100 * tenancyOverFloor) / get('plain-prisma')).toFixed(1)}% of plain Prisma's)\n`)
      }
    } finally {
      await database.drop()
    }
  } finally {
    rmSync(targetFile, { force: true })
    await dropRoles(server.adminUrl, roles).catch(() => undefined)
    await server.stop()
  }
}

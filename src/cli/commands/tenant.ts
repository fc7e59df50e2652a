import { createReadStream, createWriteStream } from 'node:fs'
import { access } from 'node:fs/promises'
import { finished } from 'node:stream/promises'
import { TenancyError } from '../../errors.js'
import type { CreateTenantOptions } from '../../tenants/create-tenant.js'
import type { ListTenantsOptions } from '../../tenants/list-tenants.js'
import type { RemoveTenantOptions } from '../../tenants/remove-tenant.js'
import type { TenantLifecycleOptions } from '../../tenants/tenant-database.js'
import type { CliIo } from '../output.js'
import { exitCodes } from '../output.js'

// Each command imports its lifecycle module when it runs: `tenant export` loads neither the
// import parser nor the credential code (its peak memory is measured, README).

interface JsonOption {
  json?: boolean | undefined
}

/** Progress goes to a terminal only: never into a pipe, a log or --json output. */
function progress(io: CliIo, options: JsonOption): ((text: string) => void) | undefined {
  if (options.json === true || process.stderr.isTTY !== true) return undefined
  let last = 0
  return (text) => {
    const now = Date.now()
    if (now - last < 200) return
    last = now
    io.stderr(`  ${text}`)
  }
}

function emit(io: CliIo, options: JsonOption, result: object, human: string): number {
  if (options.json === true) io.stdout(JSON.stringify(result))
  io.stderr(human)
  return exitCodes.ok
}

function parseData(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined
  try {
    return JSON.parse(text) as Record<string, unknown>
  } catch (cause) {
    throw new TenancyError('CONFIG_INVALID', `--data is not valid JSON (${(cause as Error).message}). Pass an object, such as --data '{"name": "Acme"}'.`, { cause })
  }
}

export async function tenantCreateCommand(id: string, options: Omit<CreateTenantOptions, 'data'> & JsonOption & { data?: string }, io: CliIo): Promise<number> {
  const { createTenant } = await import('../../tenants/create-tenant.js')
  const result = await createTenant(id, { ...options, data: parseData(options.data) })
  // The connection string is the one secret: it goes to stdout (for a secrets manager), never to stderr or a log.
  if (options.json !== true && result.connectionString !== undefined) io.stdout(JSON.stringify({ tenant: result.tenant, connectionString: result.connectionString }))
  const human = result.actions.length === 0 ? `Tenant ${result.tenant} exists already; nothing to do.${options.credentials === true ? ' It has credentials: `prisma-tenancy tenant rotate` issues new ones.' : ''}` : result.actions.map((action) => `  ${action}`).join('\n')
  return emit(io, options, result, human)
}

export async function tenantListCommand(options: ListTenantsOptions & JsonOption, io: CliIo): Promise<number> {
  const { listTenants } = await import('../../tenants/list-tenants.js')
  const result = await listTenants(options)
  const lines = result.tenants.map((tenant) => {
    const rows = tenant.rows === undefined ? '' : `  ${Object.entries(tenant.rows).map(([table, count]) => `${table}=${count}`).join(' ')}`
    return `  ${tenant.id}  ${tenant.createdAt ?? '-'}  ${tenant.credentials ? 'credentials' : 'no credentials'}${rows}`
  })
  return emit(io, options, result, `${result.tenants.length} tenant(s)${lines.length > 0 ? `\n${lines.join('\n')}` : ''}`)
}

export async function tenantRemoveCommand(id: string, options: Omit<RemoveTenantOptions, 'batchSize'> & JsonOption & { batchSize?: string }, io: CliIo): Promise<number> {
  const report = progress(io, options)
  const stop = new AbortController()
  const interrupt = () => stop.abort()
  process.once('SIGINT', interrupt)
  try {
    const { removeTenant } = await import('../../tenants/remove-tenant.js')
    const result = await removeTenant(id, {
      ...options,
      batchSize: options.batchSize === undefined ? undefined : Number(options.batchSize),
      signal: stop.signal,
      onProgress: report === undefined ? undefined : ({ table, deleted }) => report(`${table}: ${deleted} deleted`),
    })
    const lines = [`Removed tenant ${result.tenant}${result.resumed ? ' (resumed an interrupted removal)' : ''}:`, ...result.tables.map((table) => `  ${table.table}: ${table.deleted} row(s) deleted${table.droppedPartition === undefined ? '' : ` (partition ${table.droppedPartition} dropped)`}, ${result.remaining[table.table] ?? 0} left`)]
    if (result.droppedRole !== null) lines.push(`  dropped login role ${result.droppedRole}`)
    return emit(io, options, result, lines.join('\n'))
  } finally {
    process.removeListener('SIGINT', interrupt)
  }
}

export async function tenantPartitionCommand(id: string, options: TenantLifecycleOptions & JsonOption, io: CliIo): Promise<number> {
  const { partitionTenant } = await import('../../tenants/partition-tenant.js')
  const result = await partitionTenant(id, options)
  const lines = [
    `Partitions of tenant ${result.tenant}:`,
    ...result.tables.map((table) =>
      table.action === 'moved'
        ? `  ${table.table}: ${table.moved} row(s) moved out of DEFAULT into ${table.partition} (writers blocked ${table.writersBlockedMs.toFixed(1)} ms)`
        : `  ${table.table}: ${table.partition} ${table.action === 'created' ? 'created (no rows to move)' : 'exists already; nothing to do'}`,
    ),
  ]
  return emit(io, options, result, lines.join('\n'))
}

export async function tenantExportCommand(id: string, options: TenantLifecycleOptions & JsonOption & { out?: string }, io: CliIo): Promise<number> {
  if (options.out === undefined && options.json === true) {
    throw new TenancyError('CONFIG_INVALID', 'Without --out the export itself goes to stdout, so --json has nowhere to go. Pass --out <file.jsonl>.')
  }
  const { exportTenant } = await import('../../tenants/export-tenant.js')
  const report = progress(io, options)
  const output = options.out === undefined ? process.stdout : createWriteStream(options.out)
  const result = await exportTenant(id, { ...options, output, onProgress: report === undefined ? undefined : ({ table, rows }) => report(`${table}: ${rows} row(s)`) }).finally(async () => {
    if (output !== process.stdout) {
      output.end()
      await finished(output)
    }
  })
  const lines = [`Exported tenant ${result.tenant}${options.out === undefined ? '' : ` to ${options.out}`} (migration ${result.migration ?? 'unknown'}):`, ...result.tables.map((table) => `  ${table.table}: ${table.rows} row(s)`)]
  return emit(io, options, result, lines.join('\n'))
}

export async function tenantImportCommand(file: string, options: TenantLifecycleOptions & JsonOption & { as?: string; replace?: boolean; batchSize?: string }, io: CliIo): Promise<number> {
  await access(file).catch((cause: unknown) => {
    throw new TenancyError('CONFIG_INVALID', `Cannot read the import file ${file}. Pass the path of a file written by \`prisma-tenancy tenant export --out\`.`, { cause })
  })
  const report = progress(io, options)
  const input = createReadStream(file)
  try {
    const { importTenant } = await import('../../tenants/import-tenant.js')
    const result = await importTenant({
      ...options,
      input,
      batchSize: options.batchSize === undefined ? undefined : Number(options.batchSize),
      onProgress: report === undefined ? undefined : ({ table, rows }) => report(`${table}: ${rows} row(s)`),
    })
    const lines = [`Imported tenant ${result.exportedTenant}${result.tenant === result.exportedTenant ? '' : ` as ${result.tenant}`}${result.replaced ? ', replacing the existing one' : ''}${result.resumed ? ' (resumed an interrupted import)' : ''}:`, ...result.tables.map((table) => `  ${table.table}: ${table.rows} row(s)`)]
    return emit(io, options, result, lines.join('\n'))
  } finally {
    input.destroy()
  }
}

export async function tenantRotateCommand(id: string, options: TenantLifecycleOptions & JsonOption, io: CliIo): Promise<number> {
  const { rotateTenant } = await import('../../tenants/rotate-tenant.js')
  const result = await rotateTenant(id, options)
  if (options.json !== true) io.stdout(JSON.stringify({ tenant: result.tenant, connectionString: result.connectionString }))
  return emit(io, options, result, `New password for tenant ${result.tenant}; the old one no longer works (${result.endedSessions} open session(s) ended).`)
}

import { cp, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * A copy of the example project (schema and migrations) in a temporary folder, to change freely;
 * `from` names another project's prisma folder (test/fixtures/citus/prisma: the Citus-ready schema).
 */
export async function copyExampleProject(from = 'prisma'): Promise<{ dir: string; schema: string; migrations: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'prisma-tenancy-project-'))
  await cp(from, join(dir, 'prisma'), { recursive: true, filter: (source) => !source.includes('generated') })
  return { dir, schema: join(dir, 'prisma', 'schema.prisma'), migrations: join(dir, 'prisma', 'migrations') }
}

import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveProject } from '../../src/config/project-config.js'
import { generatePolicies } from '../../src/index.js'

export interface ProjectCopy {
  schema: string
  migrations: string
  /** The migration folders added to the project's, in the order they apply. */
  added: string[]
  remove(): Promise<void>
}

/**
 * A copy of the project's schema and migrations in a temporary folder, with
 * `models` appended to the schema, `tablesSql` as a new migration, and the
 * policy migration `prisma-tenancy generate` writes for the new models: the
 * way a user adds tenant tables.
 */
export async function projectCopyWith(options: { models: string; tablesSql: string; migrations?: string | undefined }): Promise<ProjectCopy> {
  const project = await resolveProject()
  const folder = await mkdtemp(join(tmpdir(), 'prisma-tenancy-bench-project-'))
  const remove = () => rm(folder, { recursive: true, force: true })
  try {
    const schema = join(folder, 'schema.prisma')
    const migrations = join(folder, 'migrations')
    await writeFile(schema, `${await readFile(project.schemaPath, 'utf8')}\n${options.models}`)
    await cp(options.migrations ?? project.migrationsDir, migrations, { recursive: true })
    // Dated far ahead so they sort after every migration of the project.
    const tables = '20991231000000_bench_tables'
    await mkdir(join(migrations, tables))
    await writeFile(join(migrations, tables, 'migration.sql'), options.tablesSql)
    const { created } = await generatePolicies({ schema, migrations, name: 'bench_rls', now: new Date('2099-12-31T00:00:01Z') })
    if (created === null) throw new Error('prisma-tenancy generate wrote no policy migration for the new models')
    return { schema, migrations, added: [tables, created], remove }
  } catch (error) {
    await remove()
    throw error
  }
}

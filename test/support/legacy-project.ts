import { copyFile, mkdir, mkdtemp, readdir, rename } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { dropDatabase, grantAppRole, withClient } from '../../src/database/admin.js'
import { withDatabase } from '../../src/database/connection-url.js'
import { migrateDeploy, migrateDev } from '../../src/migrate/migrate.js'
import type { TestDatabase } from '../../src/testing/index.js'

export const legacySchema = 'test/fixtures/legacy/legacy.prisma'
export const tenantSchema = 'test/fixtures/legacy/tenant.prisma'
export const legacyTables = ['Country', 'Project', 'tasks', 'Member'] as const

export interface LegacyProject {
  dir: string
  schema: string
  migrations: string
  /** Superuser URL of the project's own database. */
  url: string
  /** The same database as the plain application role. */
  appUrl: string
  /** Replaces the schema with its multi-tenant form, as a user does before `adopt`. */
  useTenantSchema(): Promise<void>
}

export interface LegacySeed {
  projects?: number
  tasksPerProject?: number
  members?: number
}

/**
 * A single-tenant app as it exists before adoption: the legacy schema,
 * migrated with `migrate dev` into a database of its own (dropped after the
 * test), seeded, with the application role granted its usual access.
 */
export async function createLegacyProject(db: TestDatabase, name: string, seed: LegacySeed = {}): Promise<LegacyProject> {
  const dir = await mkdtemp(join(tmpdir(), 'prisma-tenancy-legacy-'))
  const schema = join(dir, 'prisma', 'schema.prisma')
  await mkdir(join(dir, 'prisma'))
  await copyFile(legacySchema, schema)
  const database = `${db.name}_${name}`
  onTestFinished(() => dropDatabase(db.adminUrl, database))
  const url = withDatabase(db.adminUrl, database)
  await migrateDev({ cwd: dir, databaseUrl: url, name: 'init' })
  const { projects = 40, tasksPerProject = 10, members = 20 } = seed
  await withClient(url, async (client) => {
    await client.query(`INSERT INTO "Country" (code, name) VALUES ('de', 'Germany'), ('fr', 'France'), ('jp', 'Japan')`)
    await client.query(`INSERT INTO "Project" (id, slug, name) SELECT 'p' || g, 'slug-' || g, 'Project ' || g FROM generate_series(1, $1::int) g`, [projects])
    await client.query(`INSERT INTO tasks (project_id, title, done) SELECT 'p' || p, 'Task ' || p || '.' || t, t % 3 = 0 FROM generate_series(1, $1::int) p, generate_series(1, $2::int) t`, [
      projects,
      tasksPerProject,
    ])
    await client.query(`INSERT INTO "Member" (email) SELECT 'member' || g || '@example.com' FROM generate_series(1, $1::int) g`, [members])
  })
  await grantAppRole(url, db.appRole.name)
  return {
    dir,
    schema,
    migrations: join(dir, 'prisma', 'migrations'),
    url,
    appUrl: withDatabase(db.appUrl, database),
    useTenantSchema: () => copyFile(tenantSchema, schema),
  }
}

/** Row count and a checksum of each table's rows without the tenant column, read as the superuser (past any policy). */
export async function tableChecksums(url: string): Promise<Record<string, { rows: number; checksum: string }>> {
  return withClient(url, async (client) => {
    const result: Record<string, { rows: number; checksum: string }> = {}
    for (const table of legacyTables) {
      const { rows } = await client.query<{ rows: number; checksum: string }>(
        `SELECT count(*)::int AS rows, md5(coalesce(string_agg(j, '|' ORDER BY j), '')) AS checksum FROM (SELECT (to_jsonb(t) - 'tenant_id')::text AS j FROM "${table}" t) s`,
      )
      result[table] = rows[0]!
    }
    return result
  })
}

/**
 * Moves the migration folders `written` out of the migrations folder, so a
 * test can put them back and deploy them one at a time.
 */
export async function stageMigrations(project: LegacyProject, written: string[]): Promise<{ deployNext(): Promise<string[]> }> {
  const staging = await mkdtemp(join(tmpdir(), 'prisma-tenancy-staged-'))
  for (const folder of written) await rename(join(project.migrations, folder), join(staging, folder))
  return {
    async deployNext() {
      const [next] = (await readdir(staging)).sort()
      if (next === undefined) throw new Error('no staged migration left')
      await rename(join(staging, next), join(project.migrations, next))
      return (await migrateDeploy({ cwd: project.dir, databaseUrl: project.url })).applied
    },
  }
}

import { onTestFinished } from 'vitest'
import { createDatabase, dropDatabase } from '../../src/database/admin.js'
import { withDatabase } from '../../src/database/connection-url.js'
import { generatePolicies } from '../../src/index.js'
import { migrateDeploy } from '../../src/migrate/migrate.js'
import type { TestDatabase } from '../../src/testing/index.js'
import { copyExampleProject } from './example-project.js'

export const partitionedFixture = 'test/fixtures/partitioned/prisma'

/**
 * The partitioned fixture project (events partitioned by tenant, notes
 * referencing it) in a database of its own: `generate` for the app role, then
 * `migrate deploy`, as a user does it. `cleanup` registers the drop (default:
 * after the current test; pass your own hook for a whole file).
 */
export async function deployPartitionedProject(db: TestDatabase, name: string, cleanup: (drop: () => Promise<void>) => void = onTestFinished) {
  const project = await copyExampleProject(partitionedFixture)
  const generated = await generatePolicies({ schema: project.schema, migrations: project.migrations, appRole: db.appRole.name, now: new Date('2026-12-02T12:00:00Z') })
  const database = `${db.name}_${name}`
  const url = await createDatabase(db.adminUrl, database, { revokeTemporaryFrom: db.appRole.name })
  cleanup(() => dropDatabase(db.adminUrl, database))
  await migrateDeploy({ cwd: project.dir, schema: project.schema, migrations: project.migrations, databaseUrl: url })
  return { ...project, created: generated.created, url, appUrl: withDatabase(db.appUrl, database), lifecycle: { databaseUrl: url, schema: project.schema, migrations: project.migrations } }
}

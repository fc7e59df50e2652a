import { ensureAppRole } from '../../src/database/admin.js'
import { generatePolicies } from '../../src/index.js'
import { migrateDeploy } from '../../src/migrate/migrate.js'
import type { CitusCluster } from '../../src/testing/citus-cluster.js'
import { copyExampleProject } from './example-project.js'

export const citusAppRole = { name: 'tenancy_app', password: 'tenancy_app' }

/**
 * The Citus-ready example project (test/fixtures/citus/prisma) in a database of
 * its own on the cluster: `generate --citus` for the app role, then applied
 * with `migrate deploy`, as a user does it.
 */
export async function deployCitusProject(cluster: CitusCluster, database: string) {
  await ensureAppRole(cluster.adminUrl, citusAppRole)
  const url = await cluster.createDatabase(database)
  const project = await copyExampleProject('test/fixtures/citus/prisma')
  await generatePolicies({ schema: project.schema, migrations: project.migrations, appRole: citusAppRole.name, citus: true })
  const deployed = await migrateDeploy({ cwd: project.dir, schema: project.schema, migrations: project.migrations, databaseUrl: url })
  return { ...project, url, applied: deployed.applied }
}

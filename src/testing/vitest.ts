import { afterAll, inject } from 'vitest'
import { TenancyError } from '../errors.js'
import { createTenancyFixture, type AdminClient, type TenancyFixture, type TenancyFixtureOptions, type TenantClient } from './tenancy-fixture.js'
import { createTestDatabase, startTestServer, type TestDatabase, type TestServerInfo, type TestServerOptions } from './test-server.js'

declare module 'vitest' {
  export interface ProvidedContext {
    prismaTenancy: TestServerInfo
  }
}

export interface GlobalSetupContext {
  provide(key: 'prismaTenancy', value: TestServerInfo): void
}

/**
 * A vitest globalSetup: one server and one migrated template for the whole
 * run, stopped when the run ends, however it ends.
 *
 *   // test/global-setup.ts
 *   export default tenancyGlobalSetup()
 */
export function tenancyGlobalSetup(options: TestServerOptions = {}) {
  return async function setup(context: GlobalSetupContext): Promise<() => Promise<void>> {
    const server = await startTestServer(options)
    const { stop, ...info } = server
    context.provide('prismaTenancy', info)
    return stop
  }
}

/**
 * A database of this test file's own, cloned from the template, dropped after
 * the file's tests (pass or fail).
 *
 *   const db = await useTestDatabase()
 */
export async function useTestDatabase(): Promise<TestDatabase> {
  const server = inject('prismaTenancy')
  if (server === undefined) {
    throw new TenancyError(
      'CONFIG_INVALID',
      "No prisma-tenancy test server was provided. Add a globalSetup file that exports tenancyGlobalSetup() from 'prisma-tenancy/testing' to vitest.config.",
    )
  }
  const database = await createTestDatabase(server)
  afterAll(() => database.drop())
  return database
}

/**
 * A test database of this file's own with the app's tenant client (as the
 * application role), an unscoped admin client and tenant creation; all
 * closed and dropped after the file's tests.
 *
 *   const t = await useTenancy({
 *     client: (adapter) => new PrismaClient({ adapter }).$extends(tenancy()),
 *     admin: (adapter) => new PrismaClient({ adapter }),
 *     createTenant: (admin, id) => admin.tenant.create({ data: { id, name: id } }),
 *   })
 */
export async function useTenancy<Client extends TenantClient<Client>, Admin extends AdminClient>(
  options: TenancyFixtureOptions<Client, Admin>,
): Promise<TenancyFixture<Client, Admin>> {
  const database = await useTestDatabase()
  const fixture = createTenancyFixture(database, options)
  // Registered after the database's own afterAll: vitest runs afterAll hooks in reverse, so clients close first.
  afterAll(() => fixture.close())
  return fixture
}

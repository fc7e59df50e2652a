import type { PrismaPg } from '@prisma/adapter-pg'
import { tenancyAdapter, unscopedAdapter, type TenancyPg } from '../client/tenancy-adapter.js'
import type { TestDatabase } from './test-server.js'
import { recordWire, type WireRecorder } from './wire-recorder.js'

/** What the fixture needs of the app's tenant client: `new PrismaClient(...).$extends(tenancy())`. */
export interface TenantClient<Self> {
  forTenant(tenantId: string): Self
  $disconnect(): Promise<void>
}

export interface AdminClient {
  $disconnect(): Promise<void>
}

export interface TenancyFixtureOptions<Client extends TenantClient<Client>, Admin extends AdminClient> {
  /** The app's tenant client on the given adapter, e.g. `(adapter) => new PrismaClient({ adapter }).$extends(tenancy())`. */
  client: (adapter: TenancyPg) => Client
  /** An unscoped client for setup across tenants, e.g. `(adapter) => new PrismaClient({ adapter })`. */
  admin: (adapter: PrismaPg) => Admin
  /** Creates one tenant (its registry row, its starting data) through the admin client. */
  createTenant?: (admin: Admin, tenantId: string) => Promise<unknown>
}

export interface TenancyFixture<Client, Admin> {
  database: TestDatabase
  /** The tenant client, connected as the plain application role. */
  client: Client
  /** The unscoped client, connected as the superuser. Never use it to prove isolation. */
  admin: Admin
  /** The tenant client's driver adapter (its `pool` is the application's connection pool). */
  adapter: TenancyPg
  /** Everything the tenant client sent to the server. */
  wire: WireRecorder
  /** The tenant client bound to one tenant. */
  asTenant(tenantId: string): Client
  /** Creates these tenants with `createTenant`. */
  createTenants<const Ids extends readonly string[]>(tenantIds: Ids): Promise<Ids>
  /** Creates `count` tenants with `createTenant`, named tenant_a, tenant_b, ... */
  createTenants(count: number): Promise<string[]>
  close(): Promise<void>
}

const defaultTenantIds = (count: number) => Array.from({ length: count }, (_, index) => `tenant_${String.fromCharCode(97 + (index % 26))}${index >= 26 ? index : ''}`)

/**
 * Clients for one test database: the app's tenant client as the application
 * role (with a wire recorder underneath), an unscoped admin client, and
 * tenant creation. Framework-neutral; `useTenancy` is the vitest form.
 */
export function createTenancyFixture<Client extends TenantClient<Client>, Admin extends AdminClient>(
  database: TestDatabase,
  options: TenancyFixtureOptions<Client, Admin>,
): TenancyFixture<Client, Admin> {
  const adapter = tenancyAdapter(database.appUrl)
  const wire = recordWire(adapter.pool)
  const client = options.client(adapter)
  const admin = options.admin(unscopedAdapter(database.adminUrl))
  async function createTenants(tenants: number | readonly string[]): Promise<readonly string[]> {
    const ids = typeof tenants === 'number' ? defaultTenantIds(tenants) : tenants
    for (const id of ids) await options.createTenant?.(admin, id)
    return ids
  }
  return {
    database,
    client,
    admin,
    adapter,
    wire,
    asTenant: (tenantId) => client.forTenant(tenantId),
    createTenants: createTenants as TenancyFixture<Client, Admin>['createTenants'],
    async close() {
      await Promise.allSettled([client.$disconnect(), admin.$disconnect()])
    },
  }
}

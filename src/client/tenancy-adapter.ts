import { PrismaPg } from '@prisma/adapter-pg'
import pg from 'pg'
import { z } from 'zod'
import { defaultTenantSetting } from '../context/tenant-setting.js'
import { tenantSigner } from '../context/tenant-signature.js'
import { parseDatabaseUrl } from '../database/connection-url.js'
import { TenancyError } from '../errors.js'
import { currentTenantScope } from '../context/tenant-context.js'
import { markTransactionControl, type PrismaPgAdapterInternals } from './tenancy-transaction.js'
import { connectionLost, ScopedQuery, TenantPgClient, type TenancySettings, type TenantPgClientConfig } from './tenant-pg-client.js'

/**
 * A pg Pool of TenantPgClient connections. pg-pool runs a queued query in the
 * async context of whoever released the connection it gets, so the tenant is
 * read here, when the query is asked for, and travels on the query config.
 */
export class TenancyPool extends pg.Pool {
  constructor(config: pg.PoolConfig, settings: TenancySettings) {
    const clientConfig: TenantPgClientConfig = { ...config, tenancy: settings }
    const { onConnect } = config
    // pg-pool constructs `new Client(poolOptions)`; the settings ride along in them.
    super({
      ...clientConfig,
      Client: TenantPgClient as unknown as NonNullable<pg.PoolConfig['Client']>,
      // Before the pool hands a new physical connection to anyone: one query, once per connection.
      onConnect: async (client: pg.ClientBase) => {
        await (client as unknown as TenantPgClient).checkRole()
        await onConnect?.(client)
      },
    })
    this.on('release', (_error: Error | undefined, client: pg.PoolClient) => (client as unknown as TenantPgClient).releasedToPool())
  }

  // A connection that dies while it is opened, or while pool.query holds it (pg-pool then
  // answers with the connection's own error event), fails its caller with CONNECTION_LOST too.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override connect(callback?: any): any {
    if (typeof callback !== 'function') return translated(super.connect())
    return super.connect((error, client, done) => callback(error === undefined || error === null ? error : translate(error), client, done))
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override query(config: any, values?: any, callback?: any): any {
    const done = typeof values === 'function' ? values : callback
    let params = typeof values === 'function' ? undefined : values
    const scope = currentTenantScope()
    if (scope !== undefined && (typeof config === 'string' || (config !== null && typeof config === 'object' && typeof config.submit !== 'function'))) {
      // PrismaPg's every query passes here; its config goes on as it is, the values folded in.
      const query = typeof config === 'string' ? { text: config } : config
      config = new ScopedQuery(params === undefined ? query : { ...query, values: params }, scope.tenantId, scope.raw === true)
      params = undefined
    }
    if (typeof done === 'function') {
      return super.query(config, params, (error: Error | undefined, result: unknown) => done(error === undefined || error === null ? error : translate(error), result))
    }
    // pg-pool's callback form: one promise per query, where its promise form and a catch would make two.
    return new Promise((resolve, reject) => super.query(config, params, (error: Error | undefined, result: unknown) => (error === undefined || error === null ? resolve(result) : reject(translate(error)))))
  }
}

function translate(error: Error): Error {
  return error instanceof TenancyError ? error : (connectionLost(error) ?? error)
}

function translated<T>(promise: Promise<T>): Promise<T> {
  return promise.catch((error: Error) => {
    throw translate(error)
  })
}

export interface TenancyAdapterOptions {
  /** The schema Prisma uses (PrismaPg's `schema` option). */
  schema?: string
  /** The key `prisma-tenancy signing-key set` printed, for policies written by `generate --signed`. */
  signingKey?: string | undefined
  /**
   * Citus mode: the tenant travels as `SET LOCAL` (which Citus forwards to the
   * workers) and tenancy() adds the tenant to each model query so Citus routes
   * it to one shard. Default: detected on the first connection (the `citus`
   * extension is installed in the database); `true` or `false` forces it.
   */
  citus?: boolean | undefined
  /**
   * The fast path: set_config goes out as a named prepared statement, parsed
   * once per connection, then only bound and executed. For direct connections
   * and poolers that keep prepared statements per client (PgBouncer >= 1.21
   * with max_prepared_statements). Behind one that does not, the first lost
   * statement turns it off for the adapter (see the client README). Default false:
   * no session state on the server.
   */
  preparedTenantStatement?: boolean | undefined
}

const adapterOptions = z.object({
  schema: z.string().min(1).optional(),
  signingKey: z.string().optional(),
  citus: z.boolean().optional(),
  preparedTenantStatement: z.boolean().optional(),
})

/**
 * The driver adapter a tenancy client needs: Prisma's own PrismaPg over a pool
 * whose connections set the tenant in the same round trip as each query.
 * Connect it as the application role (no BYPASSRLS, not the table owner).
 */
export class TenancyPg extends PrismaPg {
  /** The connection pool, for inspection and metrics (its connections refuse tenant-less queries). */
  readonly pool: pg.Pool
  readonly #settings: TenancySettings
  #settingChosen = false
  readonly #citusForced: boolean

  constructor(connection: string | pg.PoolConfig, options: TenancyAdapterOptions = {}) {
    const config = typeof connection === 'object' && connection !== null ? connection : { connectionString: parseDatabaseUrl(connection, 'tenancyAdapter(url)') }
    const parsed = adapterOptions.safeParse(options)
    if (!parsed.success) {
      throw new TenancyError(
        'CONFIG_INVALID',
        `tenancyAdapter(url, options) got invalid options: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}. schema is a schema name; signingKey the key \`prisma-tenancy signing-key set\` printed; citus and preparedTenantStatement are true, false or left out.`,
        { cause: parsed.error },
      )
    }
    const { signingKey, citus, preparedTenantStatement } = parsed.data
    const settings: TenancySettings = {
      setting: defaultTenantSetting,
      raw: 'allow',
      sign: signingKey === undefined ? undefined : tenantSigner(signingKey),
      citus,
      prepared: preparedTenantStatement === true,
    }
    const pool = new TenancyPool(config, settings)
    super(pool, { ...(options.schema === undefined ? {} : { schema: options.schema }), disposeExternalPool: true })
    this.pool = pool
    this.#settings = settings
    this.#citusForced = citus === true
  }

  override async connect(): ReturnType<PrismaPg['connect']> {
    const adapter = await super.connect()
    markTransactionControl(adapter as unknown as PrismaPgAdapterInternals, this.pool)
    return adapter
  }

  /**
   * Whether the adapter runs in Citus mode: forced, else known from the first
   * connection's check, which this opens (into the pool, for the first query) when none was opened yet.
   */
  /** Citus mode if known (forced, or told by the first connection), else undefined. */
  citusKnown(): boolean | undefined {
    return this.#settings.citus
  }

  citusForced(): boolean {
    return this.#citusForced
  }

  async citusMode(): Promise<boolean> {
    if (this.#settings.citus === undefined) (await this.pool.connect()).release()
    return this.#settings.citus === true
  }

  /** Called by the tenancy() extension: what raw SQL through its clients may do. */
  useRawMode(raw: TenancySettings['raw']): void {
    this.#settings.raw = raw
  }

  /** Called by the tenancy() extension: the setting its policies read. */
  useSetting(setting: string): void {
    const current = this.#settings.setting
    if (this.#settingChosen && current !== setting) {
      throw new TenancyError(
        'CONFIG_INVALID',
        `This adapter already sets "${current}"; a second tenancy() extension asked for "${setting}". Use one setting name per adapter, or one adapter per client.`,
      )
    }
    this.#settings.setting = setting
    this.#settingChosen = true
  }
}

/** `new PrismaClient({ adapter: tenancyAdapter(process.env.DATABASE_URL) })` */
export function tenancyAdapter(connection: string | pg.PoolConfig, options: TenancyAdapterOptions = {}): TenancyPg {
  return new TenancyPg(connection, options)
}

const unscopedAdapters = new WeakSet<object>()

/**
 * The adapter for explicitly unscoped work: migrations, admin screens,
 * cross-tenant jobs. It is plain PrismaPg, so it sets no tenant; give it its
 * own connection string, for a role that sees every tenant: a superuser or a
 * role with BYPASSRLS, never the application's role. (The tables' owner is not
 * enough: the generated policies FORCE row-level security, which applies to
 * the owner too.) On its first connection it checks that, and refuses with
 * UNSCOPED_ROLE_FILTERED rather than return filtered, often empty, results. A
 * client on it cannot take the tenancy() extension, so it cannot be mistaken
 * for one.
 */
export function unscopedAdapter(connection: string | pg.PoolConfig, options: TenancyAdapterOptions = {}): PrismaPg {
  const config = typeof connection === 'object' && connection !== null ? connection : parseDatabaseUrl(connection, 'unscopedAdapter(url)')
  const adapter = new PrismaPg(config, options.schema === undefined ? undefined : { schema: options.schema })
  const connect = adapter.connect.bind(adapter)
  adapter.connect = async () => {
    const connected = await connect()
    const { rows } = await connected.queryRaw({ sql: unscopedRoleSql, args: [], argTypes: [] })
    const [role, seesEveryTenant] = (rows[0] ?? []) as [string | undefined, boolean | undefined]
    if (seesEveryTenant !== true) {
      await connected.dispose()
      throw new TenancyError(
        'UNSCOPED_ROLE_FILTERED',
        `unscopedAdapter(url) is connected as role "${role ?? '?'}", which row-level security filters, so it would not see every tenant's rows. Give it the URL of a role with BYPASSRLS (ALTER ROLE <admin> BYPASSRLS, as a superuser) or of a superuser; connect tenant work through tenancyAdapter(url) instead.`,
        { details: { role } },
      )
    }
    return connected
  }
  unscopedAdapters.add(adapter)
  return adapter
}

const unscopedRoleSql = 'SELECT current_user::text, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user'

export function isUnscopedAdapter(adapter: unknown): boolean {
  return typeof adapter === 'object' && adapter !== null && unscopedAdapters.has(adapter)
}

import pg from 'pg'
import { currentTenantId } from '../context/tenant-context.js'
import { TenancyError } from '../errors.js'
import { TenantQuery, type PrefixStatement } from './tenant-query.js'

/** Where TenancyPool.query records the tenant of the caller on a query config. */
export const queryTenant = Symbol('prisma-tenancy.queryTenant')

/** Shared, mutable settings of one tenancy pool and all its connections. */
export interface TenancySettings {
  /** The custom setting that carries the tenant id, e.g. `app.current_tenant`. */
  setting: string
}

export interface TenantPgClientConfig extends pg.ClientConfig {
  tenancy: TenancySettings
}

type Callback = (error: Error | null, result?: unknown) => void
export type StatementKind = 'begin' | 'set-transaction' | 'end' | 'savepoint' | 'data'

/** The statement that sets the tenant; the setting and the tenant travel as parameters. */
export const setTenantSql = 'SELECT set_config($1, $2, true)'

const beginPattern = /^\s*(?:BEGIN|START\s+TRANSACTION)\b/i
const setTransactionPattern = /^\s*SET\s+TRANSACTION\b/i
const endPattern = /^\s*(?:COMMIT|END|ROLLBACK|ABORT)\s*;?\s*$/i
const savepointPattern = /^\s*(?:SAVEPOINT|RELEASE|ROLLBACK\s+TO)\b/i

/** What a statement does to the transaction, as the driver (and the test wire recorder) see it. */
export function classify(text: unknown): StatementKind {
  if (typeof text !== 'string') return 'data'
  if (beginPattern.test(text)) return 'begin'
  if (setTransactionPattern.test(text)) return 'set-transaction'
  if (endPattern.test(text)) return 'end'
  if (savepointPattern.test(text)) return 'savepoint'
  return 'data'
}

/**
 * A pg Client that runs every data statement with the current tenant set,
 * at no extra round trip:
 * - outside a transaction, `SELECT set_config(setting, tenant, true)` and the
 *   statement go out in one write ending in one Sync: one implicit
 *   transaction, so the setting is gone when the statement completes;
 * - a `BEGIN` (and `SET TRANSACTION ...`) is held back and sent with the
 *   transaction's first statement and its set_config, again in one write; a
 *   transaction that ends before any statement never reaches the server;
 * - inside a transaction, set_config is sent again only when the tenant
 *   changes.
 * A data statement with no tenant is refused before anything is sent, so a
 * tenancy pool never runs tenant-less SQL even if a caller bypasses the
 * client extension. Nothing outlives a transaction, which is what PgBouncer's
 * transaction mode requires.
 */
export class TenantPgClient extends pg.Client {
  readonly #settings: TenancySettings
  #state: 'idle' | 'deferred' | 'open' = 'idle'
  #deferred: string[] = []
  #transactionTenant: string | undefined

  constructor(config: TenantPgClientConfig) {
    super(config)
    this.#settings = config.tenancy
    // The server's transaction status is the truth about where a connection
    // stands, whatever the caller sent (a failed COMMIT, a ROLLBACK after an error).
    const connection = (this as unknown as { connection: NodeJS.EventEmitter }).connection
    connection.on('readyForQuery', (message: { status?: string }) => {
      // A held-back BEGIN has not reached the server, so an earlier statement's
      // idle status says nothing about it.
      if (message.status === 'I' && this.#state === 'open') {
        this.#state = 'idle'
        this.#transactionTenant = undefined
      }
    })
  }

  // pg's overloads cannot be restated one by one; the adapter and pg-pool call
  // query(config), query(config, callback) and query(config, values, callback).
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override query(config: any, values?: any, callback?: any): any {
    if (config === null || typeof config !== 'object' && typeof config !== 'string') return super.query(config)
    const done: Callback | undefined = typeof values === 'function' ? values : typeof callback === 'function' ? callback : undefined
    const params: unknown = typeof values === 'function' ? undefined : values
    if (typeof config === 'object' && typeof config.submit === 'function') {
      if (this.#state === 'open' && this.#transactionTenant !== undefined) return super.query(config, values, callback)
      return this.#refuse(done, 'a custom query object (cursor, stream) outside a tenant transaction')
    }
    const text: unknown = typeof config === 'string' ? config : config.text
    const tenantId: string | undefined = (typeof config === 'object' ? config[queryTenant] : undefined) ?? currentTenantId()
    const kind = classify(text)

    if (this.#state === 'idle') {
      if (kind === 'begin' && typeof text === 'string') {
        this.#state = 'deferred'
        this.#deferred = [text]
        return this.#reply(done, 'BEGIN')
      }
      if (kind === 'end' || kind === 'savepoint') return super.query(config, values, callback)
      if (tenantId === undefined) return this.#refuse(done, 'a statement outside any tenant context')
      return this.#send(config, params, done, [this.#setTenant(tenantId)])
    }

    if (this.#state === 'deferred') {
      if (kind === 'set-transaction' && typeof text === 'string') {
        this.#deferred.push(text)
        return this.#reply(done, 'SET')
      }
      if (kind === 'end') {
        this.#state = 'idle'
        this.#deferred = []
        return this.#reply(done, typeof text === 'string' && /^\s*(?:COMMIT|END)/i.test(text) ? 'COMMIT' : 'ROLLBACK')
      }
      if (tenantId === undefined && kind !== 'savepoint') return this.#refuse(done, 'a statement in a transaction with no tenant context')
      const prefix: PrefixStatement[] = this.#deferred.map((statement) => ({ text: statement, values: [] }))
      if (tenantId !== undefined) prefix.push(this.#setTenant(tenantId))
      this.#state = 'open'
      this.#deferred = []
      this.#transactionTenant = tenantId
      return this.#send(config, params, done, prefix)
    }

    if (kind === 'data') {
      if (tenantId === undefined) return this.#refuse(done, 'a statement in a transaction with no tenant context')
      if (this.#transactionTenant === undefined) {
        this.#transactionTenant = tenantId
        return this.#send(config, params, done, [this.#setTenant(tenantId)])
      }
      if (tenantId !== this.#transactionTenant) {
        // One database transaction is one tenant, as for $transaction([...]).
        return this.#fail(
          done,
          new TenancyError(
            'TENANT_MISMATCH',
            `A transaction of tenant "${this.#transactionTenant}" was asked to run a statement as "${tenantId}". A transaction runs as one tenant: run the other tenant's work in its own transaction (forTenant(id).$transaction(...)).`,
          ),
        )
      }
    }
    return super.query(config, values, callback)
  }

  /**
   * Called by TenancyPool when the connection goes back to the pool. A caller
   * that releases it mid-transaction must not hand its tenant's transaction to
   * the next user: a held-back BEGIN is dropped, an open transaction is rolled
   * back (queued ahead of anything the next user sends).
   */
  releasedToPool(): void {
    if (this.#state === 'deferred') {
      this.#state = 'idle'
      this.#deferred = []
    } else if (this.#state === 'open') {
      super.query('ROLLBACK').catch(() => undefined)
      // From here on the connection is the next user's: their first statement must set
      // their tenant, even the same one, since the ROLLBACK ahead of it discards the setting.
      this.#state = 'idle'
      this.#transactionTenant = undefined
    }
  }

  #setTenant(tenantId: string): PrefixStatement {
    return { text: setTenantSql, values: [this.#settings.setting, tenantId] }
  }

  #send(config: object | string, params: unknown, done: Callback | undefined, prefix: PrefixStatement[]): Promise<unknown> | undefined {
    const base = typeof config === 'string' ? { text: config } : config
    const query = new TenantQuery(params === undefined ? base : { ...base, values: params }, prefix)
    const submit = (callback: Callback): void => {
      ;(query as unknown as { callback: Callback }).callback = callback
      super.query(query)
    }
    if (done !== undefined) {
      submit(done)
      return undefined
    }
    return new Promise((resolve, reject) => submit((error, result) => (error ? reject(error) : resolve(result))))
  }

  #reply(done: Callback | undefined, command: string): Promise<unknown> | undefined {
    const result = { command, rowCount: null, oid: null, rows: [], fields: [] }
    if (done === undefined) return Promise.resolve(result)
    process.nextTick(done, null, result)
    return undefined
  }

  #refuse(done: Callback | undefined, what: string): Promise<unknown> | undefined {
    return this.#fail(
      done,
      new TenancyError(
        'TENANT_MISSING',
        `Refused to send ${what} on a tenancy connection. Run database work through prisma.forTenant(id) or inside runWithTenant(id, fn); use a separate unscoped client (unscopedAdapter) for cross-tenant and admin work.`,
      ),
    )
  }

  #fail(done: Callback | undefined, error: TenancyError): Promise<unknown> | undefined {
    if (done === undefined) return Promise.reject(error)
    process.nextTick(done, error)
    return undefined
  }
}

import pg from 'pg'
import { currentTenantScope } from '../context/tenant-context.js'
import { signatureSetting } from '../context/tenant-signature.js'
import { quoteLiteral } from '../database/sql-identifiers.js'
import { TenancyError } from '../errors.js'
import { TenantQuery, type Expectation, type PrefixStatement, type QueryObserver } from './tenant-query.js'

/**
 * A query with the tenant of its caller, as TenancyPool.query reads it and
 * pg-pool hands it to the connection it gets. The caller's config travels
 * as it is: pg copies each query's config by its property descriptors, which
 * costs twice as much for an object that carries extra (symbol) keys.
 */
export class ScopedQuery {
  constructor(
    readonly config: { text?: unknown },
    readonly tenantId: string,
    /** The caller's statement is raw SQL of the application. */
    readonly raw: boolean,
  ) {}
}
/**
 * Marks the transaction control that the tenancy adapter's own transaction
 * object sends (tenancy-transaction.ts). Nothing else is control, whatever its text.
 */
export const transactionControl = Symbol('prisma-tenancy.transactionControl')
export type TransactionControl = 'begin' | 'set-transaction' | 'commit' | 'rollback' | 'savepoint'

/** What raw SQL through tenant clients may do: `tenancy({ raw })`. */
export type RawSqlMode = 'allow' | 'no-explain' | 'refuse'

/** Shared, mutable settings of one tenancy pool and all its connections. */
export interface TenancySettings {
  /** The custom setting that carries the tenant id, e.g. `app.current_tenant`. */
  setting: string
  raw: RawSqlMode
  /** The signed tenant context (`generate --signed`): the signature of a tenant id, for `<setting>_sig`. */
  sign?: ((tenantId: string) => string) | undefined
  /**
   * Citus mode (the tenant as `SET LOCAL`, see citusTenantStatements): forced by
   * `tenancyAdapter(url, { citus })`, else detected on the first connection
   * (undefined until then).
   */
  citus?: boolean | undefined
  /**
   * The fast path (`tenancyAdapter(url, { preparedTenantStatement: true })`):
   * set_config as a named statement, parsed once per connection. Turned off
   * for the whole pool the first time the server does not hold it as expected
   * (a pooler that moves clients between server connections).
   */
  prepared?: boolean | undefined
}

export interface TenantPgClientConfig extends pg.ClientConfig {
  tenancy: TenancySettings
}

type Callback = (error: Error | null, result?: unknown) => void

/** The statement that sets the tenant; the setting and the tenant travel as parameters. */
export const setTenantSql = 'SELECT set_config($1, $2, true)'
/** The same, in the signed mode: the tenant's signature in the same statement. */
export const setSignedTenantSql = 'SELECT set_config($1, $2, true), set_config($3, $4, true)'
/** The fast path's statement names; each stands for one text, so a server that holds the name holds that text. */
const preparedNames: Readonly<Record<string, string>> = { [setTenantSql]: 'prisma_tenancy_set_tenant', [setSignedTenantSql]: 'prisma_tenancy_set_signed_tenant' }

/**
 * The statement's first keyword, upper-cased, past whitespace and (nested)
 * comments. Only an early, cheap refusal of plain transaction control: the
 * guard is the server's transaction status after each statement.
 */
function firstKeyword(text: string): string {
  let index = 0
  let depth = 0
  while (index < text.length) {
    if (depth > 0) {
      if (text.startsWith('*/', index)) (depth -= 1), (index += 2)
      else if (text.startsWith('/*', index)) (depth += 1), (index += 2)
      else index += 1
    } else if (text.startsWith('/*', index)) (depth = 1), (index += 2)
    else if (text.startsWith('--', index)) {
      const end = text.indexOf('\n', index)
      index = end === -1 ? text.length : end + 1
    } else if (isSpace(text.charCodeAt(index))) index += 1
    else break
  }
  // Every statement passes here: the word is scanned by character code, without a regular expression or a copy of the text.
  let end = index
  while (end < text.length && isWordCharacter(text.charCodeAt(end))) end += 1
  return text.slice(index, end).toUpperCase()
}

/** What `\s` matches, by character code. */
function isSpace(code: number): boolean {
  return code === 32 || (code >= 9 && code <= 13) || code === 160 || code === 0xfeff || code === 0x1680 || (code >= 0x2000 && code <= 0x200a) || code === 0x2028 || code === 0x2029 || code === 0x202f || code === 0x205f || code === 0x3000
}

/** `[A-Za-z_]` by character code. */
function isWordCharacter(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95
}

const controlKeywords = new Set(['BEGIN', 'START', 'COMMIT', 'END', 'ROLLBACK', 'ABORT', 'SAVEPOINT', 'RELEASE'])

// pg Client internals used here (pg 8): the queue of queries not yet written,
// whether the connection is usable, and the named statements it has parsed.
interface ClientInternals {
  _queryQueue: unknown[]
  _queryable: boolean
  connection: NodeJS.EventEmitter & { parsedStatements: Record<string, string> }
}

/**
 * A pg Client that runs every statement with the current tenant set, at no
 * extra round trip, and takes the state of the transaction from the server:
 * - outside a transaction, `SELECT set_config(setting, tenant, true)` and the
 *   statement go out in one write ending in one Sync: one implicit
 *   transaction, so the setting is gone when the statement completes;
 * - a `BEGIN` of the adapter's transaction object (and `SET TRANSACTION ...`)
 *   is held back and sent with the transaction's first statement and its
 *   set_config, again in one write; a transaction that ends before any
 *   statement never reaches the server;
 * - inside a transaction, set_config is sent again only when the tenant
 *   changes, or after raw SQL (which may have changed the setting);
 * - every statement but the adapter's transaction control is data, sent over
 *   the extended protocol (one statement); after each, the server's
 *   ReadyForQuery status must be the one the driver expects. A statement that
 *   opened a transaction is rolled back before anything else runs; one that
 *   ended the driver's transaction leaves it refusing every further statement;
 *   both fail with RAW_TRANSACTION_CONTROL;
 * - a connection that ran raw SQL is reset (DISCARD ALL) when it goes back to
 *   the pool, so no session state of one user reaches the next.
 * A data statement with no tenant is refused before anything is sent.
 */
export class TenantPgClient extends pg.Client implements QueryObserver {
  readonly #settings: TenancySettings
  #state: 'idle' | 'deferred' | 'open' | 'ended' = 'idle'
  #deferred: string[] = []
  #transactionTenant: string | undefined
  /** Raw SQL ran in the open transaction: the tenant setting may have changed. */
  #tenantStale = false
  /** Raw SQL ran since the last reset: the session may hold its state. */
  #sessionDirty = false
  /** The query whose ReadyForQuery comes next. */
  #submitted: TenantQuery | undefined
  /** The server's status at the last ReadyForQuery was in a transaction, and no rollback of it is queued. */
  #serverInTransaction = false
  #lost: Error | undefined
  /** The fast path's named statement was sent for parsing on this connection (and not reset since). */
  #tenantStatementParsed = false

  constructor(config: TenantPgClientConfig) {
    super(config)
    this.#settings = config.tenancy
    // pg-pool removes its idle listener when it hands a connection out, and a
    // promise-based connect() (PrismaPg's startTransaction) attaches its own only
    // a microtask later. A FATAL read in the same chunk as the ReadyForQuery that
    // completed the hand-over (pg_terminate_backend, a server shutdown) is emitted
    // in between, with no listener, and would crash the process. The connection's
    // queries fail with the error anyway, and pg-pool drops a dead connection when
    // it is released.
    this.on('error', (error: Error) => {
      this.#lost ??= error
    })
    // Ahead of pg's own handler, which hands the next queued query to the server
    // right after it: a rollback decided here still goes first.
    this.#internals.connection.prependListener('readyForQuery', (message: { status?: string }) => this.#ready(message.status))
  }

  get #internals(): ClientInternals {
    return this as unknown as ClientInternals
  }

  /**
   * Run on each new physical connection before the pool hands it out (pg-pool's
   * onConnect): refuses a role for which row-level security is not the guard.
   */
  async checkRole(): Promise<void> {
    const { rows } = await super.query<{ role: string; reasons: string[]; citus: boolean; propagate: string | null }>(unsafeRoleSql)
    const [row] = rows
    if (row !== undefined && row.reasons.length > 0) {
      throw new TenancyError(
        'UNSAFE_ROLE',
        `The tenancy adapter is connected as role "${row.role}", for which row-level security does not isolate tenants: ${row.reasons.join('; ')}. Connect tenancyAdapter(url) as the application role (no SUPERUSER, no BYPASSRLS, owning no table, member of no such role); check the role with \`prisma-tenancy verify --role ${row.role}\`.`,
        { details: { role: row.role, reasons: row.reasons } },
      )
    }
    if (row !== undefined) this.#useCitus(row)
  }

  // pg's overloads cannot be restated one by one; the adapter and pg-pool call
  // query(config), query(config, callback) and query(config, values, callback).
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override query(config: any, values?: any, callback?: any): any {
    const scoped = config instanceof ScopedQuery ? config : undefined
    if (scoped !== undefined) config = scoped.config
    if (config === null || typeof config !== 'object' && typeof config !== 'string') return super.query(config)
    const done: Callback | undefined = typeof values === 'function' ? values : typeof callback === 'function' ? callback : undefined
    const params: unknown = typeof values === 'function' ? undefined : values
    if (typeof config === 'object' && typeof config.submit === 'function') {
      if (this.#state === 'open' && this.#transactionTenant !== undefined && !this.#tenantStale) return super.query(config, values, callback)
      return this.#refuse(done, 'a custom query object (cursor, stream) outside a tenant transaction')
    }
    if (this.#lost !== undefined || !this.#internals._queryable) return this.#fail(done, this.translate(this.#lost ?? new Error('the connection is closed')))
    const control: TransactionControl | undefined = typeof config === 'object' ? config[transactionControl] : undefined
    if (control !== undefined) return this.#control(control, typeof config === 'string' ? config : String(config.text), done)

    const text = typeof config === 'string' ? config : config.text
    const scope = scoped ?? currentTenantScope()
    const tenantId = scope?.tenantId
    const raw = scope?.raw === true
    if (this.#state === 'ended') return this.#fail(done, rawTransactionControl('ended the transaction this statement belongs to'))
    if (tenantId === undefined) return this.#refuse(done, this.#state === 'idle' ? 'a statement outside any tenant context' : 'a statement in a transaction with no tenant context')
    if (typeof text === 'string') {
      const refusal = this.#precheck(text, raw)
      if (refusal !== undefined) return this.#fail(done, refusal)
    }
    if (raw) this.#sessionDirty = true

    if (this.#state === 'idle') {
      if (this.#settings.citus === true) return this.#send(config, params, done, [beginStatement, this.#setTenant(tenantId)], 'wrapped', [commitStatement])
      return this.#send(config, params, done, [this.#setTenant(tenantId)], 'idle')
    }

    if (this.#state === 'deferred') {
      const prefix: PrefixStatement[] = this.#deferred.map((statement) => ({ text: statement, values: [] }))
      prefix.push(this.#setTenant(tenantId))
      this.#state = 'open'
      this.#deferred = []
      this.#transactionTenant = tenantId
      this.#tenantStale = raw
      return this.#send(config, params, done, prefix, 'transaction')
    }

    if (this.#transactionTenant !== undefined && tenantId !== this.#transactionTenant) {
      // One database transaction is one tenant, as for $transaction([...]).
      return this.#fail(
        done,
        new TenancyError(
          'TENANT_MISMATCH',
          `A transaction of tenant "${this.#transactionTenant}" was asked to run a statement as "${tenantId}". A transaction runs as one tenant: run the other tenant's work in its own transaction (forTenant(id).$transaction(...)).`,
        ),
      )
    }
    // After raw SQL the transaction's setting is whatever that SQL left: set it again.
    const prefix = this.#transactionTenant === undefined || this.#tenantStale ? [this.#setTenant(tenantId)] : []
    this.#transactionTenant = tenantId
    this.#tenantStale = raw
    return this.#send(config, params, done, prefix, 'transaction')
  }

  /**
   * Called by TenancyPool when the connection goes back to the pool. Its next
   * user must not inherit anything: a held-back BEGIN is dropped, an open
   * transaction is rolled back, and session state left by raw SQL is discarded,
   * all queued ahead of anything the next user sends.
   */
  releasedToPool(): void {
    if (this.#lost !== undefined || !this.#internals._queryable) return
    if (this.#state === 'open' || this.#serverInTransaction) this.#internal('ROLLBACK')
    this.#serverInTransaction = false
    this.#state = 'idle'
    this.#deferred = []
    this.#transactionTenant = undefined
    this.#tenantStale = false
    if (this.#sessionDirty) {
      this.#sessionDirty = false
      // Temp tables, session settings, prepared statements, WITH HOLD cursors, LISTEN, advisory locks.
      this.#internal('DISCARD ALL')
      this.#internals.connection.parsedStatements = {}
      this.#tenantStatementParsed = false
    }
  }

  /** QueryObserver: the query whose ReadyForQuery comes next. */
  submitted(query: TenantQuery): void {
    this.#submitted = query
  }

  /** QueryObserver: the error the caller sees. */
  translate(error: Error): Error {
    if (error instanceof TenancyError) return error
    const fields = error as { code?: string }
    const lost = connectionLost(error, this.#lost !== undefined || !this.#internals._queryable)
    if (lost !== undefined) return lost
    if (fields.code === '42601' && /multiple commands/.test(error.message)) {
      return new TenancyError(
        'RAW_MULTIPLE_STATEMENTS',
        'A raw SQL call held several statements. The tenancy driver sends each call as one statement (with the tenant as a parameter): make one $executeRaw/$queryRaw call per statement, inside forTenant(id).$transaction(async (tx) => ...) when they must commit together.',
        { cause: error },
      )
    }
    return error
  }

  #precheck(text: string, raw: boolean): TenancyError | undefined {
    if (raw && this.#settings.raw === 'refuse') return rawRefused('Raw SQL is refused through tenant clients (tenancy({ raw: \'refuse\' })).')
    const keyword = firstKeyword(text)
    if (raw && this.#settings.raw === 'no-explain' && keyword === 'EXPLAIN') {
      return rawRefused("EXPLAIN is refused through tenant clients (tenancy({ raw: 'no-explain' })): its estimates come from statistics over every tenant's rows.")
    }
    return controlKeywords.has(keyword) ? rawTransactionControl(`is ${keyword}`) : undefined
  }

  #ready(status: string | undefined): void {
    const submitted = this.#submitted
    this.#submitted = undefined
    const inTransaction = status === 'T' || status === 'E'
    this.#serverInTransaction = inTransaction
    if (submitted === undefined || submitted.expect === 'internal' || submitted.expect === undefined) return
    if (submitted.lostStatement !== undefined) return this.#recoverLostStatement(submitted, submitted.expect, inTransaction)
    if (submitted.foreignStatement) {
      // The query ran, with whatever that statement left: its result is not the caller's (and a write without the tenant met the policies' WITH CHECK).
      this.#settings.prepared = false
      this.#tenantStatementParsed = false
      // A later statement of this transaction sets the tenant again.
      this.#tenantStale = true
      submitted.refuse(
        new TenancyError(
          'PREPARED_STATEMENT_LOST',
          'The server connection holds another statement under the name of the tenant\'s prepared set_config (SQL on a shared server connection replaced it), so this statement did not run with its tenant and its result is withheld. The adapter now sends set_config unnamed; retry the operation, and drop tenancyAdapter(url, { preparedTenantStatement: true }) behind a pooler that shares server connections between clients without per-client prepared statements.',
        ),
      )
    }
    if (submitted.expect === 'control') {
      // A COMMIT, ROLLBACK or failed BEGIN of the adapter ended the transaction.
      if (!inTransaction && this.#state === 'open') {
        this.#state = 'idle'
        this.#transactionTenant = undefined
        this.#tenantStale = false
      }
      return
    }
    if (submitted.expect === 'wrapped' && inTransaction) {
      // Citus mode: a statement that failed left the BEGIN it was sent with open (and aborted); its error is the caller's.
      this.#internals._queryQueue.unshift(this.#query({ text: 'ROLLBACK' }, [], noop, 'internal'))
      this.#serverInTransaction = false
      if (status === 'T') submitted.refuse(rawTransactionControl('left its transaction open; it was rolled back'))
    } else if (submitted.expect === 'idle' && inTransaction) {
      this.#internals._queryQueue.unshift(this.#query({ text: 'ROLLBACK' }, [], noop, 'internal'))
      this.#serverInTransaction = false
      submitted.refuse(rawTransactionControl('opened a transaction; it was rolled back'))
    } else if (submitted.expect === 'transaction' && !inTransaction) {
      this.#state = 'ended'
      this.#transactionTenant = undefined
      submitted.refuse(rawTransactionControl('ended the transaction it ran in'))
    }
  }

  #control(control: TransactionControl, text: string, done: Callback | undefined): Promise<unknown> | undefined {
    switch (this.#state) {
      case 'idle':
        if (control === 'begin') {
          this.#state = 'deferred'
          this.#deferred = [text]
          return this.#reply(done, 'BEGIN')
        }
        return this.#send({ text }, undefined, done, [], 'control')
      case 'deferred':
        if (control === 'set-transaction') {
          this.#deferred.push(text)
          return this.#reply(done, 'SET')
        }
        if (control === 'commit' || control === 'rollback') {
          this.#state = 'idle'
          this.#deferred = []
          return this.#reply(done, control === 'commit' ? 'COMMIT' : 'ROLLBACK')
        }
        // A savepoint before the first statement: open the transaction with it (no tenant needed yet).
        this.#state = 'open'
        this.#transactionTenant = undefined
        return this.#send({ text }, undefined, done, this.#takeDeferred(), 'control')
      case 'ended':
        if (control === 'rollback') {
          this.#state = 'idle'
          return this.#reply(done, 'ROLLBACK')
        }
        return this.#fail(done, rawTransactionControl('ended this transaction earlier; it cannot commit as one'))
      default:
        return this.#send({ text }, undefined, done, [], 'control')
    }
  }

  #takeDeferred(): PrefixStatement[] {
    const prefix = this.#deferred.map((statement) => ({ text: statement, values: [] }))
    this.#deferred = []
    return prefix
  }

  /** The one statement that sets the tenant, ahead of a statement of that tenant. */
  #setTenant(tenantId: string): PrefixStatement {
    const { setting, sign } = this.#settings
    if (this.#settings.citus === true) return citusTenantStatement(setting, tenantId)
    const text = sign === undefined ? setTenantSql : setSignedTenantSql
    const values = sign === undefined ? [setting, tenantId] : [setting, tenantId, signatureSetting(setting), sign(tenantId)]
    // Raw SQL may DEALLOCATE or re-PREPARE the name: until DISCARD ALL resets the session, the statement is parsed each time.
    if (this.#settings.prepared !== true || this.#sessionDirty) return { text, values }
    const parse = !this.#tenantStatementParsed
    this.#tenantStatementParsed = true
    return { text, values, name: preparedNames[text], parse, returns: tenantId }
  }

  /**
   * The server did not hold the named set_config as this connection believed,
   * so it skipped the query: a pooler moved the client to another server
   * connection (or reset the server's session). The pool sends set_config
   * unnamed from now on. A query that opened its transaction, or ran in an
   * implicit one, is sent again (after rolling back the BEGIN it came with):
   * nothing of it ran. In a transaction where statements ran already, it fails
   * with PREPARED_STATEMENT_LOST; the transaction is aborted.
   */
  #recoverLostStatement(query: TenantQuery, expect: Expectation, inTransaction: boolean): void {
    if (this.#settings.prepared === true) {
      process.emitWarning(
        'prisma-tenancy: the server did not hold the prepared set_config statement (a pooler without per-client prepared statements?); this adapter sends it unnamed from now on.',
        { code: 'PRISMA_TENANCY_PREPARED_STATEMENT_LOST' },
      )
    }
    this.#settings.prepared = false
    this.#tenantStatementParsed = false
    const callback = (query as unknown as { callback: Callback }).callback
    // The deferred BEGIN (and SET TRANSACTION) travel ahead of set_config only with the transaction's first statement.
    const opensTransaction = expect === 'transaction' && query.prefix.length > 1
    if (expect !== 'idle' && !opensTransaction) {
      callback(
        new TenancyError(
          'PREPARED_STATEMENT_LOST',
          `The server connection did not hold the tenant's prepared statement (${query.lostStatement?.message ?? ''}), so the statement was not run and its transaction is aborted. A pooler moved this client between server connections: retry the transaction (the adapter now sends set_config unnamed), and drop tenancyAdapter(url, { preparedTenantStatement: true }) unless the pooler keeps prepared statements per client (PgBouncer >= 1.21 with max_prepared_statements).`,
          { cause: query.lostStatement },
        ),
      )
      return
    }
    const unnamed = query.prefix.map((statement) => (statement.name === undefined ? statement : { text: statement.text, values: statement.values }))
    const queue = this.#internals._queryQueue
    queue.unshift(this.#query(query.config, unnamed, callback, expect, query.suffix))
    if (inTransaction) {
      queue.unshift(this.#query({ text: 'ROLLBACK' }, [], noop, 'internal'))
      this.#serverInTransaction = false
    }
  }

  #query(config: object, prefix: readonly PrefixStatement[], callback: Callback, expect?: Expectation, suffix?: readonly PrefixStatement[]): TenantQuery {
    const query = new TenantQuery(config, prefix, this, suffix)
    ;(query as unknown as { callback: Callback }).callback = callback
    query.expect = expect
    return query
  }

  #internal(text: string): void {
    super.query(this.#query({ text }, [], noop, 'internal'))
  }

  #send(config: object | string, params: unknown, done: Callback | undefined, prefix: PrefixStatement[], expect: Expectation, suffix?: PrefixStatement[]): Promise<unknown> | undefined {
    const base = typeof config === 'string' ? { text: config } : config
    const query = params === undefined ? base : { ...base, values: params }
    if (done !== undefined) {
      super.query(this.#query(query, prefix, done, expect, suffix))
      return undefined
    }
    return new Promise((resolve, reject) => super.query(this.#query(query, prefix, (error, result) => (error ? reject(error) : resolve(result)), expect, suffix)))
  }

  /** Citus mode from the first connection's check, unless forced; refuses what cannot work on Citus. */
  #useCitus(row: { role: string; citus: boolean; propagate: string | null }): void {
    this.#settings.citus ??= row.citus
    if (this.#settings.citus !== true || !row.citus) return
    if (this.#settings.sign !== undefined) {
      throw new TenancyError(
        'CONFIG_INVALID',
        'The signed tenant context (tenancyAdapter(url, { signingKey })) does not work on Citus: its policies read the signing key from a table on the coordinator, which the shards on the workers cannot read. Use unsigned policies on Citus (`prisma-tenancy generate --citus` without --signed) and drop the signingKey option.',
      )
    }
    if (row.propagate !== 'local') {
      throw new TenancyError(
        'CONFIG_INVALID',
        `This database runs Citus, and role "${row.role}" has citus.propagate_set_commands = '${row.propagate ?? ''}': the tenant's SET LOCAL would not reach the workers, so every query would see no rows. Apply the migration \`prisma-tenancy generate --citus --app-role ${row.role}\` writes (it runs ALTER ROLE ${row.role} SET citus.propagate_set_commands = 'local'), then reconnect.`,
        { details: { role: row.role, propagate: row.propagate } },
      )
    }
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

  #fail(done: Callback | undefined, error: Error): Promise<unknown> | undefined {
    if (done === undefined) return Promise.reject(error)
    process.nextTick(done, error)
    return undefined
  }
}

const noop = (): void => undefined

const beginStatement: PrefixStatement = { text: 'BEGIN', values: [] }
const commitStatement: PrefixStatement = { text: 'COMMIT', values: [] }

/**
 * The tenant in Citus mode. Citus forwards a custom setting to the workers
 * only as `SET LOCAL` under citus.propagate_set_commands = 'local' (never
 * set_config), in a transaction block, as a statement of its own (it forwards
 * the whole query string). SET takes no parameter, so the tenant id, already
 * validated, travels as a quoted literal; the setting name is validated too.
 * Outside a transaction the statement goes out as BEGIN, this, the statement
 * and COMMIT up to one Sync: still one round trip.
 */
export function citusTenantStatement(setting: string, tenantId: string): PrefixStatement {
  return { text: `SET LOCAL ${setting} = ${quoteLiteral(tenantId)}`, values: [] }
}

/**
 * CONNECTION_LOST for an error that means the connection is gone: a FATAL
 * from the server (pg_terminate_backend, shutdown, idle timeouts), pg's own
 * "Connection terminated", or any error once the connection is known dead.
 */
export function connectionLost(error: Error, knownDead = false): TenancyError | undefined {
  const { severity } = error as { severity?: string }
  if (!knownDead && severity !== 'FATAL' && severity !== 'PANIC' && !/^Connection terminated/.test(error.message)) return undefined
  return new TenancyError(
    'CONNECTION_LOST',
    `The database connection was lost (${error.message}); the operation did not complete, and a transaction on it was rolled back by the server. Retry the operation: the pool opens a new connection.`,
    { cause: error },
  )
}

function rawTransactionControl(what: string): TenancyError {
  return new TenancyError(
    'RAW_TRANSACTION_CONTROL',
    `A raw SQL statement ${what}. Transactions through a tenancy client are opened and ended by Prisma only: use forTenant(id).$transaction(async (tx) => ...) (nested $transaction calls become savepoints) instead of BEGIN, COMMIT, ROLLBACK or SAVEPOINT in raw SQL.`,
  )
}

function rawRefused(what: string): TenancyError {
  return new TenancyError(
    'RAW_SQL_REFUSED',
    `${what} Use the model API, or run this SQL on a separate client on unscopedAdapter(adminUrl); tenancy({ raw: 'allow' }) allows it.`,
  )
}

/**
 * Why the connected role is not isolated by row-level security, in one query:
 * superuser or BYPASSRLS itself, a member of a role that is (which SET ROLE
 * reaches), or owner (or member of the owner) of a table with row-level
 * security enabled, who can turn it off.
 */
const unsafeRoleSql = `SELECT current_user::text AS role, array_remove(ARRAY[
  CASE WHEN EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolsuper AND pg_has_role(current_user, r.oid, 'MEMBER')) THEN 'it is, or is a member of, a SUPERUSER role' END,
  CASE WHEN EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolbypassrls AND pg_has_role(current_user, r.oid, 'MEMBER')) THEN 'it has, or is a member of a role with, BYPASSRLS' END,
  (SELECT 'it owns (or is a member of the owner of) ' || string_agg(c.oid::regclass::text, ', ' ORDER BY c.oid::regclass::text) || ', which row-level security protects'
     FROM pg_class c WHERE c.relrowsecurity AND pg_has_role(current_user, c.relowner, 'MEMBER'))
], NULL) AS reasons,
  EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') AS citus,
  current_setting('citus.propagate_set_commands', true) AS propagate`

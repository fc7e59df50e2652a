import pg from 'pg'

/** A statement sent ahead of the application's query in the same write. */
export interface PrefixStatement {
  readonly text: string
  readonly values: readonly string[]
  /**
   * The fast path (`preparedTenantStatement`): `text` as a named prepared
   * statement, parsed under this name when `parse` is set, else only bound.
   */
  readonly name?: string | undefined
  readonly parse?: boolean | undefined
  /** A named statement's first column must be this (set_config returns what it set), else the server's statement of that name is not ours. */
  readonly returns?: string | undefined
}

/**
 * SQLSTATEs of a named statement the server does not hold as the connection
 * believes (26000: not there, 42P05: already there): behind a pooler that
 * moves the client between server connections, or after a reset of the server's session.
 */
const lostStatementCodes = new Set(['26000', '42P05'])

// The protocol-level parts of pg's Query and Connection this class relies on;
// @types/pg does not declare them.
export interface WireConnection {
  parse(query: { text: string; name?: string; types?: unknown[] }): void
  bind(config: { portal?: string; statement?: string; values: readonly unknown[] }): void
  execute(config: { portal?: string; rows?: number }): void
  sync(): void
}
interface QueryInternals {
  queryMode?: string
  portal?: string
  _getRows(connection: WireConnection, rows: number | undefined): void
  callback?: (error: Error | null, result?: unknown) => void
  prepare(connection: WireConnection): void
  handleDataRow(msg: unknown): void
  handleCommandComplete(msg: unknown, connection: WireConnection): void
  handleError(error: Error, connection: WireConnection): void
  handleReadyForQuery(connection: WireConnection): void
}

/**
 * What the server's transaction status must be after a query (TenantPgClient):
 * `control` for the adapter's transaction control, `internal` for the driver's
 * own resets, queued ahead of the next user's statements, whose state they must not touch.
 */
export type Expectation = 'idle' | 'transaction' | 'control' | 'internal' | 'wrapped'

/** What the client learns from a query's life on the wire. */
export interface QueryObserver {
  /** The query is being written (pg prepares every extended-protocol query as it submits it): the next ReadyForQuery is its. */
  submitted(query: TenantQuery): void
  /** The error the caller sees in place of the server's (or pg's). */
  translate(error: Error): Error
}

const QueryBase = pg.Query as unknown as new (config: object) => pg.Query & QueryInternals

/**
 * A pg Query that always uses the extended protocol (one statement, its
 * parameters apart) and writes its prefix statements (BEGIN, set_config)
 * before itself, up to one Sync: the server runs them all in one round trip,
 * and in one transaction (the implicit one that ends at Sync, or the explicit
 * one the prefixed BEGIN opens). The prefix statements' replies are consumed
 * here, so the caller sees exactly the result of its own query, or the
 * refusal the client decided on when the server's ReadyForQuery came back.
 */
export class TenantQuery extends QueryBase {
  readonly #prefix: readonly PrefixStatement[]
  readonly #observer: QueryObserver | undefined
  #pendingReplies: number
  #refusal: Error | undefined
  /** Statements written after the query, before its Sync (Citus mode: the COMMIT of the transaction the prefix opened). */
  readonly #suffix: readonly PrefixStatement[]
  /** The query's own CommandComplete has come: the next ones are the suffix's. */
  #completed = false
  /** The server refused the prefix's named statement (lostStatementCodes): nothing after it ran, and the caller has not been answered. */
  #lostStatement: Error | undefined
  /** A named prefix statement returned something else than its `returns`: whatever the server holds under that name, it did not set this tenant. */
  #foreignStatement = false
  /** What the query was made of, for a retry (TenantPgClient) after a lost statement. */
  readonly config: object
  /** Set by the client that sends it. */
  expect: Expectation | undefined

  constructor(config: object, prefix: readonly PrefixStatement[], observer?: QueryObserver, suffix: readonly PrefixStatement[] = []) {
    super(config)
    this.config = config
    this.#prefix = prefix
    this.#observer = observer
    this.#pendingReplies = prefix.length
    this.#suffix = suffix
    // Several statements in one simple-protocol Query would run in one go, past
    // every check of the driver; the extended protocol takes exactly one.
    this.queryMode = 'extended'
  }

  get prefix(): readonly PrefixStatement[] {
    return this.#prefix
  }

  get suffix(): readonly PrefixStatement[] {
    return this.#suffix
  }

  get lostStatement(): Error | undefined {
    return this.#lostStatement
  }

  get foreignStatement(): boolean {
    return this.#foreignStatement
  }

  /** Fail this query with `error` when its ReadyForQuery arrives, whatever the server answered. */
  refuse(error: Error): void {
    this.#refusal = error
  }

  override prepare(connection: WireConnection): void {
    this.#observer?.submitted(this)
    for (const statement of this.#prefix) {
      const { name } = statement
      if (name === undefined) connection.parse({ text: statement.text })
      else if (statement.parse === true) connection.parse({ text: statement.text, name })
      connection.bind(name === undefined ? { values: statement.values } : { statement: name, values: statement.values })
      connection.execute({})
    }
    super.prepare(connection)
  }

  override _getRows(connection: WireConnection, rows: number | undefined): void {
    if (this.#suffix.length === 0 || rows) {
      super._getRows(connection, rows)
      return
    }
    connection.execute({ ...(this.portal === undefined ? {} : { portal: this.portal }) })
    for (const statement of this.#suffix) {
      connection.parse({ text: statement.text })
      connection.bind({ values: statement.values })
      connection.execute({})
    }
    connection.sync()
  }

  override handleDataRow(msg: unknown): void {
    if (this.#pendingReplies > 0) {
      const statement = this.#prefix[this.#prefix.length - this.#pendingReplies]
      if (statement?.returns !== undefined && (msg as { fields?: unknown[] }).fields?.[0] !== statement.returns) this.#foreignStatement = true
      return
    }
    super.handleDataRow(msg)
  }

  override handleCommandComplete(msg: unknown, connection: WireConnection): void {
    if (this.#pendingReplies > 0) {
      this.#pendingReplies -= 1
      return
    }
    if (this.#completed) return
    this.#completed = this.#suffix.length > 0
    super.handleCommandComplete(msg, connection)
  }

  override handleError(error: Error, connection: WireConnection): void {
    // An error before the prefix completed: the server skipped everything after it up to Sync, so the query did not run.
    if (this.#pendingReplies > 0 && lostStatementCodes.has((error as { code?: string }).code ?? '') && this.#prefix.some((statement) => statement.name !== undefined)) {
      this.#lostStatement = error
      return
    }
    super.handleError(this.#observer?.translate(error) ?? error, connection)
  }

  override handleReadyForQuery(connection: WireConnection): void {
    if (this.#refusal !== undefined && this.callback !== undefined) {
      this.callback(this.#refusal)
      return
    }
    super.handleReadyForQuery(connection)
  }
}


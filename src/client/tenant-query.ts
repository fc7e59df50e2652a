import pg from 'pg'

/** A statement sent ahead of the application's query in the same write. */
export interface PrefixStatement {
  readonly text: string
  readonly values: readonly string[]
}

// The protocol-level parts of pg's Query and Connection this class relies on;
// @types/pg does not declare them.
interface WireConnection {
  parse(query: { text: string; name?: string; types?: unknown[] }): void
  bind(config: { portal?: string; statement?: string; values: readonly unknown[] }): void
  execute(config: { portal?: string; rows?: number }): void
}
interface QueryInternals {
  queryMode?: string
  prepare(connection: WireConnection): void
  handleDataRow(msg: unknown): void
  handleCommandComplete(msg: unknown, connection: WireConnection): void
}

const QueryBase = pg.Query as unknown as new (config: object) => pg.Query & QueryInternals

/**
 * A pg Query that writes its prefix statements (BEGIN, set_config) before
 * itself, up to one Sync: the server runs them all in one round trip, and in
 * one transaction (the implicit one that ends at Sync, or the explicit one
 * the prefixed BEGIN opens). The prefix statements' replies are consumed here,
 * so the caller sees exactly the result of its own query.
 */
export class TenantQuery extends QueryBase {
  readonly #prefix: readonly PrefixStatement[]
  #pendingReplies: number

  constructor(config: object, prefix: readonly PrefixStatement[]) {
    super(config)
    this.#prefix = prefix
    this.#pendingReplies = prefix.length
    // A prefix needs the extended protocol: it is what carries the tenant id
    // as a parameter, and what lets several statements share one Sync.
    if (prefix.length > 0) this.queryMode = 'extended'
  }

  override prepare(connection: WireConnection): void {
    for (const statement of this.#prefix) {
      connection.parse({ text: statement.text })
      connection.bind({ values: statement.values })
      connection.execute({})
    }
    super.prepare(connection)
  }

  override handleDataRow(msg: unknown): void {
    if (this.#pendingReplies > 0) return
    super.handleDataRow(msg)
  }

  override handleCommandComplete(msg: unknown, connection: WireConnection): void {
    if (this.#pendingReplies > 0) {
      this.#pendingReplies -= 1
      return
    }
    super.handleCommandComplete(msg, connection)
  }
}

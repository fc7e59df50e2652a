import type pg from 'pg'
import { setTenantSql } from '../client/tenant-pg-client.js'

/** One write to the server that ends in a Sync (extended protocol) or one simple Query. */
export interface RoundTrip {
  /** Which pooled connection sent it, numbered from 1. */
  connection: number
  statements: string[]
}

/**
 * Records what a pool's connections send, statement by statement and round
 * trip by round trip, below every driver layer: exactly what reaches the
 * server. Attach it to a pool before the pool opens connections.
 */
export interface WireRecorder {
  readonly roundTrips: readonly RoundTrip[]
  /** Every statement's text, in order. */
  statements(): string[]
  /** Every statement but the tenancy driver's own set_config (in Citus mode, its SET LOCAL of the tenant). */
  dataStatements(): string[]
  clear(): void
}

interface WireConnection {
  parse(message: { text: string; name?: string }): void
  bind(message: { statement?: string }): void
  query(text: string): void
  sync(): void
}

export function recordWire(pool: pg.Pool): WireRecorder {
  let roundTrips: RoundTrip[] = []
  let connections = 0
  pool.on('connect', (client) => {
    const id = (connections += 1)
    const connection = (client as unknown as { connection: WireConnection }).connection
    const { parse, bind, query, sync } = connection
    let pending: string[] = []
    // A named statement (preparedTenantStatement) is parsed once, then only bound: each Bind of it is recorded as its text.
    const named = new Map<string, string>()
    connection.parse = (message) => {
      if (message.name) named.set(message.name, message.text)
      else pending.push(message.text)
      parse.call(connection, message)
    }
    connection.bind = (message) => {
      const text = message.statement ? named.get(message.statement) : undefined
      if (text !== undefined) pending.push(text)
      bind.call(connection, message)
    }
    connection.sync = () => {
      roundTrips.push({ connection: id, statements: pending })
      pending = []
      sync.call(connection)
    }
    connection.query = (text) => {
      roundTrips.push({ connection: id, statements: [text] })
      query.call(connection, text)
    }
  })
  return {
    get roundTrips() {
      return roundTrips
    },
    statements: () => roundTrips.flatMap((trip) => trip.statements),
    dataStatements: () => roundTrips.flatMap((trip) => trip.statements).filter((text) => !setsTenant(text)),
    clear: () => {
      roundTrips = []
    },
  }
}

const setsTenant = (text: string) => text === setTenantSql || /^SET LOCAL [A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]* = '/.test(text)

/**
 * What a recorded statement does to the transaction, by its text. The driver
 * does not work this way (it marks its own control and reads the server's
 * status); for a replay of what the driver sent, the text of its own control
 * statements is enough.
 */
function classify(text: string): 'begin' | 'end' | 'control' | 'data' {
  if (/^(?:BEGIN|START TRANSACTION)\b/i.test(text)) return 'begin'
  if (/^(?:COMMIT|ROLLBACK)$/i.test(text)) return 'end'
  if (/^(?:SET TRANSACTION|SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT|DISCARD ALL$)/i.test(text)) return 'control'
  return 'data'
}

/**
 * The data statements that ran with no tenant set in their transaction:
 * replays each connection's round trips, tracking explicit transactions
 * (a tenant set inside one holds until it ends) and implicit ones (a round
 * trip without BEGIN is its own transaction).
 */
export function statementsWithoutTenant(roundTrips: readonly RoundTrip[]): string[] {
  const state = new Map<number, { inTransaction: boolean; tenantSet: boolean }>()
  const offenders: string[] = []
  for (const trip of roundTrips) {
    const connection = state.get(trip.connection) ?? { inTransaction: false, tenantSet: false }
    for (const text of trip.statements) {
      const kind = classify(text)
      if (kind === 'begin') connection.inTransaction = true
      else if (kind === 'end') connection.inTransaction = connection.tenantSet = false
      else if (setsTenant(text)) connection.tenantSet = true
      else if (kind === 'data' && !connection.tenantSet) offenders.push(text)
    }
    if (!connection.inTransaction) connection.tenantSet = false
    state.set(trip.connection, connection)
  }
  return offenders
}

import type pg from 'pg'

/**
 * Records what a pool's connections write to the server: the text of every
 * statement (extended-protocol Parse or simple Query) and every round trip
 * (a Sync or a simple Query ends one). It wraps the connections themselves,
 * below the tenancy driver, so it sees exactly what reaches the wire.
 */
export interface WireLog {
  statements: string[]
  roundTrips: number
  /** Statements other than the driver's own set_config. */
  dataStatements(): string[]
  clear(): void
}

interface WireConnection {
  parse(query: { text: string }): void
  query(text: string): void
  sync(): void
}

export function recordWire(pool: pg.Pool): WireLog {
  const log: WireLog = {
    statements: [],
    roundTrips: 0,
    dataStatements: () => log.statements.filter((text) => !text.startsWith('SELECT set_config(')),
    clear: () => {
      log.statements = []
      log.roundTrips = 0
    },
  }
  pool.on('connect', (client) => {
    const connection = (client as unknown as { connection: WireConnection }).connection
    const { parse, query, sync } = connection
    connection.parse = (message) => {
      log.statements.push(message.text)
      parse.call(connection, message)
    }
    connection.query = (text) => {
      log.statements.push(text)
      log.roundTrips += 1
      query.call(connection, text)
    }
    connection.sync = () => {
      log.roundTrips += 1
      sync.call(connection)
    }
  })
  return log
}

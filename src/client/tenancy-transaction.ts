import type { IsolationLevel, SqlQuery, SqlResultSet, Transaction } from '@prisma/driver-adapter-utils'
import type pg from 'pg'
import { TenancyError } from '../errors.js'
import { transactionControl, type TransactionControl } from './tenant-pg-client.js'

/** What the tenancy adapter uses of PrismaPg's connected adapter (@prisma/adapter-pg 7, dist/index.mjs). */
interface QueryableInstance {
  queryRaw(query: SqlQuery): Promise<SqlResultSet>
  executeRaw(query: SqlQuery): Promise<number>
  onError(error: unknown): never
}
type QueryableClass = new (client: pg.PoolClient, pgOptions: unknown) => QueryableInstance
export interface PrismaPgAdapterInternals {
  constructor: { prototype: object }
  pgOptions?: unknown
  onError(error: unknown): never
  startTransaction(isolationLevel?: IsolationLevel): Promise<Transaction>
}

/**
 * Replaces PrismaPg's startTransaction on its connected adapter with one whose
 * transaction object marks the transaction control it sends (BEGIN, SET
 * TRANSACTION, COMMIT, ROLLBACK, savepoints), so the tenancy driver knows
 * Prisma's own control from the application's raw SQL without reading SQL
 * text. PrismaPg's transaction sends COMMIT and ROLLBACK through executeRaw,
 * like any statement; with `usePhantomQuery` Prisma's transaction manager
 * calls commit() and rollback() instead, which send them here, marked. Queries
 * run through PrismaPg's own PgQueryable (type parsing, error mapping), the
 * base class of its adapter; without it the client is refused (CONFIG_INVALID).
 */
export function markTransactionControl(adapter: PrismaPgAdapterInternals, pool: pg.Pool): void {
  const Queryable = Object.getPrototypeOf(adapter.constructor) as QueryableClass | null
  const prototype = Queryable?.prototype as Partial<QueryableInstance> | undefined
  if (Queryable === null || typeof prototype?.queryRaw !== 'function' || typeof prototype.executeRaw !== 'function' || typeof adapter.onError !== 'function' || typeof adapter.startTransaction !== 'function') {
    throw new TenancyError(
      'CONFIG_INVALID',
      'The installed @prisma/adapter-pg has no PgQueryable base class that prisma-tenancy recognises. prisma-tenancy supports @prisma/adapter-pg 7; install a matching version.',
    )
  }
  const pgOptions = adapter.pgOptions

  class TenancyTransaction extends Queryable implements Transaction {
    readonly provider = 'postgres'
    readonly adapterName = '@prisma/adapter-pg'
    // Prisma's transaction manager then calls commit() and rollback() rather than sending COMMIT and ROLLBACK as statements.
    readonly options = { usePhantomQuery: true }
    readonly #connection: pg.PoolClient

    constructor(connection: pg.PoolClient) {
      super(connection, pgOptions)
      this.#connection = connection
    }

    async control(kind: TransactionControl, text: string): Promise<void> {
      try {
        await this.#connection.query({ text, [transactionControl]: kind } as pg.QueryConfig)
      } catch (error) {
        this.onError(error)
      }
    }

    async commit(): Promise<void> {
      try {
        await this.control('commit', 'COMMIT')
      } finally {
        this.#connection.release()
      }
    }

    async rollback(): Promise<void> {
      try {
        await this.control('rollback', 'ROLLBACK')
      } finally {
        this.#connection.release()
      }
    }

    async createSavepoint(name: string): Promise<void> {
      await this.control('savepoint', `SAVEPOINT ${name}`)
    }

    async rollbackToSavepoint(name: string): Promise<void> {
      await this.control('savepoint', `ROLLBACK TO SAVEPOINT ${name}`)
    }

    async releaseSavepoint(name: string): Promise<void> {
      await this.control('savepoint', `RELEASE SAVEPOINT ${name}`)
    }
  }

  adapter.startTransaction = async (isolationLevel) => {
    // As PrismaPg's own startTransaction: a failure to connect is mapped like a query's.
    const connection = await pool.connect().catch((error: unknown) => adapter.onError(error))
    const transaction = new TenancyTransaction(connection)
    try {
      await transaction.control('begin', 'BEGIN')
      if (isolationLevel !== undefined) await transaction.control('set-transaction', `SET TRANSACTION ISOLATION LEVEL ${isolationLevel}`)
      return transaction
    } catch (error) {
      connection.release(error as Error)
      throw error
    }
  }
}

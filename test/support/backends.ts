import type pg from 'pg'

/**
 * The server backends of `role` on `database`, seen from an admin connection;
 * `inTransaction` keeps those inside a transaction (a statement running or idle in one).
 */
export async function backendsOf(admin: pg.Client, database: string, role: string, options: { inTransaction?: boolean } = {}): Promise<number[]> {
  const { rows } = await admin.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND usename = $2 AND pid <> pg_backend_pid()${options.inTransaction ? ' AND xact_start IS NOT NULL' : ''}`,
    [database, role],
  )
  return rows.map((row) => row.pid)
}

/**
 * Waits, at most `attempts` times 50 ms, until `role` has no backend left on
 * `database`: a pool's end() resolves before its sockets close, and a database
 * dropped WITH (FORCE) before then terminates them under a client that is shutting down.
 */
export async function waitForNoBackends(admin: pg.Client, database: string, role: string, attempts = 100): Promise<void> {
  for (let attempt = 0; attempt < attempts; attempt += 1) {
    if ((await backendsOf(admin, database, role)).length === 0) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

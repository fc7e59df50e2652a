import { withClient } from '../../src/database/admin.js'
import { databaseName } from '../../src/database/connection-url.js'
import { quoteIdent } from '../../src/database/sql-identifiers.js'

/**
 * Gives PUBLIC back TEMPORARY on the test database, as every database has it by default. The
 * fixtures revoke it (as `generate --app-role` does); the driver's session reset must hold without
 * that revoke too, so its temp-table repros run with it.
 */
export function allowTemporaryTables(adminUrl: string): Promise<unknown> {
  return withClient(adminUrl, (client) => client.query(`GRANT TEMPORARY ON DATABASE ${quoteIdent(databaseName(adminUrl))} TO PUBLIC`))
}

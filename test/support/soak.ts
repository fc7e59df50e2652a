import pg from 'pg'
import { onTestFinished } from 'vitest'
import { soakFixture } from '../../scripts/soak/soak.js'
import type { TestDatabase } from '../../src/testing/test-server.js'
import { waitForNoBackends } from './backends.js'

/**
 * The soak's clients for one test, closed when the test finishes; the
 * database is dropped only once their connections are really gone, and
 * `afterClose` (stopping a PgBouncer in front, say) runs after that.
 */
export function useSoakFixture(database: TestDatabase, options: { appUrl?: string; afterClose?: () => Promise<void> } = {}): ReturnType<typeof soakFixture> {
  const fixture = soakFixture(database, options.appUrl)
  onTestFinished(async () => {
    await fixture.close()
    const admin = new pg.Client({ connectionString: database.adminUrl })
    await admin.connect()
    try {
      await waitForNoBackends(admin, database.name, database.appRole.name)
    } finally {
      await admin.end()
    }
    await options.afterClose?.()
  })
  return fixture
}

export { createTestDatabase, defaultAppRole, startTestServer } from './test-server.js'
export type { TestDatabase, TestServer, TestServerInfo, TestServerOptions } from './test-server.js'
export { tenancyGlobalSetup, useTestDatabase } from './vitest.js'

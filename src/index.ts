// The public API of prisma-tenancy. Everything not exported here is internal.
export { TenancyError, isTenancyError, tenancyErrorCodes } from './errors.js'
export type { TenancyErrorCode, TenancyErrorOptions } from './errors.js'
export { migrateDeploy, migrateDev, migrateStatus, markRolledBack } from './migrate/migrate.js'
export type { MigrateDeployResult, MigrateDevResult, MigrateOptions, MigrateStatusResult } from './migrate/migrate.js'

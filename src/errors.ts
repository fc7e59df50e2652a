/**
 * Every failure prisma-tenancy raises on purpose is a TenancyError with a
 * stable `code`. Callers branch on the code; the message is for people and
 * always says what to do next. The underlying error, when there is one, is
 * attached as `cause`.
 */
export const tenancyErrorCodes = [
  // Tenant context (client extension, runWithTenant)
  'TENANT_MISSING',
  'TENANT_INVALID',
  'TENANT_MISMATCH',
  'ADAPTER_REQUIRED',
  // The tenancy driver
  'CONNECTION_LOST',
  'RAW_TRANSACTION_CONTROL',
  'RAW_MULTIPLE_STATEMENTS',
  'RAW_SQL_REFUSED',
  'UNSAFE_ROLE',
  'UNSCOPED_ROLE_FILTERED',
  'PREPARED_STATEMENT_LOST',
  // Configuration and input
  'CONFIG_INVALID',
  'DATABASE_URL_MISSING',
  'DATABASE_UNREACHABLE',
  'SCHEMA_NOT_FOUND',
  'SCHEMA_INVALID',
  'NO_TENANT_COLUMN',
  // Tables partitioned by tenant (/// @tenancy.partitioned)
  'PARTITION_KEY_INVALID',
  'PARTITION_ROWS_IN_DEFAULT',
  // The signed tenant context
  'SIGNING_KEY_EXISTS',
  // Migrations
  'MIGRATION_NAME_INVALID',
  'MIGRATION_FAILED',
  // Adopting an existing database (prisma-tenancy adopt)
  'ADOPT_NOT_READY',
  'ADOPT_UNSUPPORTED_CHANGE',
  'ADOPT_DATA_CONFLICT',
  'ADOPT_BATCH_SIZE_REQUIRED',
  // Tenant lifecycle (tenant create / list / remove / export / import / rotate)
  'TENANT_UNKNOWN',
  'TENANT_EXISTS',
  'CONFIRMATION_REQUIRED',
  'IMPORT_INVALID',
  'REMOVE_INTERRUPTED',
  'REMOVE_INCOMPLETE',
  // Databases the toolkit starts or creates
  'EMBEDDED_POSTGRES_FAILED',
  'DATABASE_SETUP_FAILED',
  // Resolving the tenant of an HTTP request
  'JWKS_UNAVAILABLE',
  'TENANT_LOOKUP_FAILED',
  // prisma-tenancy init: a role of that name exists and was not created by init
  'ROLE_CONFLICT',
  'PERMISSION_DENIED',
] as const

export type TenancyErrorCode = (typeof tenancyErrorCodes)[number]

export interface TenancyErrorOptions {
  cause?: unknown
  /** Structured facts about the failure, for programs (never secrets). */
  details?: Record<string, unknown>
}

export class TenancyError extends Error {
  override readonly name = 'TenancyError'
  readonly code: TenancyErrorCode
  readonly details: Record<string, unknown>

  constructor(code: TenancyErrorCode, message: string, options: TenancyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.details = options.details ?? {}
  }
}

export function isTenancyError(error: unknown, code?: TenancyErrorCode): error is TenancyError {
  return error instanceof TenancyError && (code === undefined || error.code === code)
}

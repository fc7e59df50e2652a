import { TenancyError, tenancyErrorCodes, type TenancyErrorCode } from '../errors.js'

/**
 * Errors of tenant operations as the caller should see them: our own
 * TenancyErrors unwrapped from Prisma's wrappers, and the database's
 * row-level security refusal of a write (SQLSTATE 42501 on WITH CHECK) as
 * TENANT_MISMATCH with the original error attached.
 */
export function asTenancyError(error: unknown): unknown {
  for (let cause: unknown = error, depth = 0; cause instanceof Error && depth < 5; cause = cause.cause, depth += 1) {
    if (cause instanceof TenancyError) return cause
  }
  // Prisma turns an error with a `code` thrown below it (by the tenancy driver, say) into
  // a PrismaClientKnownRequestError that keeps the code and the message.
  const code = (error as { code?: unknown } | null)?.code
  if (error instanceof Error && typeof code === 'string' && (tenancyErrorCodes as readonly string[]).includes(code)) {
    return new TenancyError(code as TenancyErrorCode, error.message, { cause: error })
  }
  if (isRowSecurityViolation(error)) {
    return new TenancyError(
      'TENANT_MISMATCH',
      "The database refused to write a row that the current tenant's row-level security policy does not allow (SQLSTATE 42501), usually because its tenant column holds another tenant's id. Set the tenant column to the current tenant, or leave it out where its default is the current tenant's setting; to write another tenant's rows use forTenant(thatTenant).",
      { cause: error },
    )
  }
  return error
}

// Prisma reports the driver's error under meta.driverAdapterError.cause.
// SQLSTATE 42501 alone also means "permission denied", hence the message test.
function isRowSecurityViolation(error: unknown): boolean {
  const cause = (error as { meta?: { driverAdapterError?: { cause?: { originalCode?: unknown; originalMessage?: unknown } } } } | null)?.meta
    ?.driverAdapterError?.cause
  return cause?.originalCode === '42501' && typeof cause.originalMessage === 'string' && cause.originalMessage.includes('row-level security policy')
}

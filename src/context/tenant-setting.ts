import { z } from 'zod'
import { TenancyError } from '../errors.js'

/** The custom PostgreSQL setting that carries the tenant, unless configured otherwise. */
export const defaultTenantSetting = 'app.current_tenant'
/** The Prisma field that holds the tenant, unless configured otherwise. */
export const defaultTenantField = 'tenantId'

// One rule for the client, the generator and the verifier: a policy written for a
// setting must be one the client can set.
const tenancyNames = z.object({
  setting: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$/, 'must be a custom setting name: two identifiers joined by a dot, such as app.current_tenant')
    .default(defaultTenantSetting),
  tenantField: z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'must be a Prisma field name, such as tenantId').default(defaultTenantField),
})

/** Validates the tenant setting and field names given by a user (options or CLI flags). */
export function parseTenancyNames(input: { setting?: string | undefined; tenantField?: string | undefined }): { setting: string; tenantField: string } {
  const parsed = tenancyNames.safeParse({ setting: input.setting, tenantField: input.tenantField })
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new TenancyError('CONFIG_INVALID', `The option ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'is invalid'}. Fix it and run again.`, {
      cause: parsed.error,
    })
  }
  return parsed.data
}

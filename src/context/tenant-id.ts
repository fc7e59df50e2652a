import { z } from 'zod'
import { TenancyError } from '../errors.js'

/**
 * The default tenant id: what fits a PostgreSQL identifier-sized slug. It
 * excludes quotes, `;`, NUL and whitespace, so an id never needs quoting in
 * logs or SQL comments (the id itself only ever reaches SQL as a parameter).
 */
const defaultTenantIdPattern = /^[A-Za-z0-9_-]{1,63}$/
export const defaultTenantIdSchema = z.string().regex(defaultTenantIdPattern, 'a tenant id is 1-63 characters of letters, digits, "_" and "-"')

/** Anything that can check a tenant id: a zod string schema such as `z.uuid()`. */
export interface TenantIdSchema {
  safeParse(value: unknown): { success: true; data: unknown } | { success: false; error: { issues: ReadonlyArray<{ message: string }> } }
}

export type TenantIdValidator = (tenantId: unknown) => string

export function tenantIdValidator(schema: TenantIdSchema = defaultTenantIdSchema): TenantIdValidator {
  return (tenantId) => {
    // Every operation and forTenant call passes here: a valid id of the default schema is its own result, without zod's parse.
    if (schema === defaultTenantIdSchema && typeof tenantId === 'string' && defaultTenantIdPattern.test(tenantId)) return tenantId
    const parsed = schema.safeParse(tenantId)
    if (!parsed.success || typeof parsed.data !== 'string') {
      const reason = parsed.success ? 'the schema did not produce a string' : parsed.error.issues.map((issue) => issue.message).join('; ')
      throw new TenancyError(
        'TENANT_INVALID',
        `Invalid tenant id ${describe(tenantId)}: ${reason}. Pass the id exactly as stored in the tenant column; check where it comes from (a header, a token claim) before calling forTenant or runWithTenant.`,
        { details: { reason } },
      )
    }
    return parsed.data
  }
}

function describe(value: unknown): string {
  if (typeof value !== 'string') return `of type ${value === null ? 'null' : typeof value}`
  const shown = value.length > 80 ? `${value.slice(0, 80)}…` : value
  return JSON.stringify(shown)
}

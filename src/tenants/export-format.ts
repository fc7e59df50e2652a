import { z } from 'zod'

/**
 * The export format, JSON Lines: one header line, then one line per row. Every
 * value is PostgreSQL's own text form of it (or null), which the column's type
 * parses back exactly: numeric and bigint digits, json text, bytea as \x hex,
 * timestamps with their offset, arrays as {...} literals.
 */
export const EXPORT_FORMAT = 'prisma-tenancy-export'
export const EXPORT_VERSION = 1

export const exportColumnSchema = z.object({ name: z.string().min(1), type: z.string().min(1) })

export const exportHeaderSchema = z.object({
  format: z.literal(EXPORT_FORMAT),
  version: z.literal(EXPORT_VERSION),
  tenant: z.string().min(1),
  /** The latest migration applied to the exporting database, when it has Prisma's migrations table. */
  migration: z.string().nullable(),
  exportedAt: z.string(),
  /** In insert order: the registry first, then parents before children. */
  tables: z.array(
    z.object({
      table: z.string().min(1),
      model: z.string().min(1),
      registry: z.boolean(),
      column: z.string().min(1),
      columns: z.array(exportColumnSchema).min(1),
      rows: z.number().int().min(0),
    }),
  ).min(1),
})

export type ExportHeader = z.infer<typeof exportHeaderSchema>

export const exportRowSchema = z.object({ table: z.string().min(1), row: z.record(z.string(), z.string().nullable()) })

export type ExportRow = z.infer<typeof exportRowSchema>

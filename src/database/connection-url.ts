import { z } from 'zod'
import { TenancyError } from '../errors.js'

const postgresUrl = z
  .string()
  .trim()
  .min(1)
  .refine((value) => /^postgres(ql)?:\/\//.test(value), 'must start with postgresql:// or postgres://')
  .refine((value) => URL.canParse(value), 'is not a valid URL')

/** Validates a connection string at the edge and returns it normalised. */
export function parseDatabaseUrl(value: unknown, source = 'DATABASE_URL'): string {
  if (value === undefined || value === null || value === '') {
    throw new TenancyError(
      'DATABASE_URL_MISSING',
      `${source} is not set. Set it to a PostgreSQL connection string such as postgresql://user:password@localhost:5432/app, or pass --database-url.`,
    )
  }
  const parsed = postgresUrl.safeParse(value)
  if (!parsed.success) {
    throw new TenancyError(
      'CONFIG_INVALID',
      `${source} ${parsed.error.issues[0]?.message ?? 'is invalid'}. Use a PostgreSQL connection string such as postgresql://user:password@localhost:5432/app.`,
      { cause: parsed.error },
    )
  }
  return parsed.data
}

/** The same server and credentials, another database. */
export function withDatabase(url: string, database: string): string {
  const next = new URL(url)
  next.pathname = `/${encodeURIComponent(database)}`
  return next.toString()
}

/** The same server and database, other credentials. */
export function withCredentials(url: string, user: string, password: string): string {
  const next = new URL(url)
  next.username = encodeURIComponent(user)
  next.password = encodeURIComponent(password)
  return next.toString()
}

export function databaseName(url: string): string {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''))
  return name === '' ? 'postgres' : name
}

/** A URL safe to print: the password is masked. */
export function redactUrl(url: string): string {
  const next = new URL(url)
  if (next.password !== '') next.password = '***'
  return next.toString()
}

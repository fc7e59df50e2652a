/** Quotes an SQL identifier (table, role, database name) for PostgreSQL. */
export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new Error(`identifier contains a NUL byte: ${JSON.stringify(name)}`)
  return `"${name.replaceAll('"', '""')}"`
}

/** Quotes an SQL string literal for PostgreSQL (standard_conforming_strings on). */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('string literal contains a NUL byte')
  return `'${value.replaceAll("'", "''")}'`
}

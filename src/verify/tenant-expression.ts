import { SIGNED_TENANT_FUNCTION } from '../policy/signed-context.js'

/**
 * Decides whether a policy expression, as PostgreSQL prints it back
 * (pg_get_expr), confines rows to the current tenant: it must imply
 * `<tenant column> = <tenant setting>`. Recognised on the printed form after
 * normalising casts, the `( SELECT ... AS alias)` wrapper that keeps the
 * setting from being evaluated per row, quoting and parentheses, never by
 * policy name. Anything not recognised counts as not tenant-scoped: a false
 * alarm is fixable, a false pass is a leak.
 */
export function isTenantScoped(expression: string | null, tenantColumn: string, setting: string): boolean {
  if (expression === null) return false
  return scoped(expression, tenantColumn.toLowerCase(), setting.toLowerCase())
}

function scoped(expression: string, column: string, setting: string): boolean {
  const text = unwrap(expression)
  const disjuncts = splitTopLevel(text, 'OR')
  if (disjuncts.length > 1) return disjuncts.every((part) => scoped(part, column, setting))
  const conjuncts = splitTopLevel(text, 'AND')
  if (conjuncts.length > 1) return conjuncts.some((part) => scoped(part, column, setting))
  const sides = splitTopLevel(text, '=')
  if (sides.length !== 2) return false
  const [left, right] = sides.map(normaliseOperand) as [string, string]
  return (isColumn(left, column) && isSetting(right, setting)) || (isColumn(right, column) && isSetting(left, setting))
}

/** Removes parentheses that enclose the whole expression. */
function unwrap(expression: string): string {
  let text = expression.trim()
  while (text.startsWith('(') && closingParen(text, 0) === text.length - 1) text = text.slice(1, -1).trim()
  return text
}

function closingParen(text: string, open: number): number {
  let depth = 0
  for (let index = open; index < text.length; index++) {
    const char = text[index]
    if (char === "'" || char === '"') {
      index = text.indexOf(char, index + 1)
      if (index === -1) return -1
    } else if (char === '(') depth++
    else if (char === ')' && --depth === 0) return index
  }
  return -1
}

/** Splits on an operator or keyword outside parentheses and quotes. */
function splitTopLevel(text: string, separator: 'OR' | 'AND' | '='): string[] {
  const parts: string[] = []
  let depth = 0
  let start = 0
  for (let index = 0; index < text.length; index++) {
    const char = text[index]
    if (char === "'" || char === '"') {
      const end = text.indexOf(char, index + 1)
      if (end === -1) return [text]
      index = end
    } else if (char === '(') depth++
    else if (char === ')') depth--
    else if (depth === 0) {
      if (separator === '=') {
        // a bare `=`, not part of <=, >=, <>, != or =>
        if (char === '=' && !'<>!='.includes(text[index - 1] ?? '') && !'>='.includes(text[index + 1] ?? '')) {
          parts.push(text.slice(start, index))
          start = index + 1
        }
      } else if (text.startsWith(` ${separator} `, index - 1) && char === separator[0]) {
        parts.push(text.slice(start, index - 1))
        start = index + separator.length + 1
        index = start - 1
      }
    }
  }
  parts.push(text.slice(start))
  return parts.map((part) => part.trim())
}

function normaliseOperand(operand: string): string {
  let text = unwrap(operand)
  for (;;) {
    const before = text
    text = unwrap(text)
    // `( SELECT expr AS alias)`: a scalar subquery evaluated once per statement
    const subquery = /^SELECT\s+([\s\S]+?)(?:\s+AS\s+(?:"[^"]*"|\w+))?$/i.exec(text)
    if (subquery?.[1] !== undefined) text = subquery[1]
    text = stripTrailingCast(text)
    if (text === before) return text
  }
}

/** Drops `::type` casts outside quotes, anywhere in the text. */
function stripCasts(text: string): string {
  let out = ''
  for (let index = 0; index < text.length; index++) {
    const char = text[index]!
    if (char === "'" || char === '"') {
      const end = text.indexOf(char, index + 1)
      out += text.slice(index, end === -1 ? text.length : end + 1)
      index = end === -1 ? text.length : end
    } else if (char === ':' && text[index + 1] === ':') {
      const type = /^::\s*(?:"[^"]+"|[a-z_][\w.]*)(?:\s+(?:varying|precision|without time zone|with time zone))*(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])?/i.exec(text.slice(index))
      index += (type?.[0].length ?? 2) - 1
    } else out += char
  }
  return out
}

function stripTrailingCast(text: string): string {
  return stripCasts(text).trim()
}

function isColumn(operand: string, column: string): boolean {
  const name = operand.replace(/^(?:"[^"]+"|\w+)\./, '').replace(/^"(.*)"$/, '$1').toLowerCase()
  return name === column
}

/**
 * current_setting('<setting>'[, true|false]), possibly inside NULLIF(..., ''), or the signed
 * context's function (whose soundness the signed-context check proves separately).
 */
function isSetting(operand: string, setting: string): boolean {
  const text = stripCasts(operand).replace(/\s+/g, ' ').toLowerCase()
  if (text === `${SIGNED_TENANT_FUNCTION}()`) return true
  const escaped = setting.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replaceAll("'", "''")
  const call = `current_setting\\( ?'${escaped}'(?: ?, ?(?:true|false))? ?\\)`
  return new RegExp(`^(?:${call}|nullif\\( ?${call} ?, ?'' ?\\))$`).test(text)
}

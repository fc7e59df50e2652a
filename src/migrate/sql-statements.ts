/**
 * A migration script cut into its statements at the top-level `;`, past
 * quoted strings ('...', E'...' with backslash escapes), quoted identifiers,
 * dollar-quoted bodies ($tag$...$tag$) and comments (`--`, nested `/* *\/`).
 * Empty statements are dropped; each statement keeps its own text.
 */
export function splitStatements(script: string): string[] {
  const statements: string[] = []
  let start = 0
  let index = 0
  const skipTo = (end: number) => {
    index = end === -1 ? script.length : end
  }
  while (index < script.length) {
    const char = script.charAt(index)
    const next = script.charAt(index + 1)
    if (char === ';') {
      statements.push(script.slice(start, index))
      index += 1
      start = index
    } else if (char === '-' && next === '-') skipTo(script.indexOf('\n', index))
    else if (char === '/' && next === '*') {
      let depth = 1
      index += 2
      while (index < script.length && depth > 0) {
        if (script.startsWith('/*', index)) (depth += 1), (index += 2)
        else if (script.startsWith('*/', index)) (depth -= 1), (index += 2)
        else index += 1
      }
    } else if (char === "'" || char === '"') {
      const escapes = char === "'" && /[Ee]/.test(script.charAt(index - 1)) && !/[A-Za-z0-9_]/.test(script.charAt(index - 2))
      index += 1
      while (index < script.length) {
        const current = script.charAt(index)
        if (escapes && current === '\\') index += 2
        else if (current === char && script.charAt(index + 1) === char) index += 2
        else if (current === char) break
        else index += 1
      }
      index += 1
    } else if (char === '$' && !/[A-Za-z0-9_]/.test(script.charAt(index - 1))) {
      const tag = /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/.exec(script.slice(index))?.[0]
      if (tag === undefined) index += 1
      else {
        const end = script.indexOf(tag, index + tag.length)
        skipTo(end === -1 ? -1 : end + tag.length)
      }
    } else index += 1
  }
  statements.push(script.slice(start))
  return statements.map((statement) => statement.trim()).filter((statement) => !/^(?:\s|--[^\n]*(?:\n|$))*$/.test(statement))
}

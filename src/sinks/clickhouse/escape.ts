/**
 * SQL literals and identifiers for ClickHouse servers without query parameters (before 19.x: the
 * Debian 18.16 server). Every value that reaches SQL text goes through these two functions; a
 * server with parameters gets values as `param_*` instead, and only identifiers are quoted.
 *
 * ClickHouse reads quoted strings and back-quoted identifiers with the same escape rules: a
 * backslash escapes the next character, and `\xHH` is a byte. The functions escape the backslash
 * and the quote character, and write every control character (C0 and DEL) as `\xHH`, so the text
 * of a literal is one line of printable characters whatever the input, and nothing in it can end
 * the literal early: the only unescaped quote is the closing one. Characters above U+007F pass as
 * they are (UTF-8 in the request body). A lone UTF-16 surrogate cannot be encoded in UTF-8 and
 * becomes U+FFFD on the wire; it cannot match a stored value either, since ClickHouse refuses to
 * store one (see verdict.ts).
 */

const NEEDS_ESCAPE = /[\x00-\x1f\x7f\\'`]/

function escapeWith(value: string, quote: "'" | '`'): string {
  if (!NEEDS_ESCAPE.test(value)) return quote + value + quote
  let out = quote
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]
    const code = value.charCodeAt(i)
    if (ch === '\\' || ch === quote) out += '\\' + ch
    else if (code < 0x20 || code === 0x7f) out += '\\x' + code.toString(16).padStart(2, '0')
    else out += ch
  }
  return out + quote
}

/** A ClickHouse string literal: `'it\'s'`. */
export function quoteString(value: string): string {
  if (typeof value !== 'string') throw new TypeError(`quoteString expects a string, got ${typeof value}`)
  return escapeWith(value, "'")
}

/** A ClickHouse identifier (database, table, column): `` `my table` ``. */
export function quoteIdentifier(name: string): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new TypeError('an identifier must be a non-empty string')
  }
  return escapeWith(name, '`')
}

/** A number for SQL text: only safe integers, written in decimal. */
export function integerLiteral(value: number): string {
  if (!Number.isSafeInteger(value)) throw new TypeError(`not a safe integer: ${String(value)}`)
  return String(value)
}

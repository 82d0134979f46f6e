/**
 * JSON text for strings, faster than JSON.stringify for the common case: a string with nothing to
 * escape (no control character, quote, backslash or surrogate) is wrapped in quotes as it is;
 * anything else goes through JSON.stringify, so the output is always exactly JSON.stringify's.
 */
export function quoteJson(value: string): string {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(value)
  }
  return '"' + value + '"'
}

/** JSON text of an array of strings, as JSON.stringify writes it. */
export function quoteJsonArray(values: readonly string[]): string {
  if (values.length === 0) return '[]'
  let out = '[' + quoteJson(values[0])
  for (let i = 1; i < values.length; i++) out += ',' + quoteJson(values[i])
  return out + ']'
}

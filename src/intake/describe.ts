/**
 * How values appear in error messages: strings quoted and cut to 40 characters, containers named
 * by kind rather than printed, so a 1 MB metadata blob never ends up in a 400 body or a log line.
 * Only the error path calls these.
 */

const MAX_SHOWN = 40

export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return quote(value)
    case 'number':
    case 'boolean':
      return String(value)
    case 'undefined':
      return 'nothing'
    case 'bigint':
      return `${value}n`
    case 'object':
      if (value === null) return 'null'
      return Array.isArray(value) ? 'an array' : 'an object'
    default:
      return `a ${typeof value}`
  }
}

/** `"value"`, cut to at most 40 characters (the last one an ellipsis), escaped as JSON. */
export function quote(value: string): string {
  return JSON.stringify(value.length > MAX_SHOWN ? value.slice(0, MAX_SHOWN - 1) + '…' : value)
}

/** `metadata.a.b[2]["key with space"]`, for a path collected while unwinding a failed walk. */
export function formatPath(root: string, path: readonly (string | number)[]): string {
  let out = root
  for (const step of path) {
    if (typeof step === 'number') out += `[${step}]`
    else if (isPlainName(step)) out += `.${step}`
    else out += `[${quote(step)}]`
    if (out.length > 120) return out.slice(0, 119) + '…'
  }
  return out
}

function isPlainName(name: string): boolean {
  if (name.length === 0 || name.length > MAX_SHOWN) return false
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    const letter = (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 36
    if (!letter && !(i > 0 && c >= 48 && c <= 57) && !(i > 0 && c === 45)) return false
  }
  return true
}

/**
 * The JSON text of bodies and values: reading a body (UTF-8, BOM, nesting depth) and quoting
 * strings the way JSON.stringify does.
 */
import { isUtf8 } from 'node:buffer'
import { spillwayError } from '../errors.ts'

/** The config default of `maxDepth` (levels inside `metadata`). */
export const DEFAULT_MAX_DEPTH = 8
/** Levels of an event around its metadata's own: the event object and the metadata object. */
export const EVENT_LEVELS = 2

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

/**
 * The text of a JSON body. Invalid UTF-8 is refused rather than decoded: `toString` would turn it
 * into U+FFFD and store something the client never sent. A leading UTF-8 BOM is dropped, so every
 * route reads the same bytes the same way. `isUtf8` is native (simdutf): tens of nanoseconds for
 * an event, so the byte-by-byte search for the culprit runs on the error path only.
 */
export function jsonText(bytes: Buffer, ndjson = false): string {
  if (!isUtf8(bytes)) {
    const at = invalidUtf8At(bytes)
    const line = ndjson ? `, line ${lineOf(bytes, at)}` : ''
    throw spillwayError(
      'SPW_ERR_INTAKE_BAD_ENCODING',
      `body is not valid UTF-8: byte ${at} (0x${bytes[at].toString(16).padStart(2, '0')})${line}; send UTF-8 JSON`,
    )
  }
  const bom = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf
  return bytes.toString('utf8', bom ? 3 : 0)
}

/** `text` without a leading BOM (U+FEFF), for bodies that arrive as strings. */
export function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

/**
 * Why `text` may not be parsed: it nests arrays and objects more than `limit` levels deep
 * (outside strings). JSON.parse takes millions of levels, but slowly and with hundreds of bytes
 * per level, so a 16 MB body of `[` would block the event loop for seconds; this refuses it first.
 * Counting `{` and `[` with the native indexOf clears almost every event (no more openers than
 * the limit cannot nest deeper); only a body with more runs the scan, one pass that skips strings
 * with indexOf too.
 */
export function nestingError(text: string, limit: number): string | undefined {
  if (openersUpTo(text, limit) <= limit) return undefined
  return deepestBeyond(text, limit, 0, text.length) ? `nested more than ${limit} levels deep` : undefined
}

/**
 * The same for NDJSON, line by line (a line is one event; depth does not carry over). The next
 * `{` and `[` are remembered across lines, so a body whose lines hold few of them is still one
 * linear pass, never a search from every line to the end of the body.
 */
export function ndjsonNestingError(text: string, limit: number): string | undefined {
  let brace = text.indexOf('{')
  let bracket = text.indexOf('[')
  let line = 0
  for (let start = 0; start <= text.length; ) {
    let end = text.indexOf('\n', start)
    if (end === -1) end = text.length
    line++
    let count = 0
    while (brace !== -1 && brace < end && count <= limit) {
      count++
      brace = text.indexOf('{', brace + 1)
    }
    while (bracket !== -1 && bracket < end && count <= limit) {
      count++
      bracket = text.indexOf('[', bracket + 1)
    }
    if (count > limit) {
      if (deepestBeyond(text, limit, start, end))
        return `line ${line} is nested more than ${limit} levels deep`
      if (brace !== -1 && brace < end) brace = text.indexOf('{', end)
      if (bracket !== -1 && bracket < end) bracket = text.indexOf('[', end)
    }
    start = end + 1
  }
  return undefined
}

/** The `{` and `[` in `text`, counted up to limit + 1. */
function openersUpTo(text: string, limit: number): number {
  let count = 0
  for (let i = text.indexOf('{'); i !== -1; i = text.indexOf('{', i + 1)) if (++count > limit) return count
  for (let i = text.indexOf('['); i !== -1; i = text.indexOf('[', i + 1)) if (++count > limit) return count
  return count
}

function deepestBeyond(text: string, limit: number, from: number, to: number): boolean {
  let depth = 0
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      // Skip the string: its closing quote is the next one not escaped by an odd run of `\`.
      let close = text.indexOf('"', i + 1)
      while (close !== -1 && close < to && text.charCodeAt(close - 1) === 0x5c) {
        let k = close - 1
        while (text.charCodeAt(k) === 0x5c) k--
        if ((close - k) % 2 === 1) break
        close = text.indexOf('"', close + 1)
      }
      if (close === -1 || close >= to) return false
      i = close
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true
    } else if (c === 0x5d || c === 0x7d) {
      depth--
    }
  }
  return false
}

/** The offset of the first byte that does not belong to a well-formed UTF-8 sequence. */
function invalidUtf8At(bytes: Buffer): number {
  let i = 0
  while (i < bytes.length) {
    const b = bytes[i]
    if (b < 0x80) {
      i++
      continue
    }
    // Lead bytes and the range of their first continuation byte (RFC 3629 table): this refuses
    // overlong forms, encoded surrogates (ED A0..BF) and code points beyond U+10FFFF.
    let length: number
    let low = 0x80
    let high = 0xbf
    if (b >= 0xc2 && b <= 0xdf) length = 2
    else if (b >= 0xe0 && b <= 0xef) {
      length = 3
      if (b === 0xe0) low = 0xa0
      if (b === 0xed) high = 0x9f
    } else if (b >= 0xf0 && b <= 0xf4) {
      length = 4
      if (b === 0xf0) low = 0x90
      if (b === 0xf4) high = 0x8f
    } else return i
    if (i + length > bytes.length) return i
    if (bytes[i + 1] < low || bytes[i + 1] > high) return i
    for (let k = 2; k < length; k++) if (bytes[i + k] < 0x80 || bytes[i + k] > 0xbf) return i
    i += length
  }
  return bytes.length - 1
}

function lineOf(bytes: Buffer, at: number): number {
  let line = 1
  for (let i = bytes.indexOf(0x0a); i !== -1 && i < at; i = bytes.indexOf(0x0a, i + 1)) line++
  return line
}

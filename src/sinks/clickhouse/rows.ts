/**
 * WAL NDJSON → the body of a ClickHouse `INSERT … FORMAT JSONEachRow`, without JSON.parse.
 *
 * A WAL line is our own output (serialize.ts): the fields of a NormalizedEvent in a fixed order,
 * `metadata` last, strings escaped by JSON.stringify. ClickHouse reads every field as it is but one:
 * before 22.x JSONEachRow cannot read a JSON object into a String column, so `metadata` is
 * re-encoded as a JSON string holding the object's text (`{"a":1}` → `"{\"a\":1}"`, `null` → `""`)
 * — a byte copy that escapes `"` and `\`, nothing else, since the text has no raw control
 * characters. Servers that have `input_format_json_read_objects_as_strings` get the WAL's bytes
 * untouched (`objectsAsStrings`).
 *
 * Finding the fields without parsing: inside a JSON string every `"` is escaped, so the byte
 * sequence `,"metadata":` can only be the field itself in the part of a line before it — every
 * earlier field is a string, a number, null or an array of strings — and the first match in a line
 * is the real one (the metadata object may hold the same key deeper, after it). `,"timestamp":`
 * likewise.
 *
 * The one check: `timestamp` must fit ClickHouse's DateTime (UInt32 seconds, until 2106-02-07),
 * which a server silently wraps around otherwise. The intake bounds it by now + clock skew, so only
 * a clock-skew allowance of decades could let one through; such a line is refused here, by line,
 * so delivery isolates and dead-letters it like a row the server refused.
 */

import { METADATA_KEY, TIMESTAMP_KEY } from '../../event/wal-line.ts'

/** Largest Unix second a ClickHouse DateTime holds. */
export const MAX_DATETIME = 4_294_967_295

const NEWLINE = 0x0a
const QUOTE = 0x22
const BACKSLASH = 0x5c
// The line layout of src/wal/FORMAT.md "Records" (event/wal-line.ts): metadata last, flat values before it.
const METADATA = Buffer.from(METADATA_KEY)
const TIMESTAMP = Buffer.from(TIMESTAMP_KEY)
const NULL = Buffer.from('null')

export type RowsResult =
  | { readonly ok: true; readonly body: Buffer; readonly rows: number }
  /** `line` counts from 1. */
  | { readonly ok: false; readonly line: number; readonly error: string }

export function walToJsonEachRow(ndjson: Buffer, options: { objectsAsStrings: boolean }): RowsResult {
  const length = ndjson.length
  // Escaping at most doubles the metadata bytes, and each line gains two quotes; the fixed field
  // names make every line far longer than that, but a line is checked before it is written.
  let out = options.objectsAsStrings ? ndjson : Buffer.allocUnsafe(length * 2 + 64)
  let o = 0
  let start = 0
  let line = 0
  while (start < length) {
    let end = ndjson.indexOf(NEWLINE, start)
    if (end === -1) end = length
    if (end === start) {
      start = end + 1
      continue
    }
    line++
    const ts = ndjson.indexOf(TIMESTAMP, start)
    if (ts === -1 || ts > end) return refused(line, 'no "timestamp" field')
    const seconds = readInteger(ndjson, ts + TIMESTAMP.length, end)
    if (seconds === null || seconds > MAX_DATETIME) {
      const at = ts + TIMESTAMP.length
      let stop = at
      while (stop < end && stop < at + 24 && ndjson[stop] !== 0x2c && ndjson[stop] !== 0x7d) stop++
      return refused(
        line,
        `timestamp ${ndjson.toString('latin1', at, stop)} is outside ClickHouse's DateTime range (1970-01-01 to 2106-02-07)`,
      )
    }
    if (!options.objectsAsStrings) {
      const meta = ndjson.indexOf(METADATA, ts)
      if (meta === -1 || meta > end) return refused(line, 'no "metadata" field')
      const value = meta + METADATA.length
      // The line ends with the object's closing brace (a trailing \r is not ours to keep).
      let close = end - 1
      while (close > value && ndjson[close] !== 0x7d) close--
      const need = value - start + 2 * (close - value) + 4
      if (o + need > out.length) {
        const bigger = Buffer.allocUnsafe(Math.max(out.length * 2, o + need))
        out.copy(bigger, 0, 0, o)
        out = bigger
      }
      o += ndjson.copy(out, o, start, value)
      if (close - value === NULL.length && ndjson.compare(NULL, 0, NULL.length, value, close) === 0) {
        out[o++] = QUOTE
        out[o++] = QUOTE
      } else {
        out[o++] = QUOTE
        for (let i = value; i < close; i++) {
          const c = ndjson[i]
          if (c === QUOTE || c === BACKSLASH) out[o++] = BACKSLASH
          out[o++] = c
        }
        out[o++] = QUOTE
      }
      out[o++] = 0x7d
      out[o++] = NEWLINE
    }
    start = end + 1
  }
  return { ok: true, body: options.objectsAsStrings ? ndjson : out.subarray(0, o), rows: line }
}

/** The non-negative integer at `at` (digits up to `,` / `}`), or null if it is not one. */
function readInteger(buf: Buffer, at: number, end: number): number | null {
  let value = 0
  let i = at
  for (; i < end; i++) {
    const c = buf[i]
    if (c < 0x30 || c > 0x39) break
    value = value * 10 + (c - 0x30)
    if (value > Number.MAX_SAFE_INTEGER) return null
  }
  return i === at ? null : value
}

function refused(line: number, error: string): RowsResult {
  return { ok: false, line, error }
}

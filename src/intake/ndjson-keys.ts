/**
 * Dedup keys straight from WAL payloads, without decoding the events: delivery reads NDJSON and
 * hands it to sinks that load it natively, so the delivery-time dedup check must not pay for a
 * JSON.parse of every event. The intake writes every line as `{"event_id":"…",…}`, or
 * `{"event_id":"…","tenant":"…",…}` with API keys on (serialize.ts fixes the field order), so the
 * id is the JSON string right after that prefix — sliced as is when it holds no escape, parsed as a
 * JSON string when it does — and the tenant, when present, the string after it. A line of any other
 * shape (not written by this version) is decoded whole, so the answer is always `dedupKey` of the
 * line's event: `<tenant>/<event_id>`, or the `event_id` alone without a tenant.
 */
import { LINE_START, TENANT_KEY } from '../event/wal-line.ts'
import { dedupKey } from './event-id.ts'

const NEWLINE = 0x0a
const QUOTE = 0x22
const BACKSLASH = 0x5c
// The line layout of src/wal/FORMAT.md "Records" (event/wal-line.ts), with the strings' opening quotes.
const PREFIX = Buffer.from(LINE_START + '"')
const TENANT = Buffer.from(TENANT_KEY + '"')

export interface PayloadKeys {
  /** The dedup key of each line (`dedupKey`: the event_id, scoped by the tenant when there is one), in order. */
  readonly keys: string[]
  /** Byte offset of each line's start; `starts[i + 1]` (or the payload's end) is where it ends. */
  readonly starts: number[]
}

/** The dedup key of every line of an NDJSON payload (blank lines are not events and are skipped). */
export function payloadKeys(payload: Buffer): PayloadKeys {
  const keys: string[] = []
  const starts: number[] = []
  let start = 0
  while (start < payload.length) {
    let end = payload.indexOf(NEWLINE, start)
    if (end === -1) end = payload.length
    if (end > start) {
      keys.push(lineKey(payload, start, end))
      starts.push(start)
    }
    start = end + 1
  }
  return { keys, starts }
}

function lineKey(payload: Buffer, start: number, end: number): string {
  if (end - start > PREFIX.length && hasPrefix(payload, start)) {
    const from = start + PREFIX.length
    let plain = true
    for (let i = from; i < end; i++) {
      const byte = payload[i]
      if (byte === QUOTE) {
        // ASCII without escapes (the usual UUID or counter): latin1 is the cheapest exact decode.
        const id = plain ? payload.toString('latin1', from, i) : payload.toString('utf8', from, i)
        return hasBytes(payload, i + 1, end, TENANT) ? tenantKey(payload, start, end, i + 1, id) : id
      }
      if (byte === BACKSLASH) return escapedKey(payload, start, end)
      if (byte > 0x7f) plain = false
    }
  }
  return decodedKey(payload, start, end)
}

/** `<tenant>/<id>` for the tenant string at `at` (an API key label: plain ASCII, no escapes). */
function tenantKey(payload: Buffer, start: number, end: number, at: number, id: string): string {
  const from = at + TENANT.length
  for (let i = from; i < end; i++) {
    const byte = payload[i]
    if (byte === QUOTE) return dedupKey(payload.toString('latin1', from, i), id)
    if (byte === BACKSLASH || byte > 0x7f) break
  }
  return decodedKey(payload, start, end)
}

function hasPrefix(payload: Buffer, start: number): boolean {
  for (let i = 0; i < PREFIX.length; i++) if (payload[start + i] !== PREFIX[i]) return false
  return true
}

function hasBytes(payload: Buffer, at: number, end: number, bytes: Buffer): boolean {
  if (end - at <= bytes.length) return false
  for (let i = 0; i < bytes.length; i++) if (payload[at + i] !== bytes[i]) return false
  return true
}

/** An id with escapes: its JSON string literal parsed. */
function escapedKey(payload: Buffer, start: number, end: number): string {
  const from = start + PREFIX.length
  for (let i = from; i < end; i++) {
    if (payload[i] === BACKSLASH) i++
    else if (payload[i] === QUOTE) {
      const id = JSON.parse(payload.toString('utf8', from - 1, i + 1)) as string
      return hasBytes(payload, i + 1, end, TENANT) ? tenantKey(payload, start, end, i + 1, id) : id
    }
  }
  return decodedKey(payload, start, end)
}

/** The key of a line read whole (an id with escapes: rare; a line of another shape). */
function decodedKey(payload: Buffer, start: number, end: number): string {
  const event = JSON.parse(payload.toString('utf8', start, end)) as { event_id?: unknown; tenant?: unknown }
  if (typeof event.event_id !== 'string') throw new Error('WAL line has no string event_id')
  if (event.tenant === undefined || event.tenant === null || event.tenant === '') return event.event_id
  if (typeof event.tenant !== 'string') throw new Error('WAL line has a tenant that is not a string')
  return dedupKey(event.tenant, event.event_id)
}

/**
 * The payload without the lines whose `keep[i]` is false (lines as `payloadKeys` found them); the
 * same buffer when every line is kept. Each kept line keeps its newline.
 */
export function keepLines(payload: Buffer, parsed: PayloadKeys, keep: readonly boolean[]): Buffer {
  const { starts } = parsed
  if (keep.every(Boolean)) return payload
  const parts: Buffer[] = []
  for (let i = 0; i < starts.length; i++) {
    if (!keep[i]) continue
    let end = i + 1 < starts.length ? starts[i + 1] : payload.length
    // A line ends at its newline; blank lines between events are dropped with the skipped ones.
    const newline = payload.indexOf(NEWLINE, starts[i])
    if (newline !== -1 && newline < end) end = newline + 1
    parts.push(payload.subarray(starts[i], end))
  }
  return Buffer.concat(parts)
}

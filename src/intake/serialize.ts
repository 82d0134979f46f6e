/**
 * The WAL form of events: one JSON object per line (NDJSON). A line never contains a raw newline,
 * because JSON.stringify escapes the control characters inside strings. Fields are written in the
 * fixed order of NormalizedEvent whatever the object's own key order, so equal events always have
 * equal bytes. `tenant` is written only when it is set (API keys on), so a keyless server's lines
 * are what they were before tenants.
 */
import { spillwayError } from '../errors.ts'
import { quoteJson, quoteJsonArray } from './json.ts'
import type { NormalizedEvent } from './types.ts'

const NEWLINE = 0x0a

export function serializeEvent(e: NormalizedEvent): string {
  return (
    '{"event_id":' +
    quoteJson(e.event_id) +
    // Right after event_id (dedup/ndjson-keys.ts reads both from the line's start); only when set.
    (e.tenant ? ',"tenant":' + quoteJson(e.tenant) : '') +
    ',"event_name":' +
    quoteJson(e.event_name) +
    ',"channel":' +
    quoteJson(e.channel) +
    ',"campaign_id":' +
    (e.campaign_id === null ? 'null' : quoteJson(e.campaign_id)) +
    ',"user_id":' +
    quoteJson(e.user_id) +
    ',"timestamp":' +
    e.timestamp +
    ',"received_at":' +
    e.received_at +
    ',"tags":' +
    quoteJsonArray(e.tags) +
    ',"metadata":' +
    (e.metadata === null ? 'null' : JSON.stringify(e.metadata)) +
    '}'
  )
}

/** NDJSON: one line per event, each ending in '\n'; no events → an empty buffer. */
export function encodeEvents(events: readonly NormalizedEvent[]): Buffer {
  let text = ''
  for (let i = 0; i < events.length; i++) text += serializeEvent(events[i]) + '\n'
  return Buffer.from(text, 'utf8')
}

/**
 * The inverse of encodeEvents. The payload is our own output behind a WAL checksum, so the fast
 * path turns the lines into one JSON array and parses once (fewer, larger JSON.parse calls win);
 * if that fails the slow path parses line by line, skips blank lines, and throws
 * SPW_ERR_WAL_CORRUPT naming the broken line.
 */
export function decodeEvents(payload: Buffer): NormalizedEvent[] {
  let end = payload.length
  while (end > 0 && payload[end - 1] === NEWLINE) end--
  if (end === 0) return []
  const text = payload.toString('utf8', 0, end)
  try {
    return JSON.parse('[' + text.replaceAll('\n', ',') + ']') as NormalizedEvent[]
  } catch {
    return decodeLines(payload, end)
  }
}

function decodeLines(payload: Buffer, end: number): NormalizedEvent[] {
  const events: NormalizedEvent[] = []
  let start = 0
  let line = 1
  while (start < end) {
    let stop = payload.indexOf(NEWLINE, start)
    if (stop === -1 || stop > end) stop = end
    if (stop > start) {
      try {
        events.push(JSON.parse(payload.toString('utf8', start, stop)) as NormalizedEvent)
      } catch (error) {
        throw spillwayError(
          'SPW_ERR_WAL_CORRUPT',
          `event payload line ${line} is not valid JSON: ${(error as Error).message}`,
          { cause: error },
        )
      }
    }
    start = stop + 1
    line++
  }
  return events
}

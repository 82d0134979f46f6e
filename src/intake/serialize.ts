/**
 * The WAL form of events: one JSON object per line (NDJSON). A line never contains a raw newline,
 * because JSON.stringify escapes the control characters inside strings. Fields are written in the
 * fixed order of the field table (src/event/fields.ts) whatever the object's own key order, so
 * equal events always have equal bytes. `tenant` is written only when it is set (API keys on), so
 * a keyless server's lines are what they were before tenants.
 *
 * The writer is spelled out field by field (a loop over the table costs the hot path a dynamic
 * property read per field); at load it writes the table's example event and checks the line's
 * keys against the table and the layout readers rely on (src/event/wal-line.ts), so it cannot
 * drift from either.
 */

import { spillwayError } from '../errors.ts'
import { EVENT_TABLE, STORED_FIELDS } from '../event/fields.ts'
import {
  assertWalLineLayout,
  LINE_START,
  METADATA_KEY,
  TENANT_KEY,
  TIMESTAMP_KEY,
} from '../event/wal-line.ts'
import { quoteJson, quoteJsonArray } from './json.ts'
import type { NormalizedEvent } from './types.ts'

const NEWLINE = 0x0a

export function serializeEvent(e: NormalizedEvent): string {
  return (
    LINE_START +
    quoteJson(e.event_id) +
    // Right after event_id (ndjson-keys.ts reads both from the line's start); only when set.
    (e.tenant ? TENANT_KEY + quoteJson(e.tenant) : '') +
    ',"event_name":' +
    quoteJson(e.event_name) +
    ',"channel":' +
    quoteJson(e.channel) +
    ',"campaign_id":' +
    (e.campaign_id === null ? 'null' : quoteJson(e.campaign_id)) +
    ',"user_id":' +
    quoteJson(e.user_id) +
    TIMESTAMP_KEY +
    e.timestamp +
    ',"received_at":' +
    e.received_at +
    ',"tags":' +
    quoteJsonArray(e.tags) +
    METADATA_KEY +
    (e.metadata === null ? 'null' : JSON.stringify(e.metadata)) +
    '}'
  )
}

/** Throws unless serializeEvent writes the table's stored fields, in its order. */
function checkSerializer(): void {
  const example = Object.fromEntries(EVENT_TABLE.filter((f) => f.stored).map((f) => [f.name, f.example]))
  const keys = Object.keys(JSON.parse(serializeEvent(example as unknown as NormalizedEvent)))
  if (keys.join() !== STORED_FIELDS.join()) {
    throw new Error(
      `src/intake/serialize.ts writes ${keys.join(', ')}, but the stored fields of src/event/fields.ts are ${STORED_FIELDS.join(', ')}`,
    )
  }
  assertWalLineLayout(keys, 'src/intake/serialize.ts')
}
checkSerializer()

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

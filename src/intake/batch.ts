/**
 * Batch bodies (already inflated): a JSON array, `{"events":[…]}`, or NDJSON. A body that cannot
 * be read as a batch at all fails as a whole (SpillwayError); inside a readable batch every event
 * succeeds or fails on its own, by index — including an NDJSON line that is not JSON, which
 * becomes that index's rejection so one bad line never costs the other 999 events.
 *
 * Parsing is the global JSON.parse, which creates `__proto__` and `constructor` keys as own data
 * properties; nothing here or in validation assigns a property named by the input, so such keys
 * cannot reach a prototype.
 */
import { spillwayError } from '../errors.ts'
import { quote } from './describe.ts'
import {
  DEFAULT_MAX_DEPTH,
  EVENT_LEVELS,
  jsonText,
  ndjsonNestingError,
  nestingError,
  stripBom,
} from './json.ts'
import type {
  BatchValidation,
  IntakeContext,
  IntakeLimits,
  NormalizedEvent,
  ParsedBatch,
  Rejection,
} from './types.ts'
import { validateEvent } from './validate.ts'

const NO_LINE_ERRORS: ReadonlyMap<number, string> = new Map()
const MAX_PARSE_MESSAGE = 200

/**
 * Split a batch body into items. Throws SPW_ERR_INTAKE_BAD_ENCODING when the body is not UTF-8,
 * SPW_ERR_INTAKE_BAD_JSON when it is not JSON, SPW_ERR_INTAKE_INVALID when it is JSON of another
 * shape or nested deeper than `maxDepth` allows any event to be, SPW_ERR_INTAKE_EMPTY_BATCH when it
 * holds no event and SPW_ERR_INTAKE_TOO_MANY_EVENTS when it holds more than `maxBatchEvents`.
 */
export function parseBatch(
  body: Buffer | string,
  ndjson: boolean,
  maxBatchEvents: number,
  maxDepth = DEFAULT_MAX_DEPTH,
): ParsedBatch {
  const text = typeof body === 'string' ? stripBom(body) : jsonText(body, ndjson)
  // Refused before JSON.parse builds anything: no event could be this deep and still be valid.
  const tooDeep = ndjson
    ? ndjsonNestingError(text, maxDepth + EVENT_LEVELS)
    : nestingError(text, maxDepth + EVENT_LEVELS + 2)
  if (tooDeep !== undefined) {
    throw spillwayError(
      'SPW_ERR_INTAKE_INVALID',
      `${ndjson ? '' : 'body is '}${tooDeep}, deeper than any valid batch: metadata must be nested at most ${maxDepth} levels deep (maxDepth)`,
    )
  }
  const parsed = ndjson ? parseNdjson(text, maxBatchEvents) : parseJsonBatch(text)
  const count = parsed.items.length
  if (count === 0)
    throw spillwayError('SPW_ERR_INTAKE_EMPTY_BATCH', 'batch is empty; send at least one event')
  if (count > maxBatchEvents) {
    throw spillwayError(
      'SPW_ERR_INTAKE_TOO_MANY_EVENTS',
      `batch has ${ndjson ? `more than ${maxBatchEvents}` : count} events; at most ${maxBatchEvents} are accepted in one request`,
    )
  }
  return parsed
}

/**
 * Validate every item; event i of a request with an Idempotency-Key gets the key `<key>:<i>`.
 * Rejections come back in index order.
 */
export function validateBatch(
  items: readonly unknown[],
  lineErrors: ReadonlyMap<number, string>,
  ctx: IntakeContext,
  limits: IntakeLimits,
): BatchValidation {
  const events: NormalizedEvent[] = []
  const indexes: number[] = []
  const clientTimestamps: number[] = []
  const rejected: Rejection[] = []
  const skews: number[] = []
  const checkLines = lineErrors.size > 0
  for (let index = 0; index < items.length; index++) {
    if (checkLines) {
      const lineError = lineErrors.get(index)
      if (lineError !== undefined) {
        rejected.push({ index, error: lineError })
        continue
      }
    }
    const result = validateEvent(items[index], ctx, limits, index)
    if (result.ok) {
      events.push(result.event)
      indexes.push(index)
      if (result.skewSeconds !== null) {
        skews.push(result.skewSeconds)
        clientTimestamps.push(result.event.timestamp - result.skewSeconds)
      } else {
        clientTimestamps.push(result.event.timestamp)
      }
    } else {
      rejected.push({ index, error: result.error })
    }
  }
  return { events, indexes, clientTimestamps, rejected, skews }
}

function parseJsonBatch(text: string): ParsedBatch {
  if (isBlankText(text)) return { items: [], lineErrors: NO_LINE_ERRORS }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    // The usual cause of "non-whitespace after JSON": NDJSON sent as application/json.
    const hint = text.includes('}\n{') ? '; send NDJSON with Content-Type: application/x-ndjson' : ''
    throw spillwayError('SPW_ERR_INTAKE_BAD_JSON', `body is not valid JSON: ${parseMessage(error)}${hint}`)
  }
  if (Array.isArray(value)) return { items: value, lineErrors: NO_LINE_ERRORS }
  if (typeof value !== 'object' || value === null) {
    throw spillwayError(
      'SPW_ERR_INTAKE_INVALID',
      `batch body must be a JSON array of events, {"events": [...]} or NDJSON, got ${value === null ? 'null' : `a ${typeof value}`}`,
    )
  }
  const object = value as Record<string, unknown>
  const keys = Object.keys(object)
  if (keys.length === 1 && keys[0] === 'events') {
    if (Array.isArray(object.events)) return { items: object.events, lineErrors: NO_LINE_ERRORS }
    throw spillwayError('SPW_ERR_INTAKE_INVALID', `batch field "events" must be an array of events`)
  }
  if ('event_name' in object || 'user_id' in object) {
    throw spillwayError(
      'SPW_ERR_INTAKE_INVALID',
      'batch body is a single event object; wrap it in an array or send it to POST /events',
    )
  }
  const shown = keys.slice(0, 5).map(quote).join(', ') + (keys.length > 5 ? ', …' : '')
  throw spillwayError(
    'SPW_ERR_INTAKE_INVALID',
    `batch body must be a JSON array of events or {"events": [...]}, got an object with ${keys.length === 0 ? 'no keys' : `keys ${shown}`}`,
  )
}

/**
 * One event per line; '\r\n' endings and blank lines are allowed. Stops reading once it has seen
 * more than `maxBatchEvents` events, so an oversize batch costs no more than the limit.
 */
function parseNdjson(text: string, maxBatchEvents: number): ParsedBatch {
  const items: unknown[] = []
  let lineErrors: Map<number, string> | undefined
  let start = 0
  let line = 0
  while (start <= text.length && items.length <= maxBatchEvents) {
    let end = text.indexOf('\n', start)
    if (end === -1) end = text.length
    line++
    const content = text.slice(start, end)
    start = end + 1
    if (isBlankText(content)) continue
    try {
      items.push(JSON.parse(content))
    } catch (error) {
      lineErrors ??= new Map()
      lineErrors.set(items.length, `line ${line} is not valid JSON: ${parseMessage(error)}`)
      // The line as sent, so the dead-letter store keeps what the client wrote (never parsed).
      items.push(content)
    }
  }
  return { items, lineErrors: lineErrors ?? NO_LINE_ERRORS }
}

/** JSON whitespace only (space, tab, CR, LF) — what JSON.parse would skip. */
function isBlankText(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false
  }
  return true
}

/**
 * True for the rejection of an NDJSON line that was not JSON: its dead-letter entry holds the
 * line's raw text (a string), not a parsed JSON value.
 */
export function isUnparsedLineError(reason: string): boolean {
  return /^line \d+ is not valid JSON: /.test(reason)
}

function parseMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  return message.length > MAX_PARSE_MESSAGE ? message.slice(0, MAX_PARSE_MESSAGE - 1) + '…' : message
}

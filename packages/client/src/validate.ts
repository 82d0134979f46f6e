/**
 * The server's event rules, checked before an event is queued, so a mistake fails at the
 * `track()` call that made it instead of minutes later in a callback. This is a browser-safe twin
 * of the server's `src/intake/validate.ts` (which needs node:crypto and Buffer): same fields, same
 * limits, same order of checks and the same messages. The fields, limits, channels and the
 * ISO-8601 parser come from `event-fields.ts`, a copy of the server's field table
 * (src/event/fields.ts) that test/unit/event/client-copy.test.ts keeps identical;
 * test/unit/client/validate-agrees.test.ts runs both validators on the same generated events and
 * fails when they disagree.
 *
 * Where the client differs, it is because it holds live JavaScript values, not parsed JSON:
 * - a key whose value is `undefined` is absent (JSON.stringify drops it), at the top level too;
 * - an ISO-8601 `timestamp` (`2026-12-04T10:00:00Z`, `…+02:00`), which the server takes too, is
 *   sent as Unix seconds (fractions dropped, as the server does), which every server version accepts;
 * - `sent_at` is the client's to stamp at send time, so an event may not carry one.
 */
import {
  CHANNEL_LIST,
  CHANNELS,
  type Channel,
  INPUT_FIELD_LIST,
  INPUT_FIELDS,
  isoTimestampError,
  MAX_EVENT_ID_LENGTH,
  MAX_METADATA_KEYS,
  parseIsoTimestamp,
} from './event-fields.ts'

export { CHANNELS, type Channel, MAX_EVENT_ID_LENGTH, MAX_METADATA_KEYS }

/** The event `track()` takes. `timestamp` defaults to now when absent. */
export interface TrackEvent {
  event_name: string
  user_id: string
  channel: Channel
  /** Unix seconds (integer) or an ISO-8601 string with a zone; default: now. */
  timestamp?: number | string
  campaign_id?: string | null
  tags?: readonly string[] | null
  metadata?: Record<string, unknown> | null
  /** The idempotency key (≤ 128 characters); default: a new UUIDv7. */
  event_id?: string
}

/** The server's per-event limits (its configuration names); the defaults are the server's. */
export interface EventLimits {
  readonly maxEventBytes: number
  readonly maxStringLength: number
  readonly maxTags: number
  readonly maxDepth: number
  readonly clockSkewSeconds: number
}

export const DEFAULT_LIMITS: EventLimits = Object.freeze({
  maxEventBytes: 64 * 1024,
  maxStringLength: 1024,
  maxTags: 100,
  maxDepth: 8,
  clockSkewSeconds: 300,
})

/** A valid event as it is queued: its id, its JSON line (without `sent_at`) and that line's UTF-8 bytes. */
export interface PreparedEvent {
  readonly id: string
  readonly line: string
  readonly bytes: number
}

export type Verdict =
  | { readonly ok: true; readonly event: PreparedEvent }
  | { readonly ok: false; readonly error: string }

const KNOWN_FIELDS: ReadonlySet<string> = new Set(INPUT_FIELDS)
const SECONDS_CEILING = 1e11
const MAX_SHOWN = 40
/** What the server's stored form has beyond the line: `,"received_at":` and 13 digits. */
const RECEIVED_AT_BYTES = 28

/**
 * Checks one event as the server would and prepares its line. `newId` is called only when the
 * event has no `event_id`. `nowMs` is this machine's clock.
 */
export function prepareEvent(
  input: unknown,
  limits: EventLimits,
  nowMs: number,
  newId: () => string,
): Verdict {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return invalid(`event must be a JSON object, got ${describeValue(input)}`)
  }
  const raw = input as Record<string, unknown>
  for (const key of Object.keys(raw)) {
    if (raw[key] === undefined) continue
    if (key === 'sent_at') {
      return invalid('sent_at is stamped by the client when it sends the event; leave it out')
    }
    if (!KNOWN_FIELDS.has(key))
      return invalid(`unknown field ${quote(key)}; the fields are ${INPUT_FIELD_LIST}`)
  }
  const maxLength = limits.maxStringLength
  let error: string | undefined

  const clientId = raw.event_id
  if (clientId != null) {
    error = textError('event_id', clientId, MAX_EVENT_ID_LENGTH)
    if (error !== undefined) return invalid(error)
  }
  const eventName = raw.event_name
  error = textError('event_name', eventName, maxLength)
  if (error !== undefined) return invalid(error)

  const channel = raw.channel
  if (typeof channel !== 'string' || !(CHANNELS as readonly string[]).includes(channel)) {
    return invalid(
      channel == null
        ? `channel is required, one of ${CHANNEL_LIST}`
        : `channel must be one of ${CHANNEL_LIST}, got ${describeValue(channel)}`,
    )
  }

  const campaignId = raw.campaign_id
  if (campaignId != null) {
    if (typeof campaignId !== 'string') {
      return invalid(`campaign_id must be a string, got ${describeValue(campaignId)}`)
    }
    if (campaignId.length > maxLength) return invalid(tooLong('campaign_id', maxLength, campaignId))
    if (!isWellFormed(campaignId)) return invalid(loneSurrogate('campaign_id'))
  }

  const userId = raw.user_id
  error = textError('user_id', userId, maxLength)
  if (error !== undefined) return invalid(error)

  const nowSeconds = Math.round(nowMs / 1000)
  let timestamp = raw.timestamp
  let iso = false
  if (timestamp == null) {
    timestamp = Math.floor(nowMs / 1000)
  } else if (typeof timestamp === 'string') {
    const seconds = parseIsoTimestamp(timestamp)
    if (typeof seconds === 'string') {
      return invalid(isoTimestampError('timestamp', seconds, timestamp, quote(timestamp)))
    }
    timestamp = seconds
    iso = true
  }
  if (!Number.isInteger(timestamp)) {
    return invalid(`timestamp must be an integer of Unix seconds, got ${describeValue(timestamp)}`)
  }
  const latest = nowSeconds + limits.clockSkewSeconds
  if ((timestamp as number) <= 0) {
    return invalid(`timestamp must be a positive integer of Unix seconds, got ${timestamp}`)
  }
  if ((timestamp as number) > latest) {
    // A date string far ahead is just far ahead, never a finer unit (as the server says).
    const unit = iso ? '' : unitOf(timestamp as number, latest)
    if (unit !== '')
      return invalid(`timestamp must be Unix seconds, got ${timestamp}, which looks like ${unit}`)
    return invalid(
      `timestamp is ${(timestamp as number) - nowSeconds} seconds in the future, more than the ${limits.clockSkewSeconds} allowed for clock skew`,
    )
  }

  const tags = raw.tags
  if (tags != null) {
    if (!Array.isArray(tags)) return invalid(`tags must be an array of strings, got ${describeValue(tags)}`)
    if (tags.length > limits.maxTags) {
      return invalid(`tags must have at most ${limits.maxTags} entries, got ${tags.length}`)
    }
    for (let i = 0; i < tags.length; i++) {
      const tag = tags[i]
      if (typeof tag !== 'string') return invalid(`tags[${i}] must be a string, got ${describeValue(tag)}`)
      if (tag.length > maxLength) return invalid(tooLong(`tags[${i}]`, maxLength, tag))
      if (!isWellFormed(tag)) return invalid(loneSurrogate(`tags[${i}]`))
    }
  }

  const metadata = raw.metadata
  if (metadata != null) {
    if (typeof metadata !== 'object' || Array.isArray(metadata)) {
      return invalid(`metadata must be a JSON object, got ${describeValue(metadata)}`)
    }
    error = metadataError(metadata, limits.maxDepth)
    if (error !== undefined) return invalid(error)
  }

  // Field order is the server's stored order, so the bytes below are its bytes plus a known rest.
  const hasTags = Array.isArray(tags) && tags.length > 0
  const id = (clientId as string | undefined) ?? newId()
  const line = JSON.stringify({
    event_id: id,
    event_name: eventName,
    channel,
    ...(campaignId != null && { campaign_id: campaignId }),
    user_id: userId,
    timestamp,
    ...(hasTags && { tags }),
    ...(metadata != null && { metadata }),
  })
  const bytes = utf8Length(line)
  const storedBytes =
    bytes +
    RECEIVED_AT_BYTES +
    (campaignId == null ? 19 : 0) + // ,"campaign_id":null
    (hasTags ? 0 : 10) + // ,"tags":[]
    (metadata == null ? 16 : 0) // ,"metadata":null
  if (storedBytes > limits.maxEventBytes) {
    return invalid(`event is larger than ${limits.maxEventBytes} bytes (got ${storedBytes})`)
  }
  return { ok: true, event: { id, line, bytes } }
}

/** UTF-8 bytes of a string, without encoding it (lone surrogates count as U+FFFD's 3 bytes). */
export function utf8Length(text: string): number {
  let bytes = text.length
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) bytes += 1
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 2 // 4 bytes for the pair's 2 code units
        i++
      } else bytes += 2
    } else bytes += 2
  }
  return bytes
}

function invalid(error: string): Verdict {
  return { ok: false, error }
}

function textError(field: string, value: unknown, maxLength: number): string | undefined {
  if (typeof value !== 'string') {
    return value == null ? `${field} is required` : `${field} must be a string, got ${describeValue(value)}`
  }
  if (value.length > maxLength) return tooLong(field, maxLength, value)
  if (value.trim() === '') return `${field} must not be empty or only whitespace`
  if (!isWellFormed(value)) return loneSurrogate(field)
  return undefined
}

function loneSurrogate(field: string): string {
  return `${field} contains a lone UTF-16 surrogate; send well-formed Unicode`
}

function tooLong(field: string, maxLength: number, value: string): string {
  return `${field} must be at most ${maxLength} characters, got ${value.length}`
}

function unitOf(value: number, latestSeconds: number): string {
  if (value < SECONDS_CEILING) return ''
  if (value / 1e3 <= latestSeconds) return 'milliseconds'
  if (value / 1e6 <= latestSeconds) return 'microseconds'
  if (value / 1e9 <= latestSeconds) return 'nanoseconds'
  return ''
}

/** String.prototype.isWellFormed, which older browsers lack: no lone UTF-16 surrogate. */
function isWellFormed(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c < 0xd800 || c > 0xdfff) continue
    if (c > 0xdbff) return false
    const next = value.charCodeAt(i + 1)
    if (!(next >= 0xdc00 && next <= 0xdfff)) return false
    i++
  }
  return true
}

// The metadata walk, as the server's: depth, key count and JSON-only values, with the path of
// the first problem.
let walkKeys = 0
let walkBad: unknown
const OK = 0
const TOO_DEEP = 1
const TOO_MANY_KEYS = 2
const NOT_JSON = 3
const LONE_SURROGATE = 4
const LONE_SURROGATE_KEY = 5
const UNSAFE_INTEGER = 6

function metadataError(metadata: object, maxDepth: number): string | undefined {
  walkKeys = 0
  const path: (string | number)[] = []
  const status = walkContainer(metadata, 0, maxDepth, path)
  if (status === OK) return undefined
  const where = formatPath('metadata', path.reverse())
  switch (status) {
    case TOO_DEEP:
      return `metadata must be nested at most ${maxDepth} levels deep, ${where} is deeper`
    case TOO_MANY_KEYS:
      return `metadata must have at most ${MAX_METADATA_KEYS} keys in all`
    case LONE_SURROGATE:
      return loneSurrogate(where)
    case LONE_SURROGATE_KEY:
      return `${where} has a key that contains a lone UTF-16 surrogate (${quote(walkBad as string)}); send well-formed Unicode`
    case UNSAFE_INTEGER:
      return `${where} is an integer beyond ±${Number.MAX_SAFE_INTEGER} (got ${walkBad}), which may not be stored exactly; send it as a string`
    default:
      return `${where} must be a JSON value, got ${describeValue(walkBad)}`
  }
}

function walkValue(value: unknown, depth: number, maxDepth: number, path: (string | number)[]): number {
  switch (typeof value) {
    case 'string':
      return isWellFormed(value) ? OK : LONE_SURROGATE
    case 'boolean':
      return OK
    case 'number':
      if (!Number.isFinite(value)) break
      if (Number.isSafeInteger(value) || !Number.isInteger(value)) return OK
      walkBad = value
      return UNSAFE_INTEGER
    case 'object':
      return value === null ? OK : walkContainer(value, depth, maxDepth, path)
  }
  walkBad = value
  return NOT_JSON
}

function walkContainer(value: object, depth: number, maxDepth: number, path: (string | number)[]): number {
  if (depth > maxDepth) return TOO_DEEP
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const status = walkValue(value[i], depth + 1, maxDepth, path)
      if (status !== OK) {
        path.push(i)
        return status
      }
    }
    return OK
  }
  const object = value as Record<string, unknown>
  for (const key of Object.keys(object)) {
    if (++walkKeys > MAX_METADATA_KEYS) return TOO_MANY_KEYS
    if (!isWellFormed(key)) {
      walkBad = key
      return LONE_SURROGATE_KEY
    }
    const status = walkValue(object[key], depth + 1, maxDepth, path)
    if (status !== OK) {
      path.push(key)
      return status
    }
  }
  return OK
}

// How values appear in messages: the server's describe.ts, so both say the same thing.
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

function quote(value: string): string {
  return JSON.stringify(value.length > MAX_SHOWN ? value.slice(0, MAX_SHOWN - 1) + '…' : value)
}

function formatPath(root: string, path: readonly (string | number)[]): string {
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

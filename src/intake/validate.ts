/**
 * Validation and normalisation of one event (docs/ARCHITECTURE.md "The event"). This runs for
 * every event on the hot
 * path, so it is a hand-rolled validator: one pass over the known fields, loops instead of
 * regexes, no closures, and nothing allocated on the accept path but the normalised event. Error
 * strings are only built when an event is rejected.
 *
 * Rules beyond the summary in docs/ARCHITECTURE.md "The event", decided here:
 * - Unknown top-level fields are rejected, naming the field (`unknown field "userId"`): dropping
 *   them silently would lose data the client believes it sent. `sent_at` is a known field.
 * - `null` means absent for every field: a required field that is null "is required"; an
 *   optional one takes its default (`campaign_id` null, `tags` [], `metadata` null).
 * - Strings are stored as sent, never trimmed; `event_name`, `user_id` and `event_id` that are
 *   empty or only whitespace are rejected. `campaign_id` and tags may be any string, even "".
 *   Lengths count UTF-16 code units (JavaScript's `length`).
 * - `timestamp` and `sent_at` must be JS integers (not numeric strings, not floats). A value in
 *   the future that would be valid divided by 1000 (or 10⁶, 10⁹) is reported as looking like
 *   milliseconds (micro-, nanoseconds), so the fix is in the message.
 * - `timestamp` may also be an ISO-8601 string with a zone (`2024-08-12T15:13:32Z`, `…+02:00`,
 *   `….123Z`), as Segment's and PostHog's clients send it (docs/ARCHITECTURE.md "The event"). It
 *   becomes Unix seconds, the fraction of a second dropped — what the integer form allows and
 *   the stores hold — and is then checked, hashed and stored exactly as that integer would be.
 *   A string without a zone, a date or time that does not exist (Feb 30, 24:00) or a time before
 *   1970 is refused, naming what is wrong (src/event/fields.ts parseIsoTimestamp).
 * - With `sent_at`, the timestamp is corrected by `round(receivedAt / 1000) − sent_at` (Segment,
 *   PostHog); the corrected value must be > 0 and at most `clockSkewSeconds` in the future.
 * - `metadata` depth counts the object and array levels inside it: `{"a":1}` is depth 0,
 *   `{"a":{"b":1}}` depth 1. It may hold at most MAX_METADATA_KEYS object keys in all, and only
 *   JSON values (finite numbers, no undefined).
 * - Every string (ids, names, tags, metadata keys and values) must be well-formed UTF-16: a lone
 *   surrogate (`"\ud800"` in the JSON) cannot be stored as sent — DuckDB would alter it and
 *   ClickHouse refuse it after the 202 — so it is refused here, naming the field.
 *   `isWellFormed` answers at once for the common one-byte strings.
 * - A metadata number whose value is an integer beyond ±(2^53 − 1) is refused, naming the field:
 *   JSON.parse has already rounded it (12345678901234567890 reads as …7000), so storing it would
 *   store a number the client never sent. Every double that large is whole, so `1e300` is refused
 *   too; such values travel as strings.
 * - Problems are reported one at a time: unknown fields first, then the fields in the order of
 *   NormalizedEvent, then the size of the whole event.
 *
 * The normalised event shares `tags` and `metadata` with the input (no deep copy on the hot path):
 * the caller hands over a freshly parsed value and does not mutate it afterwards. Nothing here
 * assigns a property named by the input, so `__proto__` or `constructor` keys in metadata are
 * inert own data (JSON.parse creates them as such) and are kept as sent.
 */
import {
  CHANNEL_LIST,
  CHANNELS,
  EVENT_TABLE,
  INPUT_FIELD_LIST,
  INPUT_FIELDS,
  isoTimestampError,
  MAX_EVENT_ID_LENGTH,
  MAX_METADATA_KEYS,
  parseIsoTimestamp,
} from '../event/fields.ts'
import { describeValue, formatPath, quote } from './describe.ts'
import { batchIdempotencyKey, contentEventId } from './event-id.ts'
import { serializeEvent } from './serialize.ts'
import type { Channel, IntakeContext, IntakeLimits, NormalizedEvent, ValidationResult } from './types.ts'

export { MAX_EVENT_ID_LENGTH, MAX_METADATA_KEYS }

// The table's input fields and channels spelled out as switches: a Set lookup per key cost the
// validator about 8 % (bench/validate.ts). Checked against the table at load, so they cannot drift.
function isInputField(key: string): boolean {
  switch (key) {
    case 'event_id':
    case 'event_name':
    case 'channel':
    case 'campaign_id':
    case 'user_id':
    case 'timestamp':
    case 'sent_at':
    case 'tags':
    case 'metadata':
      return true
    default:
      return false
  }
}

function isChannel(value: unknown): boolean {
  switch (value) {
    case 'web':
    case 'mobile':
    case 'api':
    case 'email':
    case 'push':
      return true
    default:
      return false
  }
}

function checkAgainstTable(): void {
  const others = EVENT_TABLE.filter((field) => !field.input).map((field) => field.name)
  if (!INPUT_FIELDS.every(isInputField) || others.some(isInputField)) {
    throw new Error(
      `src/intake/validate.ts: isInputField must accept exactly the input fields of src/event/fields.ts (${INPUT_FIELD_LIST})`,
    )
  }
  if (!CHANNELS.every(isChannel)) {
    throw new Error(
      `src/intake/validate.ts: isChannel must accept every channel of src/event/fields.ts (${CHANNEL_LIST})`,
    )
  }
}
checkAgainstTable()
/** No clock reads 10¹¹ Unix seconds (the year 5138); a larger value was sent in a finer unit. */
const SECONDS_CEILING = 1e11
/** Upper bound of the serialised event's bytes besides its strings, tags and metadata. */
const FIXED_BYTES_BOUND = 256

export function validateEvent(
  input: unknown,
  ctx: IntakeContext,
  limits: IntakeLimits,
  index?: number,
): ValidationResult {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return invalid(`event must be a JSON object, got ${describeValue(input)}`)
  }
  const raw = input as Record<string, unknown>
  for (const key in raw) {
    if (!isInputField(key)) return invalid(`unknown field ${quote(key)}; the fields are ${INPUT_FIELD_LIST}`)
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
  if (!isChannel(channel)) {
    return invalid(
      raw.channel == null
        ? `channel is required, one of ${CHANNEL_LIST}`
        : `channel must be one of ${CHANNEL_LIST}, got ${describeValue(raw.channel)}`,
    )
  }

  let campaignId: string | null = null
  const rawCampaign = raw.campaign_id
  if (rawCampaign != null) {
    if (typeof rawCampaign !== 'string') {
      return invalid(`campaign_id must be a string, got ${describeValue(rawCampaign)}`)
    }
    if (rawCampaign.length > maxLength) return invalid(tooLong('campaign_id', maxLength, rawCampaign))
    if (!rawCampaign.isWellFormed()) return invalid(loneSurrogate('campaign_id'))
    campaignId = rawCampaign
  }

  const userId = raw.user_id
  error = textError('user_id', userId, maxLength)
  if (error !== undefined) return invalid(error)

  // timestamp, sent_at and the skew correction
  let timestamp = raw.timestamp
  if (timestamp == null) return invalid('timestamp is required, as an integer of Unix seconds')
  const iso = typeof timestamp === 'string'
  if (iso) {
    const seconds = parseIsoTimestamp(timestamp as string)
    if (typeof seconds === 'string') {
      return invalid(isoTimestampError('timestamp', seconds, timestamp as string, quote(timestamp as string)))
    }
    timestamp = seconds
  } else if (!Number.isInteger(timestamp)) {
    return invalid(`timestamp must be an integer of Unix seconds, got ${describeValue(timestamp)}`)
  }
  const receivedSeconds = Math.round(ctx.receivedAt / 1000)
  const latest = receivedSeconds + limits.clockSkewSeconds
  let skewSeconds: number | null = null
  const sentAt = raw.sent_at
  if (sentAt != null) {
    if (!Number.isInteger(sentAt)) {
      return invalid(`sent_at must be an integer of Unix seconds, got ${describeValue(sentAt)}`)
    }
    if ((sentAt as number) <= 0) {
      return invalid(`sent_at must be a positive integer of Unix seconds, got ${sentAt}`)
    }
    if ((sentAt as number) >= SECONDS_CEILING) {
      const unit = unitOf(sentAt as number, latest)
      return invalid(
        `sent_at must be Unix seconds, got ${sentAt}` +
          (unit === '' ? ', which is thousands of years from now' : `, which looks like ${unit}`),
      )
    }
    skewSeconds = receivedSeconds - (sentAt as number)
  }
  const corrected = skewSeconds === null ? (timestamp as number) : (timestamp as number) + skewSeconds
  if (corrected <= 0) {
    return invalid(
      skewSeconds === null
        ? `timestamp must be a positive integer of Unix seconds, got ${timestamp}`
        : `timestamp is not positive after clock-skew correction by sent_at (${timestamp} + ${skewSeconds} = ${corrected})`,
    )
  }
  if (corrected > latest) {
    // A date string far ahead is just far ahead, never a finer unit.
    const unit = iso ? '' : unitOf(timestamp as number, latest)
    if (unit !== '')
      return invalid(`timestamp must be Unix seconds, got ${timestamp}, which looks like ${unit}`)
    return invalid(
      `timestamp is ${corrected - receivedSeconds} seconds in the future` +
        (skewSeconds === null ? '' : ' after clock-skew correction by sent_at') +
        `, more than the ${limits.clockSkewSeconds} allowed for clock skew`,
    )
  }

  let bytesBound =
    FIXED_BYTES_BOUND +
    6 * ((eventName as string).length + (userId as string).length + (campaignId?.length ?? 0))

  let tags: readonly string[]
  const rawTags = raw.tags
  if (rawTags == null) {
    tags = []
  } else {
    if (!Array.isArray(rawTags))
      return invalid(`tags must be an array of strings, got ${describeValue(rawTags)}`)
    if (rawTags.length > limits.maxTags) {
      return invalid(`tags must have at most ${limits.maxTags} entries, got ${rawTags.length}`)
    }
    for (let i = 0; i < rawTags.length; i++) {
      const tag = rawTags[i]
      if (typeof tag !== 'string') return invalid(`tags[${i}] must be a string, got ${describeValue(tag)}`)
      if (tag.length > maxLength) return invalid(tooLong(`tags[${i}]`, maxLength, tag))
      if (!tag.isWellFormed()) return invalid(loneSurrogate(`tags[${i}]`))
      bytesBound += 6 * tag.length + 3
    }
    tags = rawTags as string[]
  }

  let metadata: Record<string, unknown> | null = null
  const rawMetadata = raw.metadata
  if (rawMetadata != null) {
    if (typeof rawMetadata !== 'object' || Array.isArray(rawMetadata)) {
      return invalid(`metadata must be a JSON object, got ${describeValue(rawMetadata)}`)
    }
    error = metadataError(rawMetadata, limits.maxDepth)
    if (error !== undefined) return invalid(error)
    bytesBound += walkBytes
    metadata = rawMetadata as Record<string, unknown>
  }

  let eventId: string
  if (clientId != null) {
    eventId = clientId as string
  } else if (ctx.idempotencyKey !== undefined && ctx.idempotencyKey !== '') {
    eventId = index === undefined ? ctx.idempotencyKey : batchIdempotencyKey(ctx.idempotencyKey, index)
  } else {
    eventId = contentEventId(
      eventName as string,
      channel as Channel,
      campaignId,
      userId as string,
      timestamp as number,
      tags,
      metadata,
    )
  }
  bytesBound += 6 * eventId.length

  const event: NormalizedEvent = {
    event_id: eventId,
    event_name: eventName as string,
    channel: channel as Channel,
    campaign_id: campaignId,
    user_id: userId as string,
    timestamp: corrected,
    received_at: ctx.receivedAt,
    tags,
    metadata,
  }
  // Only with API keys on, so the events (and WAL lines) of a keyless server stay as they were.
  if (ctx.tenant) {
    ;(event as { tenant?: string }).tenant = ctx.tenant
    bytesBound += 12 + ctx.tenant.length
  }
  // The bound (every string char as a 6-byte \u escape) clears almost every event without
  // serialising it; only a possibly oversize event pays for the exact count.
  if (bytesBound > limits.maxEventBytes) {
    const bytes = Buffer.byteLength(serializeEvent(event), 'utf8')
    if (bytes > limits.maxEventBytes) {
      return {
        ok: false,
        error: `event is larger than ${limits.maxEventBytes} bytes (got ${bytes})`,
        tooLarge: true,
      }
    }
  }
  return { ok: true, event, skewSeconds }
}

function invalid(error: string): ValidationResult {
  return { ok: false, error, tooLarge: false }
}

/** The problem with a required, non-blank, bounded string, or undefined when there is none. */
function textError(field: string, value: unknown, maxLength: number): string | undefined {
  if (typeof value !== 'string') {
    return value == null ? `${field} is required` : `${field} must be a string, got ${describeValue(value)}`
  }
  if (value.length > maxLength) return tooLong(field, maxLength, value)
  if (isBlank(value)) return `${field} must not be empty or only whitespace`
  if (!value.isWellFormed()) return loneSurrogate(field)
  return undefined
}

function loneSurrogate(field: string): string {
  return `${field} contains a lone UTF-16 surrogate; send well-formed Unicode`
}

function tooLong(field: string, maxLength: number, value: string): string {
  return `${field} must be at most ${maxLength} characters, got ${value.length}`
}

/** True for '' and for strings of only whitespace (String.prototype.trim's definition). */
function isBlank(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c > 0x20 && c < 0x7f) return false
    const space =
      c === 0x20 ||
      (c >= 0x09 && c <= 0x0d) ||
      c === 0xa0 ||
      c === 0x1680 ||
      (c >= 0x2000 && c <= 0x200a) ||
      c === 0x2028 ||
      c === 0x2029 ||
      c === 0x202f ||
      c === 0x205f ||
      c === 0x3000 ||
      c === 0xfeff
    if (!space) return false
  }
  return true
}

/**
 * The unit a too-large epoch value was probably sent in, or '' when none makes it plausible.
 * 10¹¹ seconds is the year 5138 and 10¹¹ milliseconds is 1973: below it, a value is seconds.
 */
function unitOf(value: number, latestSeconds: number): string {
  if (value < SECONDS_CEILING) return ''
  if (value / 1e3 <= latestSeconds) return 'milliseconds'
  if (value / 1e6 <= latestSeconds) return 'microseconds'
  if (value / 1e9 <= latestSeconds) return 'nanoseconds'
  return ''
}

// The metadata walk. Its running totals live in module state rather than in a per-event object:
// validation is synchronous, so one walk never overlaps another.
const OK = 0
const TOO_DEEP = 1
const TOO_MANY_KEYS = 2
const NOT_JSON = 3
const LONE_SURROGATE = 4
const LONE_SURROGATE_KEY = 5
const UNSAFE_INTEGER = 6

let walkKeys = 0
/** Upper bound of the walked value's JSON bytes. */
let walkBytes = 0
/** On failure: the path to the problem, innermost step first. */
let walkPath: (string | number)[] = []
let walkBadValue: unknown

function metadataError(metadata: object, maxDepth: number): string | undefined {
  walkKeys = 0
  walkBytes = 0
  const status = walkContainer(metadata, 0, maxDepth)
  if (status === OK) return undefined
  const where = formatPath('metadata', walkPath.reverse())
  walkPath = []
  switch (status) {
    case TOO_DEEP:
      return `metadata must be nested at most ${maxDepth} levels deep, ${where} is deeper`
    case TOO_MANY_KEYS:
      return `metadata must have at most ${MAX_METADATA_KEYS} keys in all`
    case LONE_SURROGATE:
      return loneSurrogate(where)
    case LONE_SURROGATE_KEY:
      return `${where} has a key that contains a lone UTF-16 surrogate (${quote(walkBadValue as string)}); send well-formed Unicode`
    case UNSAFE_INTEGER:
      return `${where} is an integer beyond ±${Number.MAX_SAFE_INTEGER} (got ${walkBadValue}), which may not be stored exactly; send it as a string`
    default:
      return `${where} must be a JSON value, got ${describeValue(walkBadValue)}`
  }
}

function walkValue(value: unknown, depth: number, maxDepth: number): number {
  switch (typeof value) {
    case 'string':
      walkBytes += 6 * value.length + 2
      if (value.isWellFormed()) return OK
      return LONE_SURROGATE
    case 'number':
      if (!Number.isFinite(value)) break
      walkBytes += 25
      // |value| ≥ 2^53 is always whole; the rare hit costs the second test.
      if ((value < 9007199254740992 && value > -9007199254740992) || !Number.isInteger(value)) return OK
      walkBadValue = value
      return UNSAFE_INTEGER
    case 'boolean':
      walkBytes += 5
      return OK
    case 'object':
      if (value === null) {
        walkBytes += 4
        return OK
      }
      return walkContainer(value, depth, maxDepth)
  }
  walkBadValue = value
  return NOT_JSON
}

function walkContainer(value: object, depth: number, maxDepth: number): number {
  if (depth > maxDepth) return TOO_DEEP
  walkBytes += 2
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const status = walkValue(value[i], depth + 1, maxDepth)
      if (status !== OK) {
        walkPath.push(i)
        return status
      }
      walkBytes += 1
    }
    return OK
  }
  const object = value as Record<string, unknown>
  for (const key in object) {
    if (++walkKeys > MAX_METADATA_KEYS) return TOO_MANY_KEYS
    walkBytes += 6 * key.length + 4
    if (!key.isWellFormed()) {
      walkBadValue = key
      return LONE_SURROGATE_KEY
    }
    const status = walkValue(object[key], depth + 1, maxDepth)
    if (status !== OK) {
      walkPath.push(key)
      return status
    }
  }
  return OK
}

/**
 * Log messages → WAL lines. `consume` reads logs Spillway nodes wrote (each message one
 * normalized event, as the kafka and nats sinks publish it), but a topic is open to any producer,
 * so every message is checked before it enters the WAL:
 * - a normalized event (it has `received_at`) is checked field by field and written back in the
 *   WAL's canonical form (serializeEvent), so delivery's dedup keys and the sinks read it as they
 *   read an event from the HTTP API;
 * - an event in the API's shape (no `received_at`) goes through the intake's validation, exactly
 *   as if it had been POSTed, and is received now;
 * - anything else (not JSON, not an object, wrong types, unknown fields) is not an event: it is
 *   returned with the reason, for the dead-letter store (and the log's dead-letter topic), never
 *   silently dropped and never allowed to block the messages behind it.
 */
import { describeValue, quote } from '../intake/describe.ts'
import { serializeEvent } from '../intake/serialize.ts'
import {
  CHANNELS,
  type Channel,
  EVENT_FIELDS,
  type IntakeLimits,
  type NormalizedEvent,
} from '../intake/types.ts'
import { MAX_EVENT_ID_LENGTH, validateEvent } from '../intake/validate.ts'

export interface RefusedMessage {
  /** Index of the message in its batch. */
  readonly index: number
  readonly value: Buffer
  readonly reason: string
}

export interface WalLines {
  /** NDJSON of the events, one line each, ready for one WAL record; empty when none was valid. */
  readonly payload: Buffer
  readonly count: number
  readonly refused: readonly RefusedMessage[]
}

const CHANNEL_SET: ReadonlySet<string> = new Set(CHANNELS)
const NORMALIZED_FIELDS: ReadonlySet<string> = new Set(EVENT_FIELDS)
const TENANT = /^[A-Za-z0-9._-]{1,64}$/

export function toWalLines(values: readonly Buffer[], limits: IntakeLimits, receivedAt: number): WalLines {
  let text = ''
  let count = 0
  const refused: RefusedMessage[] = []
  for (let i = 0; i < values.length; i++) {
    const value = values[i]
    const result = readEvent(value, limits, receivedAt)
    if (typeof result === 'string') {
      refused.push({ index: i, value, reason: result })
      continue
    }
    text += `${serializeEvent(result)}\n`
    count++
  }
  return { payload: Buffer.from(text, 'utf8'), count, refused }
}

/** The event in one message, or why it is not one. */
export function readEvent(value: Buffer, limits: IntakeLimits, receivedAt: number): NormalizedEvent | string {
  if (value.length > limits.maxEventBytes + 1024) {
    return `message of ${value.length} bytes is larger than an event may be (maxEventBytes ${limits.maxEventBytes})`
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(value.toString('utf8'))
  } catch (error) {
    return `message is not JSON: ${(error as Error).message}`
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return `message must be a JSON object (an event), got ${describeValue(parsed)}`
  }
  if (!('received_at' in parsed)) {
    const result = validateEvent(parsed, { receivedAt }, limits)
    return result.ok ? result.event : result.error
  }
  return normalizedError(parsed as Record<string, unknown>) ?? (parsed as NormalizedEvent)
}

/** Why `raw` is not a NormalizedEvent as the WAL holds it; undefined when it is one. */
function normalizedError(raw: Record<string, unknown>): string | undefined {
  for (const key in raw) {
    if (!NORMALIZED_FIELDS.has(key)) return `unknown field ${quote(key)} in a normalized event`
  }
  const id = raw.event_id
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_EVENT_ID_LENGTH) {
    return `event_id must be a string of 1 to ${MAX_EVENT_ID_LENGTH} characters, got ${describeValue(id)}`
  }
  // An API key label (auth.ts); absent without keys. It scopes the event's dedup key.
  if (raw.tenant !== undefined && (typeof raw.tenant !== 'string' || !TENANT.test(raw.tenant))) {
    return `tenant must be an API key label (1 to 64 of A-Z a-z 0-9 . _ -), got ${describeValue(raw.tenant)}`
  }
  for (const field of ['event_name', 'user_id'] as const) {
    if (typeof raw[field] !== 'string' || raw[field] === '') {
      return `${field} must be a non-empty string, got ${describeValue(raw[field])}`
    }
  }
  if (typeof raw.channel !== 'string' || !CHANNEL_SET.has(raw.channel as Channel)) {
    return `channel must be one of ${CHANNELS.join(', ')}, got ${describeValue(raw.channel)}`
  }
  if (raw.campaign_id !== null && typeof raw.campaign_id !== 'string') {
    return `campaign_id must be a string or null, got ${describeValue(raw.campaign_id)}`
  }
  for (const field of ['timestamp', 'received_at'] as const) {
    if (!Number.isSafeInteger(raw[field])) {
      return `${field} must be an integer, got ${describeValue(raw[field])}`
    }
  }
  const tags = raw.tags
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) {
    return `tags must be an array of strings, got ${describeValue(tags)}`
  }
  const metadata = raw.metadata
  if (metadata !== null && (typeof metadata !== 'object' || Array.isArray(metadata))) {
    return `metadata must be an object or null, got ${describeValue(metadata)}`
  }
  return undefined
}

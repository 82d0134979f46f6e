/**
 * Log messages → WAL lines. `consume` reads logs Spillway nodes wrote (each message one
 * normalized event, as the kafka and nats sinks publish it), but a topic is open to any producer,
 * so every message is checked before it enters the WAL:
 * - a normalized event (it has `received_at`) is checked field by field, by checks derived from
 *   the field table (below), and written back in the WAL's canonical form (serializeEvent), so
 *   delivery's dedup keys and the sinks read it as they read an event from the HTTP API;
 * - an event in the API's shape (no `received_at`) goes through the intake's validation, exactly
 *   as if it had been POSTed, and is received now;
 * - anything else (not JSON, not an object, wrong types, unknown fields) is not an event: it is
 *   returned with the reason, for the dead-letter store (and the log's dead-letter topic), never
 *   silently dropped and never allowed to block the messages behind it.
 */
import { EVENT_TABLE, type EventField, STORED_FIELDS } from '../event/fields.ts'
import { describeValue, quote } from '../intake/describe.ts'
import { serializeEvent } from '../intake/serialize.ts'
import type { IntakeLimits, NormalizedEvent } from '../intake/types.ts'
import { validateEvent } from '../intake/validate.ts'

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

const NORMALIZED_FIELDS: ReadonlySet<string> = new Set(STORED_FIELDS)

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

/**
 * One check per stored field, derived from the field table (src/event/fields.ts): what the WAL
 * may hold, not what the API accepts — the limits of the node that accepted the event are not
 * this node's to re-judge, so only shapes are checked (and the table's fixed bounds).
 */
type FieldCheck = (value: unknown) => string | undefined

function checkOf(field: EventField): FieldCheck {
  const name = field.name
  switch (field.kind) {
    case 'text': {
      const max = field.maxLength
      if (typeof max === 'number') {
        return (v) =>
          typeof v === 'string' && v.length > 0 && v.length <= max
            ? undefined
            : `${name} must be a string of 1 to ${max} characters, got ${describeValue(v)}`
      }
      return (v) =>
        typeof v === 'string' && v !== ''
          ? undefined
          : `${name} must be a non-empty string, got ${describeValue(v)}`
    }
    case 'string':
      return (v) =>
        typeof v === 'string' || (field.nullable && v === null)
          ? undefined
          : `${name} must be a string${field.nullable ? ' or null' : ''}, got ${describeValue(v)}`
    case 'label': {
      // An API key label (auth.ts); absent without keys. It scopes the event's dedup key.
      const label = new RegExp(`^[A-Za-z0-9._-]{1,${field.maxLength}}$`)
      return (v) =>
        (v === undefined && field.omittedWhenUnset) || (typeof v === 'string' && label.test(v))
          ? undefined
          : `${name} must be an API key label (1 to ${field.maxLength} of A-Z a-z 0-9 . _ -), got ${describeValue(v)}`
    }
    case 'enum': {
      const values: readonly string[] = field.values ?? []
      return (v) =>
        typeof v === 'string' && values.includes(v)
          ? undefined
          : `${name} must be one of ${values.join(', ')}, got ${describeValue(v)}`
    }
    case 'seconds':
    case 'millis':
      return (v) =>
        Number.isSafeInteger(v) ? undefined : `${name} must be an integer, got ${describeValue(v)}`
    case 'strings':
      return (v) =>
        Array.isArray(v) && v.every((t) => typeof t === 'string')
          ? undefined
          : `${name} must be an array of strings, got ${describeValue(v)}`
    case 'object':
      return (v) =>
        (typeof v === 'object' && v !== null && !Array.isArray(v)) || (field.nullable && v === null)
          ? undefined
          : `${name} must be an object${field.nullable ? ' or null' : ''}, got ${describeValue(v)}`
  }
}

const CHECKS: readonly (readonly [string, FieldCheck])[] = (EVENT_TABLE as readonly EventField[])
  .filter((field) => field.stored)
  .map((field) => [field.name, checkOf(field)])

/** Why `raw` is not a NormalizedEvent as the WAL holds it; undefined when it is one. */
function normalizedError(raw: Record<string, unknown>): string | undefined {
  for (const key in raw) {
    if (!NORMALIZED_FIELDS.has(key)) return `unknown field ${quote(key)} in a normalized event`
  }
  for (const [name, check] of CHECKS) {
    const error = check(raw[name])
    if (error !== undefined) return error
  }
  return undefined
}

/**
 * The one event factory for tests: the field table's example (src/event/fields.ts EVENT_EXAMPLE,
 * the event of docs/ARCHITECTURE.md "The event"), with overrides. A field added to the table
 * reaches every test that starts from here.
 */
import { CHANNELS, EVENT_EXAMPLE, EVENT_TABLE, type EventField } from '../../src/event/fields.ts'
import type { NormalizedEvent } from '../../src/intake/types.ts'

/**
 * An API body: the example event, `overrides` applied (a key set to undefined is removed — give
 * `event_id: undefined` when the server must derive the id, or every such body shares the example's).
 */
export function eventBody<O extends Record<string, unknown> = Record<string, unknown>>(
  overrides: O = {} as O,
): Record<string, unknown> & O {
  const body: Record<string, unknown> = { ...structuredClone(EVENT_EXAMPLE), ...overrides }
  for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key]
  return body as Record<string, unknown> & O
}

/** A normalized event (the WAL's form): every stored field's example, `tenant` left out, with overrides. */
export function normalizedEvent(overrides: Partial<NormalizedEvent> = {}): NormalizedEvent {
  const event = Object.fromEntries(
    EVENT_TABLE.filter((f) => f.stored && f.name !== 'tenant').map((f) => [
      f.name,
      structuredClone(f.example),
    ]),
  )
  return { ...event, ...overrides } as NormalizedEvent
}

// The optional fields a body may leave out, as the intake stores them then: null, or no tags.
const UNSET: Partial<NormalizedEvent> = Object.fromEntries(
  (EVENT_TABLE as readonly EventField[])
    .filter((f) => f.input && f.stored && !f.required && f.name !== 'event_id')
    .map((f) => [f.name, f.nullable ? null : f.kind === 'strings' ? [] : '']),
)

/** A normalized event with this id and the optional fields unset (no campaign, tags or metadata), with overrides. */
export function sparseEvent(id: string, overrides: Partial<NormalizedEvent> = {}): NormalizedEvent {
  return normalizedEvent({ event_id: id, ...structuredClone(UNSET), ...overrides })
}

/** `n` distinct sparse events with ids `<prefix>-<i>`, varied in every column. */
export function makeEvents(n: number, prefix: string, receivedAt = 1_723_475_612_345): NormalizedEvent[] {
  return Array.from({ length: n }, (_, i) =>
    sparseEvent(`${prefix}-${i}`, {
      event_name: `name_${i % 3}`,
      channel: CHANNELS[i % CHANNELS.length],
      campaign_id: i % 2 === 0 ? `cmp_${i % 7}` : null,
      user_id: `user_${i % 101}`,
      timestamp: 1_723_475_612 + i,
      received_at: receivedAt,
      tags: i % 4 === 0 ? [] : [`t${i % 5}`, 'x'],
      metadata: i % 3 === 0 ? null : { i, nested: { ok: true } },
    }),
  )
}

let unique = 0
/** An event_id no other call in this process returns: `<prefix>-<pid>-<n>`. */
export function uniqueEventId(prefix = 'ev'): string {
  return `${prefix}-${process.pid}-${unique++}`
}

/** A `POST /events/batch` body: one JSON event a line. */
export function ndjson(events: readonly unknown[]): string {
  return events.map((e) => JSON.stringify(e)).join('\n')
}

/** Sparse event number `n`: id `e<n>`, user `user_<n % 7>` (seven users however many events), with overrides. */
export function numberedEvent(n: number, overrides: Partial<NormalizedEvent> = {}): NormalizedEvent {
  return sparseEvent(`e${n}`, { user_id: `user_${n % 7}`, ...overrides })
}

/** The numbered events `from` … `from + count - 1`. */
export function numberedEvents(from: number, count: number): NormalizedEvent[] {
  return Array.from({ length: count }, (_, i) => numberedEvent(from + i))
}

/**
 * The one event factory for tests: the field table's example (src/event/fields.ts EVENT_EXAMPLE,
 * the event of docs/ARCHITECTURE.md "The event"), with overrides. A field added to the table
 * reaches every test that starts from here.
 */
import { EVENT_EXAMPLE, EVENT_TABLE } from '../../src/event/fields.ts'
import type { NormalizedEvent } from '../../src/intake/types.ts'

/** An API body: the example event, `overrides` applied (a key set to undefined is removed). */
export function eventBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const body: Record<string, unknown> = { ...structuredClone(EVENT_EXAMPLE), ...overrides }
  for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key]
  return body
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

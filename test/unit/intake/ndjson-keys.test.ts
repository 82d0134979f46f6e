import assert from 'node:assert/strict'
import { test } from 'node:test'
import { dedupKeyOf } from '../../../src/intake/event-id.ts'
import { keepLines, payloadKeys } from '../../../src/intake/ndjson-keys.ts'
import { encodeEvents } from '../../../src/intake/serialize.ts'
import type { NormalizedEvent } from '../../../src/intake/types.ts'
import { sparseEvent } from '../../helpers/events.ts'

// An event_id inside metadata must not be taken for the event's.
const event = (id: string): NormalizedEvent =>
  sparseEvent(id, {
    event_name: 'view',
    user_id: 'u',
    timestamp: 1,
    received_at: 2,
    metadata: { event_id: 'not this one' },
  })

test('the keys of WAL lines, escapes and non-ASCII included, without decoding the events', () => {
  const ids = ['plain', 'with "quotes"', 'back\\slash', 'tab\there', 'ünïcødé-🙂', 'x'.repeat(128), '\\"']
  const payload = encodeEvents(ids.map(event))
  const parsed = payloadKeys(payload)
  assert.deepEqual(parsed.keys, ids)
  assert.equal(parsed.starts[0], 0)
  assert.equal(parsed.starts.length, ids.length)
})

test('with a tenant the key is <tenant>/<event_id>, read from the line as from the event', () => {
  const events = ['plain', 'with "quotes"', 'ünïcødé', 'a/b'].flatMap((id) => [
    { ...event(id), tenant: 'alice' },
    { ...event(id), tenant: 'bob.b-2_x' },
    event(id),
  ])
  const keys = payloadKeys(encodeEvents(events)).keys
  assert.deepEqual(keys, events.map(dedupKeyOf))
  assert.deepEqual(keys.slice(0, 3), ['alice/plain', 'bob.b-2_x/plain', 'plain'])
  // Lines of another shape (field order) give the same keys.
  const shuffled = events.map(({ event_id, ...rest }) => JSON.stringify({ ...rest, event_id })).join('\n')
  assert.deepEqual(payloadKeys(Buffer.from(shuffled)).keys, events.map(dedupKeyOf))
})

test('lines of another shape are decoded whole; blank lines are skipped', () => {
  const payload = Buffer.from('{"event_name":"x","event_id":"late"}\n\n{"event_id":"a"}\n')
  assert.deepEqual(payloadKeys(payload).keys, ['late', 'a'])
  assert.throws(() => payloadKeys(Buffer.from('{"event_name":"x"}\n')), /no string event_id/)
  assert.throws(() => payloadKeys(Buffer.from('not json\n')))
})

test('keepLines cuts out the dropped lines and keeps the rest byte for byte', () => {
  const payload = encodeEvents(['a', 'b', 'c', 'd'].map(event))
  const parsed = payloadKeys(payload)
  assert.equal(keepLines(payload, parsed, [true, true, true, true]), payload, 'all kept: same buffer')
  const kept = keepLines(payload, parsed, [false, true, false, true])
  assert.deepEqual(kept, encodeEvents(['b', 'd'].map(event)))
  assert.equal(keepLines(payload, parsed, [false, false, false, false]).length, 0)
})

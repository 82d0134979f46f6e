import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MemoryQueryBackend } from '../../../../src/sinks/memory/query.ts'
import { MemorySink } from '../../../../src/sinks/memory/sink.ts'
import { sparseEvent } from '../../../helpers/events.ts'
import { assertExploreContract } from '../../../helpers/explore-contract.ts'
import { otherEvents, signupEvents } from '../../../helpers/metrics-contract.ts'

test('memory explore: the contract holds with every event stored twice (copies count once)', async () => {
  const sink = new MemorySink()
  await sink.open()
  const all = [...signupEvents(), ...otherEvents()]
  await sink.write({ events: all, from: 0, to: 1 })
  await sink.write({ events: all, from: 0, to: 1 })
  assert.equal(sink.events.length, all.length * 2)
  await assertExploreContract(new MemoryQueryBackend(sink))
})

test('memory explore: the same event_id in two tenants is two events', async () => {
  const sink = new MemorySink()
  await sink.open()
  await sink.write({
    events: [
      sparseEvent('same', { tenant: 'a' }),
      sparseEvent('same', { tenant: 'b' }),
      sparseEvent('same', { tenant: 'a' }),
    ],
    from: 0,
    to: 1,
  })
  const query = new MemoryQueryBackend(sink)
  assert.deepEqual(await query.topEvents({ limit: 1 }), [
    { event_name: 'product_view', total_events: 2, unique_users: 1 },
  ])
})

/**
 * The delivery-time dedup check inside the real delivery loop (memory log and sink): duplicates
 * are cut out before the sink sees them, and only keys the sink confirmed count as stored.
 * L2 (Redis) is tested against a real Redis in test/integration/dedup-redis.test.ts.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DeliveryCheck } from '../../../src/dedup/delivery-check.ts'
import { eventually, ids, rig } from '../delivery/helpers.ts'
import { event, events } from '../delivery/memory-log.ts'

const check = (cacheEntries = 1000) => new DeliveryCheck({ nodeId: 'n1', cacheEntries, windowMs: 60_000 })

test('repeats within a record, across records and across batches are stored once', async (t) => {
  const dedup = check()
  const { log, sink, loop } = await rig(t, { dedup, batchRows: 4 })
  log.append([event(1), event(2), event(1)])
  log.append([event(2), event(3)])
  await loop.start()
  await eventually(() => loop.cursor === log.head, 'first batch delivered')
  log.append([event(3), event(4), event(1)])
  await eventually(() => loop.cursor === log.head, 'second batch delivered')
  assert.deepEqual(ids(sink.events), ['e1', 'e2', 'e3', 'e4'])
  const stats = loop.stats()
  assert.equal(stats.duplicatesDelivery, 4)
  assert.equal(stats.duplicatesL2, 0)
  assert.equal(stats.deliveredRows, 4)
})

test('a batch the sink failed is retried whole: its keys were not marked as stored', async (t) => {
  const dedup = check()
  const { log, sink, loop } = await rig(t, { dedup })
  sink.failNext({ kind: 'retry', error: new Error('store down') }, 3)
  log.append(events(0, 5))
  await loop.start()
  await sink.waitForEvents(5)
  assert.deepEqual(ids(sink.events), ids(events(0, 5)))
  assert.equal(loop.stats().duplicatesDelivery, 0)
  assert.ok(loop.stats().retries >= 3)
})

test('a record made only of duplicates moves the cursor without a sink write', async (t) => {
  const dedup = check()
  const { log, sink, loop } = await rig(t, { dedup })
  log.append(events(0, 3))
  await loop.start()
  await sink.waitForEvents(3)
  const writes = sink.writes.length
  log.append(events(0, 3))
  await eventually(() => loop.cursor === log.head, 'cursor past the duplicate record')
  assert.equal(sink.writes.length, writes, 'no write for a record of duplicates')
  assert.equal(sink.events.length, 3)
})

test('keys warmed from the store are duplicates after a restart; expired ones are not', async (t) => {
  const dedup = check()
  const now = Date.now()
  assert.equal(
    dedup.warm([
      ['e1', now - 1000],
      ['e2', now - 120_000],
    ]),
    1,
    'e2 is outside the 60 s window',
  )
  const { log, sink, loop } = await rig(t, { dedup })
  log.append(events(1, 2))
  await loop.start()
  await eventually(() => loop.cursor === log.head, 'delivered')
  assert.deepEqual(ids(sink.events), ['e2'])
})

test('a refused event is dead-lettered, and a later copy of it is still delivered', async (t) => {
  const dedup = check()
  const { log, sink, loop } = await rig(t, { dedup })
  let refuse = true
  sink.rejectEvents((e) => refuse && e.event_id === 'e2', 'bad row')
  log.append(events(0, 4))
  await loop.start()
  await eventually(() => loop.stats().deadLettered === 1, 'e2 dead-lettered')
  refuse = false
  log.append([event(2)])
  await eventually(() => loop.cursor === log.head, 'delivered')
  assert.deepEqual(ids(sink.events).sort(), ['e0', 'e1', 'e2', 'e3'])
})

test('without a cache (0 entries) nothing but in-batch repeats is cut', async (t) => {
  const dedup = check(0)
  const { log, sink, loop } = await rig(t, { dedup })
  log.append([event(1), event(1)])
  await loop.start()
  await eventually(() => loop.cursor === log.head, 'delivered')
  log.append([event(1)])
  await eventually(() => loop.cursor === log.head, 'delivered again')
  assert.deepEqual(ids(sink.events), ['e1', 'e1'])
})

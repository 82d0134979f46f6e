/**
 * The delivery-time dedup check inside the real delivery loop (memory log and sink): duplicates
 * are cut out before the sink sees them, and only keys the sink confirmed count as stored.
 * L2 (Redis) is tested against a real Redis in test/integration/dedup-redis.test.ts.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DeliveryCheck } from '../../../src/dedup/delivery-check.ts'
import type { RedisDedup } from '../../../src/dedup/redis.ts'
import { numberedEvent, numberedEvents } from '../../helpers/events.ts'
import { eventually, ids, rig } from '../delivery/helpers.ts'

const check = (cacheEntries = 1000) =>
  new DeliveryCheck({ nodeId: 'n1', namespace: 'memory', cacheEntries, windowMs: 60_000 })

test('repeats within a record, across records and across batches are stored once', async (t) => {
  const dedup = check()
  const { log, sink, loop } = await rig(t, { dedup, batchRows: 4 })
  log.append([numberedEvent(1), numberedEvent(2), numberedEvent(1)])
  log.append([numberedEvent(2), numberedEvent(3)])
  await loop.start()
  await eventually(() => loop.cursor === log.head, 'first batch delivered')
  log.append([numberedEvent(3), numberedEvent(4), numberedEvent(1)])
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
  log.append(numberedEvents(0, 5))
  await loop.start()
  await sink.waitForEvents(5)
  assert.deepEqual(ids(sink.events), ids(numberedEvents(0, 5)))
  assert.equal(loop.stats().duplicatesDelivery, 0)
  assert.ok(loop.stats().retries >= 3)
})

test('a record made only of duplicates moves the cursor without a sink write', async (t) => {
  const dedup = check()
  const { log, sink, loop } = await rig(t, { dedup })
  log.append(numberedEvents(0, 3))
  await loop.start()
  await sink.waitForEvents(3)
  const writes = sink.writes.length
  log.append(numberedEvents(0, 3))
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
  log.append(numberedEvents(1, 2))
  await loop.start()
  await eventually(() => loop.cursor === log.head, 'delivered')
  assert.deepEqual(ids(sink.events), ['e2'])
})

test('a refused event is dead-lettered, and a later copy of it is still delivered', async (t) => {
  const dedup = check()
  const { log, sink, loop } = await rig(t, { dedup })
  let refuse = true
  sink.rejectEvents((e) => refuse && e.event_id === 'e2', 'bad row')
  log.append(numberedEvents(0, 4))
  await loop.start()
  await eventually(() => loop.stats().deadLettered === 1, 'e2 dead-lettered')
  refuse = false
  log.append([numberedEvent(2)])
  await eventually(() => loop.cursor === log.head, 'delivered')
  assert.deepEqual(ids(sink.events).sort(), ['e0', 'e1', 'e2', 'e3'])
})

test('without a cache (0 entries) nothing but in-batch repeats is cut', async (t) => {
  const dedup = check(0)
  const { log, sink, loop } = await rig(t, { dedup })
  log.append([numberedEvent(1), numberedEvent(1)])
  await loop.start()
  await eventually(() => loop.cursor === log.head, 'delivered')
  log.append([numberedEvent(1)])
  await eventually(() => loop.cursor === log.head, 'delivered again')
  assert.deepEqual(ids(sink.events), ['e1', 'e1'])
})

/** An L2 stand-in for the loop's logic (Redis itself is tested in test/integration/dedup-redis.test.ts). */
function slowL2(delayMs: number, log: string[]) {
  const held = new Map<string, string>()
  return {
    status: { state: 'up', errors: 0, lastError: null, downSince: null },
    async claim(keys: readonly string[], tokens: readonly string[]) {
      log.push(`claim ${keys[0]}`)
      await new Promise((resolve) => setTimeout(resolve, delayMs))
      return keys.map((key, i) => {
        const holder = held.get(key)
        if (holder === undefined) held.set(key, tokens[i])
        return holder === undefined ? 'new' : holder === tokens[i] ? 'ours' : 'taken'
      })
    },
    async release() {},
  } as unknown as RedisDedup
}

test('with L2, the next batch is read and claimed while the current one is written', async (t) => {
  const log: string[] = []
  const dedup = new DeliveryCheck({
    nodeId: 'n1',
    namespace: 'memory',
    cacheEntries: 1000,
    windowMs: 60_000,
    l2: slowL2(30, log),
  })
  const { log: wal, sink, loop } = await rig(t, { dedup, batchRows: 5, batchBytes: 1 << 20 })
  sink.delayNext(100, 3)
  for (let r = 0; r < 4; r++) wal.append(numberedEvents(r * 5, 5))
  wal.append([numberedEvent(0), numberedEvent(21)])
  const original = sink.write.bind(sink)
  sink.write = async (batch) => {
    log.push(`write ${batch.events[0]?.event_id}`)
    const verdict = await original(batch)
    log.push(`wrote ${batch.events[0]?.event_id}`)
    return verdict
  }
  await loop.start()
  await eventually(() => loop.cursor === wal.head, 'all delivered', 5000)
  assert.deepEqual(ids(sink.events), ids(numberedEvents(0, 20)).concat(['e21']))
  assert.equal(loop.stats().duplicatesDelivery, 1, 'e0 again: a duplicate of a stored event')
  // The claim of batch k+1 was made before the write of batch k returned.
  assert.ok(log.indexOf('claim e5') < log.indexOf('wrote e0'), log.join(', '))
  assert.ok(log.indexOf('claim e10') < log.indexOf('wrote e5'), log.join(', '))
})

test('with L2 and read-ahead, a failing sink still gets every event once and in order', async (t) => {
  const dedup = new DeliveryCheck({
    nodeId: 'n1',
    namespace: 'memory',
    cacheEntries: 1000,
    windowMs: 60_000,
    l2: slowL2(5, []),
  })
  const { log: wal, sink, loop } = await rig(t, { dedup, batchRows: 3 })
  sink.failNext({ kind: 'retry', error: new Error('down') }, 4)
  for (let r = 0; r < 10; r++) wal.append(numberedEvents(r * 3, 3))
  await loop.start()
  await eventually(() => loop.cursor === wal.head, 'all delivered', 5000)
  assert.deepEqual(ids(sink.events), ids(numberedEvents(0, 30)))
})

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MemorySink } from '../../../src/sinks/memory/sink.ts'
import { numberedEvent, numberedEvents } from '../../helpers/events.ts'
import { eventually, ids, rig } from './helpers.ts'
import { MemoryLog } from './memory-log.ts'

const retry = (afterMs?: number) => ({ kind: 'retry', error: new Error('store busy'), afterMs }) as const

test('delivers every event in log order exactly once and publishes the cursor', async (t) => {
  const { log, sink, loop, cursorFile } = await rig(t, { batchRows: 7 })
  await loop.start()
  const expected: string[] = []
  let n = 0
  for (let r = 0; r < 40; r++) {
    const batch = numberedEvents(n, 1 + (r % 5))
    n += batch.length
    expected.push(...ids(batch))
    log.append(batch)
    if (r % 9 === 0) await new Promise((resolve) => setTimeout(resolve, 1))
  }
  await sink.waitForEvents(expected.length)
  await eventually(() => loop.cursor === log.head, 'cursor at head')
  assert.deepEqual(ids(sink.events), expected)
  assert.equal(log.state.cursor(0), log.head)
  assert.equal(await cursorFile.load(), log.head)
  assert.ok(
    sink.writes.every((w) => w.batch.events.length <= 7),
    'no batch above batchRows',
  )
  const stats = loop.stats()
  assert.equal(stats.deliveredRows, expected.length)
  assert.equal(stats.backlogBytes, 0)
  assert.equal(stats.retries, 0)
})

test('the start cursor is published before start() resolves, even before the WAL recovered', async (t) => {
  const log = new MemoryLog()
  log.state.durableHead = -1
  log.state.oldest = -1
  const { sink, loop } = await rig(t, { log })
  await loop.start()
  assert.equal(log.state.cursor(0), 0)
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(sink.writes.length, 0)
  log.append(numberedEvents(0, 2))
  await sink.waitForEvents(2)
})

test('a batch closes at batchRows at once, without waiting for the linger', async (t) => {
  const { log, sink, loop } = await rig(t, { batchRows: 10, lingerMs: 10_000 })
  for (let i = 0; i < 30; i++) log.append([numberedEvent(i)])
  const started = Date.now()
  await loop.start()
  await sink.waitForEvents(30, 2000)
  assert.ok(Date.now() - started < 2000)
  assert.deepEqual(
    sink.writes.map((w) => w.batch.events.length),
    [10, 10, 10],
  )
})

test('a batch closes at batchBytes at once; the partial rest waits for the linger', async (t) => {
  const { log, sink, loop } = await rig(t, { batchBytes: 1000, lingerMs: 60_000 })
  for (let i = 0; i < 20; i++) log.append([numberedEvent(i)])
  const recordBytes = log.records[0].end - log.records[0].start
  const perBatch = Math.ceil(1000 / recordBytes)
  const full = Math.floor(20 / perBatch)
  await loop.start()
  await eventually(() => sink.writes.length === full, `${full} full batches`)
  for (const write of sink.writes) {
    assert.equal(write.batch.events.length, perBatch)
    assert.ok(write.batch.to - write.batch.from < 1000 + recordBytes, 'at most one record past batchBytes')
  }
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(sink.writes.length, full, 'the partial batch lingers')
  await loop.stop({ drain: true })
  assert.deepEqual(ids(sink.events), ids(numberedEvents(0, 20)))
})

test('a partial batch waits for the linger, gathering what arrives meanwhile', async (t) => {
  const { log, sink, loop } = await rig(t, { lingerMs: 150 })
  await loop.start()
  log.append([numberedEvent(1)])
  await new Promise((resolve) => setTimeout(resolve, 40))
  log.append([numberedEvent(2), numberedEvent(3)])
  await new Promise((resolve) => setTimeout(resolve, 40))
  assert.equal(sink.writes.length, 0, 'nothing written before the linger expired')
  await sink.waitForEvents(3, 2000)
  assert.equal(sink.writes.length, 1)
  assert.deepEqual(ids(sink.writes[0].batch.events), ['e1', 'e2', 'e3'])
  assert.equal(sink.writes[0].batch.from, log.records[0].start)
  assert.equal(sink.writes[0].batch.to, log.head)
})

test('pieces are whole records of at most batchRows events, a bigger record alone; the cursor stays on record boundaries', async (t) => {
  const sink = new MemorySink({ transactional: true })
  const { log, loop } = await rig(t, { sink, batchRows: 10 })
  const first = log.append(numberedEvents(0, 25))
  const second = log.append(numberedEvents(25, 3))
  await loop.start()
  await sink.waitForEvents(28)
  await eventually(() => loop.cursor === log.head, 'cursor at head')
  const pieces = sink.writes.map((w) => ({ n: w.batch.events.length, from: w.batch.from, to: w.batch.to }))
  assert.deepEqual(pieces, [
    { n: 25, from: first.start, to: first.end },
    { n: 3, from: second.start, to: second.end },
  ])
  assert.equal(sink.cursor, log.head)
})

test('retry keeps the cursor, redelivers the same batch, then succeeds', async (t) => {
  const { log, sink, loop, cursorFile } = await rig(t)
  sink.failNext(retry(), 3)
  log.append(numberedEvents(0, 4))
  log.append(numberedEvents(4, 4))
  const release = sink.holdNext()
  await loop.start()
  await eventually(() => sink.writes.length === 3, 'three refused writes')
  assert.equal(loop.cursor, 0, 'cursor did not move on retry')
  assert.equal(log.state.cursor(0), 0)
  assert.equal(await cursorFile.load(), null)
  release()
  await sink.waitForEvents(8)
  await eventually(() => loop.cursor === log.head, 'cursor at head')
  const batches = sink.writes.map((w) => w.batch)
  assert.equal(batches.length, 4)
  for (const batch of batches) assert.deepEqual(batch, batches[0], 'the same batch every time')
  assert.deepEqual(ids(sink.events), ids(numberedEvents(0, 8)))
  const stats = loop.stats()
  assert.equal(stats.retries, 3)
  assert.equal(stats.lastError, 'store busy')
  assert.equal(stats.deliveredBatches, 1)
})

test('a sink that throws is retried like a retry verdict', async (t) => {
  const { log, sink, loop } = await rig(t)
  sink.throwNext(new Error('driver bug'), 2)
  log.append(numberedEvents(0, 3))
  await loop.start()
  await sink.waitForEvents(3)
  assert.equal(sink.writes.length, 3)
  assert.equal(loop.stats().retries, 2)
  assert.deepEqual(ids(sink.events), ['e0', 'e1', 'e2'])
})

test("backoff honours the sink's afterMs", async (t) => {
  const { log, sink, loop } = await rig(t, { backoff: { initialMs: 1, maxMs: 1 } })
  sink.failNext(retry(200))
  log.append(numberedEvents(0, 2))
  await loop.start()
  await sink.waitForEvents(2)
  assert.equal(sink.writes.length, 2)
  const gap = sink.writes[1].at - sink.writes[0].at
  assert.ok(gap >= 190, `second try ${gap} ms after the first, expected ≥ 200`)
})

test('a permanent failure isolates the poison event: it is dead-lettered with the reason, the rest is delivered', async (t) => {
  const { log, sink, loop, deadLetter } = await rig(t)
  sink.rejectEvents((e) => e.event_id === 'e17', 'metadata.price is not a number')
  for (let r = 0; r < 8; r++) log.append(numberedEvents(r * 5, 5))
  const poisonRecord = log.records[3]
  await loop.start()
  await sink.waitForEvents(39)
  await eventually(() => loop.cursor === log.head, 'cursor at head')
  assert.deepEqual(
    ids(sink.events),
    ids(numberedEvents(0, 40)).filter((id) => id !== 'e17'),
  )
  const letters = await deadLetter.list()
  assert.equal(letters.length, 1)
  assert.equal((letters[0].event as { event_id: string }).event_id, 'e17')
  assert.equal(letters[0].sink, 'memory')
  assert.match(letters[0].reason, /metadata\.price is not a number/)
  assert.equal(letters[0].position, poisonRecord.start)
  assert.equal(letters[0].index, 2)
  const stats = loop.stats()
  assert.equal(stats.deadLettered, 1)
  assert.equal(stats.deliveredRows, 39)
  assert.ok(
    sink.writes.length <= 2 * Math.ceil(Math.log2(40)) + 2,
    `${sink.writes.length} writes to isolate one event`,
  )
})

test('while isolating, a transactional sink never commits past an event not yet resolved', async (t) => {
  const sink = new MemorySink({ transactional: true })
  const { log, loop, deadLetter } = await rig(t, { sink })
  sink.rejectEvents((e) => e.event_id === 'e5' || e.event_id === 'e11')
  const records = [
    log.append(numberedEvents(0, 4)),
    log.append(numberedEvents(4, 4)),
    log.append(numberedEvents(8, 4)),
  ]
  await loop.start()
  await eventually(() => loop.cursor === log.head, 'cursor at head')
  for (const write of sink.writes.filter((w) => w.verdict.kind === 'delivered')) {
    const last = write.batch.events.at(-1)
    if (!last) continue
    // `to` never passes the record holding the event that comes after this piece.
    const next = Number(last.event_id.slice(1)) + 1
    if (next < 12)
      assert.ok(write.batch.to <= records[Math.floor(next / 4)].start, `piece ending before e${next}`)
  }
  // e11 is the very last event: only a cursor-only commit can carry the batch's end.
  assert.equal(sink.cursor, log.head)
  const last = sink.writes.at(-1)!
  assert.deepEqual(last.batch.events, [])
  assert.deepEqual(
    (await deadLetter.list()).map((l) => (l.event as { event_id: string }).event_id),
    ['e5', 'e11'],
  )
})

test('an undecodable record is dead-lettered whole and the cursor moves past it', async (t) => {
  const { log, sink, loop, deadLetter } = await rig(t)
  log.append(numberedEvents(0, 2))
  log.appendRaw(Buffer.from('{"not json\n'))
  log.append(numberedEvents(2, 2))
  await loop.start()
  await sink.waitForEvents(4)
  await eventually(() => loop.cursor === log.head, 'cursor at head')
  const letters = await deadLetter.list()
  assert.equal(letters.length, 1)
  assert.equal(letters[0].event, '{"not json\n')
  assert.match(letters[0].reason, /does not decode/)
})

test('a restart resumes from the cursor file with no duplicates', async (t) => {
  const { log, sink, loop, restart, cursorFile } = await rig(t)
  log.append(numberedEvents(0, 5))
  await loop.start()
  await sink.waitForEvents(5)
  await loop.stop({ drain: false })
  assert.equal(await cursorFile.load(), log.head)
  log.append(numberedEvents(5, 5))
  const again = restart()
  await again.start()
  assert.equal(again.cursor, log.records[0].end)
  await sink.waitForEvents(10)
  await eventually(() => again.cursor === log.head, 'cursor at head')
  assert.deepEqual(ids(sink.events), ids(numberedEvents(0, 10)))
})

test('a restart resumes from loadCursor of a transactional sink with no duplicates', async (t) => {
  const sink = new MemorySink({ transactional: true })
  const { log, loop, restart, cursorFile } = await rig(t, { sink })
  log.append(numberedEvents(0, 5))
  await loop.start()
  await sink.waitForEvents(5)
  await loop.stop({ drain: false })
  log.append(numberedEvents(5, 5))
  const again = restart()
  await again.start()
  assert.equal(log.state.cursor(0), log.records[0].end, 'published from loadCursor')
  await sink.waitForEvents(10)
  assert.deepEqual(ids(sink.events), ids(numberedEvents(0, 10)))
  assert.equal(await cursorFile.load(), null, 'a transactional sink keeps no cursor file')
})

test('stop with drain delivers everything up to the head, without waiting for the linger', async (t) => {
  const { log, sink, loop } = await rig(t, { lingerMs: 60_000, batchRows: 100 })
  await loop.start()
  for (let i = 0; i < 10; i++) log.append(numberedEvents(i * 3, 3))
  const started = Date.now()
  await loop.stop({ drain: true })
  assert.ok(Date.now() - started < 1000, 'the drain did not wait for the linger')
  assert.equal(sink.events.length, 30)
  assert.equal(loop.cursor, log.head)
  assert.equal(loop.stats().phase, 'stopped')
})

test('stop with drain stops at the head as of the call', async (t) => {
  const { log, sink, loop } = await rig(t)
  log.append(numberedEvents(0, 3))
  const release = sink.holdNext()
  await loop.start()
  await eventually(() => sink.inFlight === 1, 'a write in flight')
  const stopping = loop.stop({ drain: true })
  log.append(numberedEvents(3, 3))
  release()
  await stopping
  assert.deepEqual(ids(sink.events), ['e0', 'e1', 'e2'])
  assert.equal(loop.cursor, log.records[0].end)
})

test('stop without drain ends a retrying loop at once and does not advance', async (t) => {
  const { log, sink, loop } = await rig(t, { backoff: { initialMs: 60_000, maxMs: 60_000, random: () => 1 } })
  sink.failNext(retry(), 100)
  log.append(numberedEvents(0, 3))
  await loop.start()
  await eventually(() => sink.writes.length === 1, 'first try')
  const started = Date.now()
  await loop.stop({ drain: false })
  assert.ok(Date.now() - started < 1000)
  assert.equal(loop.cursor, 0)
  assert.equal(log.state.cursor(0), 0)
  assert.equal(sink.events.length, 0)
})

test('a new sink starts at the oldest record still on disk', async (t) => {
  const log = new MemoryLog()
  log.append(numberedEvents(0, 2))
  const kept = log.append(numberedEvents(2, 2))
  log.truncateBefore(kept.start)
  const { sink, loop } = await rig(t, { log })
  await loop.start()
  await sink.waitForEvents(2)
  assert.deepEqual(ids(sink.events), ['e2', 'e3'])
})

test('stats report the backlog of a sink that is behind', async (t) => {
  const { log, sink, loop } = await rig(t)
  const release = sink.holdNext()
  log.append(numberedEvents(0, 3))
  await loop.start()
  await eventually(() => sink.inFlight === 1, 'a write in flight')
  assert.equal(loop.stats().backlogBytes, log.head)
  release()
  await eventually(() => loop.stats().backlogBytes === 0, 'no backlog')
  assert.equal(loop.stats().batchRows.count, 1)
})

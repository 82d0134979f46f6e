import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { NormalizedEvent } from '../../../../src/intake/types.ts'
import { MemoryQueryBackend } from '../../../../src/sinks/memory/query.ts'
import { MemorySink } from '../../../../src/sinks/memory/sink.ts'
import { sparseEvent } from '../../../helpers/events.ts'

const event = (id: string, overrides: Partial<NormalizedEvent> = {}) =>
  sparseEvent(id, { user_id: 'user_1', ...overrides })

const batch = (ids: string[], from = 0, to = 100) => ({ events: ids.map((id) => event(id)), from, to })

test('a memory sink keeps every delivered event in order, redeliveries included', async () => {
  const sink = new MemorySink()
  await sink.open()
  assert.deepEqual(await sink.write(batch(['a', 'b'])), { kind: 'delivered' })
  await sink.write(batch(['b', 'c']))
  assert.deepEqual(
    sink.events.map((e) => e.event_id),
    ['a', 'b', 'b', 'c'],
  )
  assert.equal(sink.writes.length, 2)
  assert.equal(sink.loadCursor, undefined, 'not transactional by default')
})

test('scripted verdicts, throws and delays are consumed one per write, in order', async () => {
  const sink = new MemorySink()
  await sink.open()
  const busy = new Error('busy')
  sink.failNext({ kind: 'retry', error: busy, afterMs: 5 }, 2).throwNext(new Error('boom')).delayNext(30)
  assert.equal(sink.pending, 4)
  assert.equal((await sink.write(batch(['a']))).kind, 'retry')
  assert.equal((await sink.write(batch(['a']))).kind, 'retry')
  await assert.rejects(sink.write(batch(['a'])), /boom/)
  const started = Date.now()
  assert.equal((await sink.write(batch(['a']))).kind, 'delivered')
  assert.ok(Date.now() - started >= 25)
  assert.equal(sink.pending, 0)
  assert.deepEqual(
    sink.writes.map((w) => w.verdict.kind),
    ['retry', 'retry', 'thrown', 'delivered'],
  )
  assert.equal(sink.events.length, 1)
})

test('a batch holding a poison event is refused permanently; one without it is delivered', async () => {
  const sink = new MemorySink().rejectEvents((e) => e.event_id === 'bad', 'price must be a number')
  await sink.open()
  const verdict = await sink.write(batch(['a', 'bad', 'c']))
  assert.equal(verdict.kind, 'permanent')
  assert.match(verdict.kind === 'permanent' ? verdict.error.message : '', /price must be a number.*bad/)
  assert.equal((await sink.write(batch(['a', 'c']))).kind, 'delivered')
  assert.equal(sink.events.length, 2)
})

test('a transactional memory sink commits its cursor with the data', async () => {
  const sink = new MemorySink({ transactional: true })
  await sink.open()
  assert.equal(await sink.loadCursor!(), null)
  await sink.write(batch(['a'], 0, 50))
  assert.equal(await sink.loadCursor!(), 50)
  sink.failNext({ kind: 'retry', error: new Error('x') })
  await sink.write(batch(['b'], 50, 90))
  assert.equal(await sink.loadCursor!(), 50, 'a refused batch commits nothing')
})

test('hold stalls a write until released; ping and open can be made to fail', async () => {
  const sink = new MemorySink()
  sink.failOpen(new Error('disk full'))
  await assert.rejects(sink.open(), /disk full/)
  sink.failOpen(null)
  await sink.open()
  await sink.ping()
  sink.failPing(new Error('unreachable'))
  await assert.rejects(sink.ping(), /unreachable/)
  const release = sink.holdNext()
  const writing = sink.write(batch(['a']))
  await new Promise((resolve) => setTimeout(resolve, 10))
  assert.equal(sink.inFlight, 1)
  release()
  await writing
  await sink.waitForEvents(1)
  await assert.rejects(sink.waitForEvents(5, 20), /1 of 5 events/)
  await sink.close()
  await assert.rejects(sink.write(batch(['b'])), /closed/)
})

test('the memory query backend counts each event_id once and users exactly', async () => {
  const sink = new MemorySink()
  await sink.open()
  const t0 = Date.UTC(2024, 7, 12, 15, 10) / 1000
  await sink.write({
    from: 0,
    to: 1,
    events: [
      event('a', { user_id: 'u1', timestamp: t0 }),
      event('b', { user_id: 'u2', timestamp: t0 + 60, channel: 'mobile' }),
      event('a', { user_id: 'u1', timestamp: t0 }),
      event('c', { user_id: 'u1', timestamp: t0 + 3600 }),
      event('d', { event_name: 'other', timestamp: t0 }),
    ],
  })
  const query = new MemoryQueryBackend(sink)
  assert.deepEqual(await query.totals({ event_name: 'product_view' }), { total_events: 3, unique_users: 2 })
  assert.deepEqual(await query.totals({ event_name: 'product_view', from: t0 + 1 }), {
    total_events: 2,
    unique_users: 2,
  })
  assert.deepEqual(await query.groups({ event_name: 'product_view', group_by: 'channel' }), [
    { group: 'mobile', total_events: 1, unique_users: 1 },
    { group: 'web', total_events: 2, unique_users: 1 },
  ])
  assert.deepEqual(await query.groups({ event_name: 'product_view', group_by: 'hour' }), [
    { group: '2024-08-12T15:00:00Z', total_events: 2, unique_users: 2 },
    { group: '2024-08-12T16:00:00Z', total_events: 1, unique_users: 1 },
  ])
  assert.deepEqual(await query.groups({ event_name: 'product_view', group_by: 'day' }), [
    { group: '2024-08-12T00:00:00Z', total_events: 3, unique_users: 2 },
  ])
})

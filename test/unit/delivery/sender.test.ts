/**
 * The sender alone, against the scriptable memory sink: retries until an answer, one call at a
 * time across timeouts, the breaker's pacing, and stop.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { RecordPiece } from '../../../src/delivery/batcher.ts'
import { Breaker, type BreakerOptions } from '../../../src/delivery/breaker.ts'
import { DeliveryCounters } from '../../../src/delivery/counters.ts'
import { Sender } from '../../../src/delivery/sender.ts'
import { Backoff } from '../../../src/shared/backoff.ts'
import { MemorySink } from '../../../src/sinks/memory/sink.ts'
import type { SinkBatch } from '../../../src/sinks/sink.ts'
import { numberedEvents } from '../../helpers/events.ts'
import { silent } from './helpers.ts'

const retry = (afterMs?: number) => ({ kind: 'retry', error: new Error('store busy'), afterMs }) as const

async function sender(options: { timeoutMs?: number; breaker?: BreakerOptions; signal?: AbortSignal } = {}) {
  const sink = new MemorySink()
  await sink.open()
  const counters = new DeliveryCounters()
  const breaker = new Breaker(options.breaker)
  const s = new Sender({
    sink,
    timeoutMs: options.timeoutMs ?? 10_000,
    backoff: new Backoff({ initialMs: 1, maxMs: 4 }),
    breaker,
    counters,
    logger: silent,
    signal: options.signal ?? new AbortController().signal,
  })
  return { sink, counters, breaker, sender: s }
}

const piece = (from = 0, count = 3): SinkBatch => ({
  events: numberedEvents(from, count),
  from,
  to: from + 100,
})

test('send retries a retry verdict and a throw until the sink answers, counting each failure', async () => {
  const { sink, counters, sender: s } = await sender()
  sink.failNext(retry(), 2).throwNext(new Error('socket hang up'))
  const answer = await s.send(piece())
  assert.equal(answer.kind, 'delivered')
  assert.equal(sink.writes.length, 4)
  assert.equal(counters.retries, 3)
  assert.equal(counters.lastError, 'socket hang up')
  assert.equal(s.retrying, false)
})

test('a permanent verdict is an answer: send returns it at once', async () => {
  const { sink, counters, sender: s } = await sender()
  sink.failNext({ kind: 'permanent', error: new Error('bad data') })
  const answer = await s.send(piece())
  assert.equal(answer.kind, 'permanent')
  assert.equal(sink.writes.length, 1)
  assert.equal(counters.retries, 0)
})

test('a piece whose records do not decode is refused as permanent instead of retried', async () => {
  const { sink, sender: s } = await sender()
  sink.throwNext(new Error('cannot read events'))
  const record = { start: 0, end: 20, count: 1, payload: Buffer.from('{not json\n') }
  const bad = new RecordPiece([record], false, () => {
    throw new Error('Unexpected token')
  })
  assert.throws(() => bad.events)
  const answer = await s.send(bad)
  assert.equal(answer.kind, 'permanent')
  assert.match(answer.kind === 'permanent' ? answer.error.message : '', /Unexpected token/)
})

test('an attempt past its timeout is a retry, and the next attempt of the same piece takes its late answer', async () => {
  const { sink, counters, sender: s } = await sender({ timeoutMs: 20 })
  const release = sink.holdNext()
  const p = piece()
  const first = await s.attempt(p)
  assert.equal(first.kind, 'retry')
  assert.match(first.kind === 'retry' ? first.error.message : '', /did not answer within 20 ms/)
  assert.equal(counters.timeouts, 1)
  release()
  assert.equal((await s.attempt(p)).kind, 'delivered')
  assert.equal(sink.writes.length, 1, 'the piece was not sent a second time')
})

test('another piece waits for an outstanding call before its own write starts', async () => {
  const { sink, sender: s } = await sender({ timeoutMs: 20 })
  const release = sink.holdNext()
  assert.equal((await s.attempt(piece(0))).kind, 'retry')
  assert.equal((await s.attempt(piece(100))).kind, 'retry', 'still waiting for the first call')
  assert.equal(sink.inFlight, 1)
  release()
  assert.equal((await s.attempt(piece(100))).kind, 'delivered')
  assert.deepEqual(
    sink.writes.map((w) => w.batch.from),
    [0, 100],
  )
})

test('settle gives an outstanding call one more timeout, then leaves it', async () => {
  const { sink, sender: s } = await sender({ timeoutMs: 20 })
  const release = sink.holdNext()
  await s.attempt(piece())
  const started = Date.now()
  await s.settle()
  assert.ok(Date.now() - started >= 15)
  release()
})

test('an open breaker paces the retries; the wait is cut short when the signal aborts', async () => {
  const controller = new AbortController()
  const {
    sink,
    breaker,
    sender: s,
  } = await sender({
    breaker: { failures: 2, openMs: 60_000 },
    signal: controller.signal,
  })
  sink.failNext(retry(), 10)
  const sending = s.send(piece())
  const started = Date.now()
  while (breaker.state !== 'open') await new Promise((resolve) => setTimeout(resolve, 2))
  assert.equal(sink.writes.length, 2, 'no write while the breaker is open')
  assert.equal(s.retrying, true)
  controller.abort()
  await assert.rejects(sending, { name: 'AbortError' })
  assert.ok(Date.now() - started < 5000)
})

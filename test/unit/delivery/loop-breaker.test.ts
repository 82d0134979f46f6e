/**
 * The delivery loop's per-batch timeout and circuit breaker, against the scriptable memory sink.
 */
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { pino } from 'pino'
import type { SinkBatch, Verdict } from '../../../src/sinks/sink.ts'
import { numberedEvents } from '../../helpers/events.ts'
import { eventually, ids, rig } from './helpers.ts'

const retry = (afterMs?: number) => ({ kind: 'retry', error: new Error('store busy'), afterMs }) as const

/** A pino logger whose lines land in `lines` (to assert the named events). */
function capturingLogger() {
  const lines: { msg: string; [key: string]: unknown }[] = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line))
      done()
    },
  })
  return { lines, logger: pino({ level: 'info' }, stream) }
}

/** Wraps the sink's write to record the most calls that ever ran at once. */
function trackConcurrency(sink: { write(batch: SinkBatch): Promise<Verdict> }) {
  const seen = { now: 0, max: 0, calls: 0 }
  const write = sink.write.bind(sink)
  sink.write = async (batch) => {
    seen.calls++
    seen.max = Math.max(seen.max, ++seen.now)
    try {
      return await write(batch)
    } finally {
      seen.now--
    }
  }
  return seen
}

test('a write not answered within the timeout counts as a retry; its late delivered answer is taken, not sent again', async (t) => {
  const { log, sink, loop } = await rig(t, { timeoutMs: 30 })
  const seen = trackConcurrency(sink)
  const release = sink.holdNext()
  log.append(numberedEvents(0, 5))
  await loop.start()
  await eventually(() => loop.stats().timeouts >= 3, 'three timeouts')
  const stats = loop.stats()
  assert.equal(stats.retries, stats.timeouts)
  assert.equal(stats.phase, 'retrying')
  assert.match(stats.lastError ?? '', /did not answer within 30 ms/)
  assert.equal(loop.cursor, 0, 'a timeout never moves the cursor')
  assert.equal(seen.calls, 1, 'the piece is not sent again while its write is outstanding')
  release()
  await sink.waitForEvents(5)
  await eventually(() => loop.cursor === log.head, 'cursor at head')
  assert.equal(seen.calls, 1, 'the late answer was the answer')
  assert.equal(seen.max, 1, 'never two writes at once')
  assert.deepEqual(ids(sink.events), ids(numberedEvents(0, 5)))
  assert.equal(loop.stats().phase, 'running')
})

test('a late retry answer sends the piece again, still one write at a time', async (t) => {
  const { log, sink, loop } = await rig(t, { timeoutMs: 20 })
  const gates: PromiseWithResolvers<Verdict>[] = []
  const write = sink.write.bind(sink)
  let calls = 0
  sink.write = (batch) => {
    calls++
    if (calls > 1) return write(batch)
    const gate = Promise.withResolvers<Verdict>()
    gates.push(gate)
    return gate.promise
  }
  const seen = trackConcurrency(sink)
  log.append(numberedEvents(0, 3))
  await loop.start()
  await eventually(() => loop.stats().timeouts >= 2, 'two timeouts')
  gates[0].resolve(retry())
  await sink.waitForEvents(3)
  assert.equal(calls, 2, 'one outstanding write, then one new write')
  assert.equal(seen.max, 1)
  assert.ok(loop.stats().retries >= 3, 'each timeout and the late retry count')
})

test('a write that never answers opens the breaker, and stop gives up on it after one more timeout', async (t) => {
  const { log, sink, loop } = await rig(t, {
    timeoutMs: 20,
    breaker: { failures: 3, openMs: 60_000 },
  })
  const seen = trackConcurrency(sink)
  sink.holdNext() // never released
  log.append(numberedEvents(0, 2))
  await loop.start()
  await eventually(() => loop.stats().breaker === 'open', 'breaker open')
  const stats = loop.stats()
  assert.equal(stats.breakerOpens, 1)
  assert.equal(stats.retries, 3)
  assert.equal(seen.calls, 1)
  const started = Date.now()
  await loop.stop({ drain: false })
  assert.ok(Date.now() - started < 1000, 'stop is bounded')
  assert.equal(loop.cursor, 0)
})

test('the breaker opens after N consecutive retries, lets no write through while open, and a delivered trial closes it', async (t) => {
  const { lines, logger } = capturingLogger()
  const { log, sink, loop } = await rig(t, {
    logger,
    breaker: { failures: 3, openMs: 150, maxOpenMs: 1000 },
  })
  sink.failNext(retry(), 5)
  log.append(numberedEvents(0, 4))
  await loop.start()
  await eventually(() => loop.stats().breaker === 'open', 'breaker open')
  assert.equal(sink.writes.length, 3, 'opened on the third failure')
  await sink.waitForEvents(4, 5000)
  await eventually(() => loop.cursor === log.head, 'cursor at head')
  const at = sink.writes.map((w) => w.at)
  const gaps = at.slice(1).map((a, i) => a - at[i])
  // Writes 1–3 back to back (tiny backoff), then trials after 150, 300 (doubled), 600 ms.
  assert.ok(gaps[2] >= 140, `first trial ${gaps[2]} ms after opening, expected ≥ 150`)
  assert.ok(gaps[3] >= 290, `second trial ${gaps[3]} ms later, expected ≥ 300`)
  assert.ok(gaps[4] >= 590, `third trial ${gaps[4]} ms later, expected ≥ 600`)
  const stats = loop.stats()
  assert.equal(stats.breaker, 'closed')
  assert.equal(stats.breakerOpens, 3)
  assert.equal(stats.retries, 5)
  assert.deepEqual(ids(sink.events), ids(numberedEvents(0, 4)))
  await eventually(() => lines.some((l) => l.msg === 'SinkBreakerClosed'), 'closed logged')
  const named = lines.filter((l) => l.msg.startsWith('SinkBreaker')).map((l) => l.msg)
  assert.deepEqual(named, [
    'SinkBreakerOpened',
    'SinkBreakerOpened',
    'SinkBreakerOpened',
    'SinkBreakerClosed',
  ])
})

test('a permanent verdict is an answer: refusing data never opens the breaker', async (t) => {
  const { log, sink, loop, deadLetter } = await rig(t, { breaker: { failures: 2, openMs: 60_000 } })
  sink.rejectEvents((e) => e.event_id === 'e5' || e.event_id === 'e9', 'bad event')
  log.append(numberedEvents(0, 12))
  await loop.start()
  await eventually(() => loop.cursor === log.head, 'cursor at head')
  assert.equal((await deadLetter.list()).length, 2)
  const stats = loop.stats()
  assert.ok(stats.refusedBatches >= 4)
  assert.equal(stats.breaker, 'closed')
  assert.equal(stats.breakerOpens, 0)
})

test("while open, a sink's Retry-After longer than the open period wins", async (t) => {
  const { log, sink, loop } = await rig(t, { breaker: { failures: 1, openMs: 20 } })
  sink.failNext(retry(250))
  log.append(numberedEvents(0, 2))
  await loop.start()
  await sink.waitForEvents(2)
  const gap = sink.writes[1].at - sink.writes[0].at
  assert.ok(gap >= 240, `second try ${gap} ms after the first, expected ≥ 250`)
  assert.equal(loop.stats().breakerOpens, 1)
})

test('stop with drain waits out an open breaker only until stop without drain cuts it short', async (t) => {
  const { log, sink, loop } = await rig(t, { breaker: { failures: 1, openMs: 60_000 } })
  sink.failNext(retry())
  log.append(numberedEvents(0, 2))
  await loop.start()
  await eventually(() => loop.stats().breaker === 'open', 'breaker open')
  const draining = loop.stop({ drain: true })
  await new Promise((resolve) => setTimeout(resolve, 30))
  assert.equal(loop.stats().phase, 'retrying')
  const started = Date.now()
  await loop.stop({ drain: false })
  await draining
  assert.ok(Date.now() - started < 1000)
  assert.equal(loop.cursor, 0)
  assert.equal(sink.events.length, 0)
})

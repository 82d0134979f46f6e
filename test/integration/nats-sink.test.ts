/**
 * The `nats` sink against a real nats-server with JetStream (scripts/nats.sh, Debian's 2.9 here):
 * - the stream it creates (file storage, the subject, the duplicate window), an existing stream
 *   left as it is, and one that does not capture the subject refused at open with a clear error;
 * - one message per event, `Nats-Msg-Id` = event_id, the WAL line as the payload (from NDJSON and
 *   from decoded events alike), and a batch published again dropped by JetStream's window;
 * - the server's refusals as verdicts: a message over the stream's max_msg_size permanent (and
 *   only it: the rest is stored once), a deleted stream retried and created again, a stopped
 *   server retried and delivered to once it is back;
 * - the real server process with `--sinks nats`, nats-server restarted (same port, same store) in
 *   the middle of a load: every acked event is in the stream, once.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, type TestContext, test } from 'node:test'
import { RetentionPolicy, StorageType } from '@nats-io/jetstream'
import { nanos } from '@nats-io/transport-node'
import { encodeEvents, serializeEvent } from '../../src/intake/serialize.ts'
import type { NormalizedEvent } from '../../src/intake/types.ts'
import { msgIdOf, NatsSink } from '../../src/sinks/nats/sink.ts'
import type { SinkBatch } from '../../src/sinks/sink.ts'
import { makeEvents, sparseEvent } from '../helpers/events.ts'
import { destroyAgent, postJson, send } from '../helpers/http.ts'
import {
  messageCount,
  type NatsServer,
  readStream,
  startNats,
  streamInfo,
  uniqueStream,
  withNats,
} from '../helpers/nats.ts'
import { type ServerProcess, startServerProcess } from '../helpers/server-process.ts'
import { eventually, sleep } from '../helpers/wait.ts'

let nats: NatsServer
before(async () => {
  nats = await startNats()
})
after(async () => {
  destroyAgent()
  await nats?.stop()
})

async function openSink(
  t: TestContext,
  options: { stream?: string; subject?: string; ackWindow?: number; timeoutMs?: number } = {},
) {
  const stream = options.stream ?? uniqueStream()
  const subject = options.subject ?? `${stream.toLowerCase()}.events`
  const sink = new NatsSink({
    servers: [new URL(nats.url).host],
    stream,
    subject,
    duplicateWindowMs: 60_000,
    timeoutMs: options.timeoutMs ?? 5000,
    ackWindow: options.ackWindow ?? 100,
  })
  t.after(() => sink.close())
  await sink.open()
  return { sink, stream, subject }
}

const batchOf = (events: NormalizedEvent[], from = 0, to = 1): SinkBatch => ({
  events,
  ndjson: encodeEvents(events),
  from,
  to,
})

test('open creates the stream: file storage, the subject, the duplicate window; a reopen keeps it', async (t) => {
  const stream = uniqueStream()
  assert.equal(await streamInfo(nats.url, stream), null)
  const { sink, subject } = await openSink(t, { stream })
  const info = await streamInfo(nats.url, stream)
  assert.ok(info)
  assert.deepEqual(info.config.subjects, [subject])
  assert.equal(info.config.storage, StorageType.File)
  assert.equal(info.config.retention, RetentionPolicy.Limits)
  assert.equal(info.config.duplicate_window, nanos(60_000))
  assert.equal((await sink.write(batchOf([sparseEvent('keep')]))).kind, 'delivered')
  await sink.ping()
  const again = new NatsSink({
    servers: [new URL(nats.url).host],
    stream,
    subject,
    duplicateWindowMs: 5000,
    timeoutMs: 5000,
  })
  await again.open()
  await again.close()
  const kept = await streamInfo(nats.url, stream)
  assert.equal(kept?.state.messages, 1, 'the message is still there')
  assert.equal(kept?.config.duplicate_window, nanos(60_000), 'an existing stream is left as it is')
})

test('each event is one message: Nats-Msg-Id = event_id, payload = the WAL line, in order', async (t) => {
  const { sink, stream, subject } = await openSink(t, { ackWindow: 7 })
  const events = makeEvents(250, 'order')
  events[3] = sparseEvent('ünïcödé "quoted" \\ id', { metadata: { nested: { emoji: '🎉' } } })
  assert.equal((await sink.write(batchOf(events))).kind, 'delivered')
  // Decoded events (a piece cut out of a record) give the same bytes.
  const more = makeEvents(5, 'decoded')
  assert.equal((await sink.write({ events: more, from: 1, to: 2 })).kind, 'delivered')
  const stored = await readStream(nats.url, stream)
  assert.equal(stored.length, 255)
  const all = [...events, ...more]
  for (let i = 0; i < all.length; i++) {
    assert.equal(stored[i].subject, subject)
    assert.equal(stored[i].msgId, msgIdOf(all[i].event_id))
    assert.equal(stored[i].data.toString(), serializeEvent(all[i]))
  }
})

test('ids NATS would trim or refuse in a header are distinct messages, not false duplicates', async (t) => {
  const { sink, stream } = await openSink(t)
  const ids = ['dup', ' dup', 'dup ', '\tdup', 'dup\r\n', 'd\nup', 'dup%20', 'dup%2520', 'dÜp', '🎉']
  assert.equal((await sink.write(batchOf(ids.map((id) => sparseEvent(id))))).kind, 'delivered')
  const stored = await readStream(nats.url, stream)
  assert.deepEqual(
    stored.map((m) => JSON.parse(m.data.toString()).event_id),
    ids,
    'every one stored, none taken for another',
  )
  assert.deepEqual(
    stored.map((m) => m.msgId),
    [
      'dup',
      '%20dup',
      'dup%20',
      '%09dup',
      'dup%0D%0A',
      'd%0Aup',
      'dup%2520',
      'dup%252520',
      'd%C3%9Cp',
      '%F0%9F%8E%89',
    ],
  )
  // And the copies are still recognised as copies.
  assert.equal((await sink.write(batchOf(ids.map((id) => sparseEvent(id))))).kind, 'delivered')
  assert.equal(await messageCount(nats.url, stream), ids.length)
})

test('a batch published again is dropped by JetStream (duplicate acks count as delivered)', async (t) => {
  const { sink, stream } = await openSink(t)
  const events = makeEvents(300, 'dup')
  assert.equal((await sink.write(batchOf(events))).kind, 'delivered')
  assert.equal(await messageCount(nats.url, stream), 300)
  // The same batch after a crash, and an overlapping one.
  assert.equal((await sink.write(batchOf(events))).kind, 'delivered')
  const overlap = [...events.slice(200), ...makeEvents(50, 'dup-new')]
  assert.equal((await sink.write(batchOf(overlap))).kind, 'delivered')
  assert.equal(await messageCount(nats.url, stream), 350)
  const ids = (await readStream(nats.url, stream)).map((m) => m.msgId)
  assert.equal(new Set(ids).size, 350)
})

test('an existing stream that does not capture the subject fails open and ping with a clear error', async (t) => {
  const stream = uniqueStream()
  await withNats(nats.url, ({ jsm }) => jsm.streams.add({ name: stream, subjects: [`${stream}.other.>`] }))
  const sink = new NatsSink({
    servers: [new URL(nats.url).host],
    stream,
    subject: `${stream}.events`,
    duplicateWindowMs: 60_000,
    timeoutMs: 5000,
  })
  t.after(() => sink.close())
  await assert.rejects(sink.open(), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'SPW_ERR_CONFIG_INVALID')
    assert.match(error.message, new RegExp(`stream ${stream} does not capture subject ${stream}\\.events`))
    assert.match(error.message, /natsSubject/)
    return true
  })
  await assert.rejects(sink.ping(), /does not capture subject/)
  const verdict = await sink.write(batchOf([sparseEvent('never-dropped')]))
  assert.equal(verdict.kind, 'retry', 'a configuration problem never dead-letters events')
  // A stream whose wildcard captures the subject is accepted as it is.
  const wild = uniqueStream()
  await withNats(nats.url, ({ jsm }) => jsm.streams.add({ name: wild, subjects: [`${wild}.*`] }))
  const { sink: ok } = await openSink(t, { stream: wild, subject: `${wild}.events` })
  assert.equal((await ok.write(batchOf([sparseEvent('wild')]))).kind, 'delivered')
  assert.deepEqual((await streamInfo(nats.url, wild))?.config.subjects, [`${wild}.*`])
})

test('a message over the stream max_msg_size is refused permanently; the rest is stored once', async (t) => {
  const stream = uniqueStream()
  const subject = `${stream}.events`
  await withNats(nats.url, ({ jsm }) =>
    jsm.streams.add({ name: stream, subjects: [subject], max_msg_size: 600 }),
  )
  const { sink } = await openSink(t, { stream, subject })
  const events = makeEvents(40, 'size')
  events[17] = sparseEvent('too-big', { metadata: { blob: 'x'.repeat(1000) } })
  const verdict = await sink.write(batchOf(events))
  assert.equal(verdict.kind, 'permanent')
  assert.match((verdict as { error: Error }).error.message, /"too-big".*message size exceeds maximum/)
  assert.equal(await messageCount(nats.url, stream), 39, 'everything else was acked')
  // Delivery halves the batch: the halves publish only what was not acked before.
  assert.equal((await sink.write(batchOf(events.slice(0, 17)))).kind, 'delivered')
  assert.equal((await sink.write(batchOf([events[17]]))).kind, 'permanent')
  assert.equal((await sink.write(batchOf(events.slice(18)))).kind, 'delivered')
  const stored = await readStream(nats.url, stream)
  assert.equal(stored.length, 39)
  assert.equal(new Set(stored.map((m) => m.msgId)).size, 39)
  assert.ok(!stored.some((m) => m.msgId === 'too-big'))
})

test('a deleted stream is a retry (no responders), and the next attempt creates it again', async (t) => {
  const { sink, stream } = await openSink(t)
  assert.equal((await sink.write(batchOf(makeEvents(10, 'before')))).kind, 'delivered')
  await withNats(nats.url, ({ jsm }) => jsm.streams.delete(stream))
  const verdict = await sink.write(batchOf(makeEvents(10, 'gone')))
  assert.equal(verdict.kind, 'retry')
  assert.match((verdict as { error: Error }).error.message, /no responders/)
  assert.equal((await sink.write(batchOf(makeEvents(10, 'gone')))).kind, 'delivered')
  assert.equal(await messageCount(nats.url, stream), 10)
})

test('a stopped server is a prompt retry (and no reason not to open); once it is back the sinks deliver', {
  timeout: 30_000,
}, async (t) => {
  const { sink, stream } = await openSink(t, { timeoutMs: 2000 })
  assert.equal((await sink.write(batchOf(makeEvents(100, 'up')))).kind, 'delivered')
  await nats.pause()
  let back = false
  t.after(async () => {
    if (!back) await nats.start()
  })
  const started = Date.now()
  const down = await sink.write(batchOf(makeEvents(100, 'down')))
  assert.equal(down.kind, 'retry')
  assert.ok(Date.now() - started < 1000, `answered in ${Date.now() - started} ms`)
  await assert.rejects(sink.ping(), /not connected/)
  // A sink opened while the server is down opens anyway (logged): events wait in the WAL.
  const late = new NatsSink({
    servers: [new URL(nats.url).host],
    stream,
    subject: sink.subject,
    duplicateWindowMs: 60_000,
    timeoutMs: 2000,
  })
  t.after(() => late.close())
  await late.open()
  assert.equal((await late.write(batchOf(makeEvents(1, 'late')))).kind, 'retry')
  await assert.rejects(late.ping(), /no answer from nats:\/\//)
  await nats.start()
  back = true
  await eventually(
    async () => (await sink.write(batchOf(makeEvents(100, 'down')))).kind === 'delivered',
    'delivered after the restart',
  )
  await sink.ping()
  assert.equal((await late.write(batchOf(makeEvents(1, 'late')))).kind, 'delivered')
  await late.ping()
  assert.equal(await messageCount(nats.url, stream), 201, 'the stream survived the restart')
})

test('the server process with --sinks nats: nats-server restarted mid-load, every acked event is in the stream once', {
  timeout: 60_000,
}, async (t) => {
  const stream = uniqueStream('LOAD')
  const dataDir = await mkdtemp(join(tmpdir(), 'spillway-nats-'))
  let server: ServerProcess | undefined
  t.after(async () => {
    if (server && server.proc.exitCode === null && server.proc.signalCode === null) {
      server.kill('SIGKILL')
      await server.exited()
    }
    await rm(dataDir, { recursive: true, force: true })
  })
  server = await startServerProcess(
    dataDir,
    {
      NATS_URL: nats.url,
      SPILLWAY_NATS_STREAM: stream,
      SPILLWAY_NATS_SUBJECT: 'load.events',
      SPILLWAY_NATS_TIMEOUT_MS: '2000',
      SPILLWAY_DELIVERY_LINGER_MS: '20',
      SPILLWAY_BREAKER_OPEN_MS: '200',
      SPILLWAY_BREAKER_MAX_OPEN_MS: '500',
    },
    ['--sinks', 'nats'],
  )
  const ready = await send(`${server.url}/ready`)
  assert.equal(ready.status, 200, JSON.stringify(ready.body))

  const now = Math.floor(Date.now() / 1000)
  const acked = new Set<string>()
  let running = true
  let next = 0
  const client = async (c: number) => {
    while (running) {
      const events = Array.from({ length: 1 + (next % 40) }, () => ({
        event_id: `load-${c}-${next++}`,
        event_name: 'nats_restart',
        channel: 'web',
        user_id: `user_${next % 101}`,
        timestamp: now - (next % 7200),
      }))
      const answer = await postJson(`${server!.url}/events/batch`, events)
      assert.equal(answer.status, 202, JSON.stringify(answer.body))
      for (const e of events) acked.add(e.event_id)
      await sleep(2)
    }
  }
  const clients = Array.from({ length: 4 }, (_, c) => client(c))
  const t0 = Date.now()
  const mark = (what: string) => t.diagnostic(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`)
  await eventually(async () => (await messageCount(nats.url, stream)) > 500, 'messages flowing')
  mark(`flowing, ${acked.size} acked`)
  await nats.pause()
  mark('nats-server stopped')
  await eventually(async () => (await send(`${server!.url}/ready`)).status === 503, '/ready 503 while down')
  await sleep(1000)
  await nats.start()
  mark(`nats-server started again, ${acked.size} acked`)
  await eventually(async () => (await send(`${server!.url}/ready`)).status === 200, '/ready once it is back')
  await sleep(1000)
  running = false
  await Promise.all(clients)
  mark(`load stopped, ${acked.size} acked`)

  await eventually(
    async () => (await messageCount(nats.url, stream)) >= acked.size,
    `all ${acked.size} acked events in the stream`,
    30_000,
  )
  mark('drained')
  server.kill('SIGTERM')
  assert.deepEqual(await server.exited(), { code: 0, signal: null }, `graceful exit; see ${server.logFile}`)
  const stored = await readStream(nats.url, stream)
  const ids = new Map<string, number>()
  for (const m of stored) ids.set(m.msgId!, (ids.get(m.msgId!) ?? 0) + 1)
  const missing = [...acked].filter((id) => !ids.has(id))
  assert.deepEqual(missing.slice(0, 20), [], `${missing.length} acked events missing from the stream`)
  assert.deepEqual([...ids].filter(([, n]) => n > 1).slice(0, 10), [], 'JetStream dropped every copy')
  assert.equal(stored.length, acked.size)
  for (const m of stored.slice(0, 50)) assert.equal(JSON.parse(m.data.toString()).event_id, m.msgId)
  assert.ok(acked.size > 2000, `the load was real (${acked.size})`)
})

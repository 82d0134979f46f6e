/**
 * The Kafka sink against a real broker (scripts/kafka.sh, one KRaft node): the topics it creates,
 * every event one record keyed by its event_id with the WAL line as its value (read back), every
 * compression, a refused event in the dead-letter topic with the reason while the rest is written,
 * `permanent` when the dead-letter topic refuses it too, no broker at all (retry), and — through
 * a real `spillway serve --sinks kafka` — a broker restart in the middle of a load: the writes
 * are retried, and every acknowledged event is in the topic once it is back.
 */
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, type TestContext, test } from 'node:test'
import { REASON_HEADER, TOPIC_HEADER } from '../../src/connectors/kafka/client.ts'
import { encodeEvents } from '../../src/intake/serialize.ts'
import type { NormalizedEvent } from '../../src/intake/types.ts'
import type { KafkaCompression } from '../../src/sinks/kafka/config.ts'
import { KafkaSink } from '../../src/sinks/kafka/sink.ts'
import type { SinkBatch } from '../../src/sinks/sink.ts'
import { makeEvents, sparseEvent } from '../helpers/events.ts'
import { postJson, send } from '../helpers/http.ts'
import {
  countTopic,
  createTopic,
  type KafkaServer,
  listTopics,
  readTopic,
  startKafka,
} from '../helpers/kafka.ts'
import { startServerProcess } from '../helpers/server-process.ts'

let kafka: KafkaServer
before(async () => {
  kafka = await startKafka()
})
after(async () => {
  await kafka?.stop()
})

function openSink(
  t: TestContext,
  options: { topic?: string; compression?: KafkaCompression; partitions?: number; timeoutMs?: number } = {},
) {
  const topic = options.topic ?? `events-${randomUUID()}`
  const sink = new KafkaSink({
    connection: { brokers: [kafka.brokers], clientId: 'spillway-test', timeoutMs: options.timeoutMs ?? 5000 },
    topic,
    compression: options.compression ?? 'lz4',
    partitions: options.partitions ?? 3,
  })
  t.after(() => sink.close())
  return { sink, topic }
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

const ndjsonBatch = (events: NormalizedEvent[], from = 0): SinkBatch => ({
  events,
  ndjson: encodeEvents(events),
  from,
  to: from + 1,
})

test('creates the topic and its dead-letter topic, and writes each event as one record keyed by event_id', async (t) => {
  const { sink, topic } = openSink(t, { partitions: 4 })
  await sink.open()
  const topics = await listTopics(kafka.brokers)
  assert.ok(topics.includes(topic))
  assert.ok(topics.includes(`${topic}.dead-letter`))
  await sink.ping()

  const events = makeEvents(2000, 'keyed')
  const ndjson = encodeEvents(events)
  assert.deepEqual(await sink.write({ events, ndjson, from: 0, to: 1 }), { kind: 'delivered' })
  const lines = ndjson.toString('utf8').trimEnd().split('\n')
  const records = await readTopic(kafka.brokers, topic)
  assert.equal(records.length, events.length)
  const byKey = new Map(records.map((r) => [r.key, r]))
  for (let i = 0; i < events.length; i++) {
    // The value is the WAL line as it is.
    assert.equal(byKey.get(events[i].event_id)?.value, lines[i])
  }
  // Copies of one event land in one partition: all four are used, each key in one only.
  assert.equal(new Set(records.map((r) => r.partition)).size, 4)
  // In log order within a partition.
  const order = new Map(events.map((e, i) => [e.event_id, i]))
  for (let p = 0; p < 4; p++) {
    const indexes = records
      .filter((r) => r.partition === p)
      .sort((a, b) => Number(a.offset - b.offset))
      .map((r) => order.get(r.key)!)
    assert.deepEqual(
      indexes,
      [...indexes].sort((a, b) => a - b),
    )
  }
})

test('a batch without NDJSON is serialized event by event, the same bytes', async (t) => {
  const { sink, topic } = openSink(t)
  await sink.open()
  const events = makeEvents(50, 'decoded')
  assert.equal((await sink.write({ events, from: 0, to: 1 })).kind, 'delivered')
  const records = await readTopic(kafka.brokers, topic)
  const lines = encodeEvents(events).toString('utf8').trimEnd().split('\n')
  assert.deepEqual(new Set(records.map((r) => r.value)), new Set(lines))
  assert.equal((await sink.write({ events: [], from: 1, to: 1 })).kind, 'delivered')
})

test('every compression writes records a consumer reads back', async (t) => {
  for (const compression of ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const) {
    const { sink, topic } = openSink(t, { compression })
    await sink.open()
    const events = makeEvents(300, `c-${compression}`)
    assert.equal((await sink.write(ndjsonBatch(events))).kind, 'delivered', compression)
    const records = await readTopic(kafka.brokers, topic)
    assert.deepEqual(new Set(records.map((r) => r.key)), new Set(events.map((e) => e.event_id)), compression)
  }
})

test('a batch larger than one partition batch may be is cut into produce requests the broker takes', async (t) => {
  const topic = `small-${randomUUID()}`
  // Room for ~10 events per record batch, uncompressed.
  await createTopic(kafka.brokers, topic, { partitions: 2, configs: { 'max.message.bytes': '4000' } })
  const { sink } = openSink(t, { topic, compression: 'none' })
  await sink.open()
  const events = makeEvents(500, 'cut')
  assert.equal((await sink.write(ndjsonBatch(events))).kind, 'delivered')
  assert.equal(await countTopic(kafka.brokers, topic), 500)
  assert.equal(await countTopic(kafka.brokers, `${topic}.dead-letter`), 0)
})

test('an event the topic refuses goes to the dead-letter topic with the reason; the rest is written', async (t) => {
  const topic = `refusing-${randomUUID()}`
  await createTopic(kafka.brokers, topic, { partitions: 3, configs: { 'max.message.bytes': '3000' } })
  const { sink } = openSink(t, { topic })
  await sink.open()
  const events = makeEvents(400, 'fine')
  // Random bytes do not compress: 6 KB of them is over the topic's limit whatever the codec.
  const big = sparseEvent('too-big', { metadata: { blob: randomBytes(4500).toString('base64') } })
  events.splice(123, 0, big)
  assert.deepEqual(await sink.write(ndjsonBatch(events)), { kind: 'delivered' })

  const written = await readTopic(kafka.brokers, topic)
  assert.equal(written.length, 400)
  assert.equal(new Set(written.map((r) => r.key)).size, 400, 'no copies: refused batches were not written')
  assert.ok(!written.some((r) => r.key === 'too-big'))
  const dead = await readTopic(kafka.brokers, `${topic}.dead-letter`)
  assert.equal(dead.length, 1)
  assert.equal(dead[0].key, 'too-big')
  assert.equal(dead[0].value, encodeEvents([big]).toString('utf8').trimEnd())
  assert.match(dead[0].headers[REASON_HEADER], /MESSAGE_TOO_LARGE/)
  assert.equal(dead[0].headers[TOPIC_HEADER], topic)
})

test('an event both topics refuse is a permanent verdict naming both refusals', async (t) => {
  const topic = `refusing-both-${randomUUID()}`
  await createTopic(kafka.brokers, topic, { configs: { 'max.message.bytes': '3000' } })
  await createTopic(kafka.brokers, `${topic}.dead-letter`, { configs: { 'max.message.bytes': '3000' } })
  const { sink } = openSink(t, { topic })
  await sink.open()
  const big = sparseEvent('too-big-everywhere', { metadata: { blob: randomBytes(4500).toString('base64') } })
  const verdict = await sink.write(ndjsonBatch([big]))
  assert.equal(verdict.kind, 'permanent')
  assert.match(
    (verdict as { error: Error }).error.message,
    /too-big-everywhere.*MESSAGE_TOO_LARGE.*dead-letter.*MESSAGE_TOO_LARGE/,
  )
})

test('no broker answering is a retry (open and ping tell, nothing is dropped)', async (t) => {
  const port = await closedPort()
  const sink = new KafkaSink({
    connection: { brokers: [`127.0.0.1:${port}`], clientId: 'spillway-test', timeoutMs: 1000 },
    topic: 'nowhere',
  })
  t.after(() => sink.close())
  await sink.open()
  const verdict = await sink.write(ndjsonBatch(makeEvents(10, 'nowhere')))
  assert.equal(verdict.kind, 'retry')
  assert.match(
    (verdict as { error: Error }).error.message,
    new RegExp(`Kafka at 127\\.0\\.0\\.1:${port} failed`),
  )
  await assert.rejects(sink.ping(), /Kafka at 127\.0\.0\.1/)
})

test('through a running server, a broker restart under load loses no acknowledged event', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'spillway-kafka-load-'))
  t.after(() => rm(dataDir, { recursive: true, force: true }))
  const topic = `load-${randomUUID()}`
  const server = await startServerProcess(
    dataDir,
    {
      KAFKA_BROKERS: kafka.brokers,
      KAFKA_TOPIC: topic,
      SPILLWAY_KAFKA_TIMEOUT_MS: '2000',
      SPILLWAY_DELIVERY_LINGER_MS: '20',
      SPILLWAY_BREAKER_FAILURES: '1000',
    },
    ['--sinks', 'kafka'],
  )
  t.after(async () => {
    server.kill('SIGKILL')
    await server.exited()
  })
  const acked = new Set<string>()
  let stop = false
  let batchNo = 0
  const load = (async () => {
    while (!stop) {
      const events = Array.from({ length: 200 }, (_, i) => ({
        event_id: `load-${batchNo}-${i}`,
        event_name: 'restart',
        channel: 'api',
        user_id: `u${i}`,
        timestamp: Math.floor(Date.now() / 1000) - 5,
      }))
      batchNo++
      const res = await postJson(`${server.url}/events/batch`, events)
      if (res.status === 202) {
        assert.equal(res.body.accepted, events.length)
        for (const e of events) acked.add(e.event_id)
      }
      // A steady load, not a flood: the backlog of the outage has to drain within the test.
      await new Promise((resolve) => setTimeout(resolve, res.status === 202 ? 10 : 50))
    }
  })()
  await new Promise((resolve) => setTimeout(resolve, 2000))
  await kafka.pause()
  await new Promise((resolve) => setTimeout(resolve, 2000))
  await kafka.start()
  await new Promise((resolve) => setTimeout(resolve, 2000))
  stop = true
  await load
  assert.ok(acked.size > 2000, `only ${acked.size} events acknowledged`)

  // Wait until the topic holds every acknowledged key (copies allowed: at least once).
  let keys = new Set<string>()
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if ((await countTopic(kafka.brokers, topic)) >= acked.size) {
      keys = new Set((await readTopic(kafka.brokers, topic)).map((r) => r.key))
      if ([...acked].every((k) => keys.has(k))) break
    }
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  // The outage was seen: writes failed and were retried.
  const metrics = await send(`${server.metricsUrl}/metrics`)
  const retries = /^sink_retries_total\{[^}]*sink="kafka"[^}]*\} (\d+)/m.exec(String(metrics.body))
  assert.ok(Number(retries?.[1]) > 0, 'no retry during the outage')
  const missing = [...acked].filter((k) => !keys.has(k))
  assert.deepEqual(missing.slice(0, 5), [], `${missing.length} acknowledged events are not in the topic`)
  assert.equal(keys.size, acked.size)
})

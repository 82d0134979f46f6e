/**
 * The Kafka log of `spillway consume` against a real broker (scripts/kafka.sh): topics created
 * when missing, messages in log order, offsets committed only by `commit` (uncommitted messages
 * come back after close + reopen in the same group, committed ones do not; committing a batch
 * commits the ones fetched before it), a new group starting at the earliest offset, two sources
 * sharing a group's partitions, the dead-letter topic, and a broker restart under a source (fetch
 * fails with the reason, then resumes from the committed offsets).
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, type TestContext, test } from 'node:test'
import { pino } from 'pino'
import { REASON_HEADER, TOPIC_HEADER } from '../../src/connectors/kafka/client.ts'
import { KafkaSource, type KafkaSourceOptions } from '../../src/consume/kafka-source.ts'
import type { FetchedBatch } from '../../src/consume/source.ts'
import { encodeEvents } from '../../src/intake/serialize.ts'
import { KafkaSink } from '../../src/sinks/kafka/sink.ts'
import { makeEvents } from '../helpers/events.ts'
import { createTopic, type KafkaServer, listTopics, readTopic, startKafka } from '../helpers/kafka.ts'

let kafka: KafkaServer
before(async () => {
  kafka = await startKafka()
})
after(async () => {
  await kafka?.stop()
})

const silent = pino({ level: 'silent' })
/** Lines → their event ids: what a failed comparison prints. */
const ids = (lines: Iterable<string>) => [...lines].map((line) => JSON.parse(line).event_id as string)
const connection = () => ({ brokers: [kafka.brokers], clientId: 'spillway-test', timeoutMs: 3000 })

function source(t: TestContext, topic: string, group: string, options: Partial<KafkaSourceOptions> = {}) {
  const s = new KafkaSource({
    connection: connection(),
    topic,
    deadLetterTopic: `${topic}.dead-letter`,
    group,
    partitions: 3,
    replicationFactor: 1,
    bufferedMessages: 200,
    logger: silent,
    ...options,
  })
  t.after(() => s.close())
  return s
}

/** Writes `n` events to `topic` with the kafka sink; answers their WAL lines in order. */
async function produce(topic: string, n: number, prefix: string): Promise<string[]> {
  const sink = new KafkaSink({ connection: connection(), topic, partitions: 3 })
  await sink.open()
  try {
    const events = makeEvents(n, prefix)
    const ndjson = encodeEvents(events)
    assert.equal((await sink.write({ events, ndjson, from: 0, to: 1 })).kind, 'delivered')
    return ndjson.toString('utf8').trimEnd().split('\n')
  } finally {
    await sink.close()
  }
}

/** Fetches until `count` values came (batches of at most `max`), or throws after `timeoutMs`. */
async function fetchAtLeast(s: KafkaSource, count: number, max = 1000, timeoutMs = 20_000) {
  const batches: FetchedBatch[] = []
  let total = 0
  const deadline = Date.now() + timeoutMs
  while (total < count) {
    if (Date.now() > deadline) throw new Error(`fetched ${total} of ${count}`)
    const batch = await s.fetch(Math.min(max, count - total), 500, new AbortController().signal)
    if (!batch) continue
    assert.ok(batch.values.length <= max)
    batches.push(batch)
    total += batch.values.length
  }
  return { batches, values: batches.flatMap((b) => b.values.map((v) => v.toString('utf8'))) }
}

test('open creates the topic and its dead-letter topic, and a new group reads from the earliest offset', async (t) => {
  const topic = `src-${randomUUID()}`
  const s = source(t, topic, `g-${randomUUID()}`)
  await s.open()
  const topics = await listTopics(kafka.brokers)
  assert.ok(topics.includes(topic) && topics.includes(`${topic}.dead-letter`))
  await s.ping()
  // Written after the group joined, read all the same; then nothing more.
  const lines = await produce(topic, 300, 'earliest')
  const { values } = await fetchAtLeast(s, 300)
  assert.deepEqual(ids(values).sort(), ids(lines).sort())
  assert.equal(values.length, 300)
  assert.equal(await s.fetch(100, 300, new AbortController().signal), null)
})

test('messages come in log order, at most `max` per fetch, and describe names their offsets', async (t) => {
  const topic = `order-${randomUUID()}`
  await createTopic(kafka.brokers, topic, { partitions: 1 })
  const lines = await produce(topic, 250, 'order')
  const s = source(t, topic, `g-${randomUUID()}`)
  await s.open()
  const { batches, values } = await fetchAtLeast(s, 250, 100)
  assert.deepEqual(ids(values), ids(lines))
  assert.match(batches[0].describe, new RegExp(`^${topic}\\[0\\]@0\\.\\.\\d+$`))
})

test('committed messages do not come back after close and reopen in the group; uncommitted ones do', async (t) => {
  const topic = `commit-${randomUUID()}`
  await createTopic(kafka.brokers, topic, { partitions: 1 })
  const lines = await produce(topic, 100, 'commit')
  const group = `g-${randomUUID()}`

  const first = source(t, topic, group)
  await first.open()
  const a = await fetchAtLeast(first, 30, 30)
  const b = await fetchAtLeast(first, 30, 30)
  await first.commit(a.batches.at(-1)!)
  await first.close()

  const second = source(t, topic, group)
  await second.open()
  const again = await fetchAtLeast(second, 70)
  assert.deepEqual(ids(again.values), ids(lines.slice(30)), 'the uncommitted 30..59 come back, 0..29 do not')
  assert.deepEqual(ids(b.values), ids(lines.slice(30, 60)))
  // Committing the last batch commits every batch fetched before it.
  await second.commit(again.batches.at(-1)!)
  await second.close()

  const third = source(t, topic, group)
  await third.open()
  assert.equal(await third.fetch(100, 1000, new AbortController().signal), null)
  await assert.rejects(third.commit(a.batches[0]), /was not fetched or is committed/)
})

test('two sources in one group share the partitions, and what they committed is not read again', async (t) => {
  const topic = `shared-${randomUUID()}`
  await createTopic(kafka.brokers, topic, { partitions: 4 })
  const lines = await produce(topic, 400, 'shared')
  const group = `g-${randomUUID()}`
  const one = source(t, topic, group, { bufferedMessages: 20 })
  const two = source(t, topic, group, { bufferedMessages: 20 })
  await Promise.all([one.open(), two.open()])
  const seen = new Set<string>()
  const deadline = Date.now() + 30_000
  // Until everything was seen and both are quiet: a commit that lost to a rebalance (the other
  // source joining) is dropped, and the partition's new owner reads those messages again —
  // at least once — so the copies are read and committed before the group is checked.
  let quiet = 0
  while ((seen.size < 400 || quiet < 3) && Date.now() < deadline) {
    let got = false
    for (const s of [one, two]) {
      const batch = await s.fetch(50, 200, new AbortController().signal).catch(() => null)
      if (!batch) continue
      got = true
      for (const v of batch.values) seen.add(v.toString('utf8'))
      await s.commit(batch)
    }
    quiet = got ? 0 : quiet + 1
  }
  assert.deepEqual(ids(seen).sort(), ids(lines).sort())
  await Promise.all([one.close(), two.close()])
  const later = source(t, topic, group)
  await later.open()
  assert.equal(await later.fetch(100, 1000, new AbortController().signal), null)
})

test('deadLetter produces each value to the dead-letter topic with the reason', async (t) => {
  const topic = `dlt-${randomUUID()}`
  const s = source(t, topic, `g-${randomUUID()}`)
  await s.open()
  await s.deadLetter(
    [Buffer.from('not json'), Buffer.from('{"event_name":1}')],
    'invalid: event_name must be a string',
  )
  const dead = await readTopic(kafka.brokers, `${topic}.dead-letter`)
  assert.deepEqual(dead.map((r) => r.value).sort(), ['not json', '{"event_name":1}'])
  for (const r of dead) {
    assert.equal(r.headers[REASON_HEADER], 'invalid: event_name must be a string')
    assert.equal(r.headers[TOPIC_HEADER], topic)
  }
})

test('a fetch aborted by its signal resolves null at once', async (t) => {
  const topic = `abort-${randomUUID()}`
  const s = source(t, topic, `g-${randomUUID()}`)
  await s.open()
  const controller = new AbortController()
  const started = performance.now()
  setTimeout(() => controller.abort(), 100)
  assert.equal(await s.fetch(10, 10_000, controller.signal), null)
  assert.ok(performance.now() - started < 2000)
})

test('a broker restart fails the fetch with the reason; fetching then resumes from the committed offsets', async (t) => {
  const topic = `restart-${randomUUID()}`
  await createTopic(kafka.brokers, topic, { partitions: 1 })
  const lines = await produce(topic, 100, 'restart')
  const s = source(t, topic, `g-${randomUUID()}`)
  await s.open()
  const a = await fetchAtLeast(s, 40, 40)
  await s.commit(a.batches.at(-1)!)
  await fetchAtLeast(s, 20, 20) // fetched, never committed

  await kafka.pause()
  let restarted = false
  t.after(async () => {
    if (!restarted) await kafka.start()
  })
  let failure: unknown
  for (let i = 0; i < 20 && !failure; i++) {
    failure = await s.fetch(10, 500, new AbortController().signal).then(
      () => undefined,
      (error) => error,
    )
  }
  assert.match(String((failure as Error)?.message), /Kafka at 127\.0\.0\.1:\d+ failed/)
  await kafka.start()
  restarted = true

  const seen: string[] = []
  const deadline = Date.now() + 30_000
  while (seen.length < 60 && Date.now() < deadline) {
    const batch = await s.fetch(100, 500, new AbortController().signal).catch(() => null)
    if (batch) seen.push(...batch.values.map((v) => v.toString('utf8')))
    else await new Promise((resolve) => setTimeout(resolve, 200))
  }
  // From the committed offset 40: the 20 fetched but not committed come again, then the rest.
  assert.deepEqual(ids(seen), ids(lines.slice(40)))
})

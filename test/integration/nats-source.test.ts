/**
 * The NATS source of `spillway consume` against a real nats-server with JetStream: the durable
 * pull consumer it creates, fetch in stream order (bounded, early when nothing more is pending,
 * null when idle or aborted), commit semantics (acked messages never come back; uncommitted ones
 * come back to the next reader after close, or after ack_wait when the reader was killed), the
 * keep-alive of held messages, two readers sharing the consumer, and a consumer it cannot use.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { after, before, type TestContext, test } from 'node:test'
import { AckPolicy, DeliverPolicy } from '@nats-io/jetstream'
import { nanos } from '@nats-io/transport-node'
import { pino } from 'pino'
import { ensureStream } from '../../src/connectors/nats/connection.ts'
import { ACK_WAIT_MS, NatsSource, type NatsSourceOptions } from '../../src/consume/nats-source.ts'
import type { FetchedBatch } from '../../src/consume/source.ts'
import { type NatsServer, startNats, uniqueStream, withNats } from '../helpers/nats.ts'
import { NODE, ROOT } from '../helpers/server-process.ts'
import { sleep } from '../helpers/wait.ts'

let nats: NatsServer
before(async () => {
  nats = await startNats()
})
after(async () => {
  await nats?.stop()
})

const logger = pino({ level: 'silent' })
const never = new AbortController().signal

function optionsFor(stream: string, overrides: Partial<NatsSourceOptions> = {}): NatsSourceOptions {
  return {
    servers: [new URL(nats.url).host],
    stream,
    subject: `${stream.toLowerCase()}.events`,
    consumer: 'spillway',
    duplicateWindowMs: 60_000,
    timeoutMs: 5000,
    maxAckPending: 10_000,
    logger,
    ...overrides,
  }
}

async function openSource(t: TestContext, options: NatsSourceOptions): Promise<NatsSource> {
  const source = new NatsSource(options)
  t.after(() => source.close())
  await source.open()
  return source
}

/** Publishes `values` to the stream's subject (acked), in order; creates the stream first if missing. */
async function publish(options: NatsSourceOptions, values: readonly string[]): Promise<void> {
  await withNats(nats.url, async ({ jsm, js }) => {
    await ensureStream(jsm, options)
    for (const value of values) await js.publish(options.subject, value)
  })
}

const texts = (batch: FetchedBatch | null) => batch?.values.map((v) => v.toString()) ?? []
const range = (prefix: string, from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`)

test('open creates the stream and a durable pull consumer: explicit acks, ack_wait, deliver all', async (t) => {
  const options = optionsFor(uniqueStream())
  await openSource(t, options)
  const info = await withNats(nats.url, ({ jsm }) => jsm.consumers.info(options.stream, options.consumer))
  assert.equal(info.config.durable_name, 'spillway')
  assert.equal(info.config.ack_policy, AckPolicy.Explicit)
  assert.equal(info.config.deliver_policy, DeliverPolicy.All)
  assert.equal(info.config.ack_wait, nanos(ACK_WAIT_MS))
  assert.equal(info.config.max_ack_pending, 10_000)
  assert.equal(info.config.filter_subject, options.subject)
  assert.equal(info.config.deliver_subject, undefined, 'a pull consumer')
  const stream = await withNats(nats.url, ({ jsm }) => jsm.streams.info(options.stream))
  assert.deepEqual(stream.config.subjects, [options.subject])
})

test('fetch: stream order, at most max, early when nothing more is pending, null when idle', async (t) => {
  const options = optionsFor(uniqueStream())
  const source = await openSource(t, options)
  await publish(options, range('m', 0, 25))
  const first = await source.fetch(10, 5000, never)
  assert.deepEqual(texts(first), range('m', 0, 10))
  assert.match(first!.describe, new RegExp(`^${options.stream}\\[spillway\\]@1\\.\\.10$`))
  const started = performance.now()
  const rest = await source.fetch(100, 5000, never)
  assert.deepEqual(texts(rest), range('m', 10, 25))
  assert.ok(performance.now() - started < 1000, `the rest came at once (${performance.now() - started} ms)`)
  const idle = performance.now()
  assert.equal(await source.fetch(10, 300, never), null)
  const waited = performance.now() - idle
  assert.ok(waited >= 250 && waited < 1500, `null after about waitMs (${waited} ms)`)
  // A message published while a fetch waits comes out as soon as it arrives.
  const waiting = source.fetch(10, 5000, never)
  await sleep(100)
  const sent = performance.now()
  await publish(options, ['late'])
  assert.deepEqual(texts(await waiting), ['late'])
  assert.ok(performance.now() - sent < 1000)
  // Abort resolves at once, with null.
  const aborting = new AbortController()
  const aborted = source.fetch(10, 5000, aborting.signal)
  setTimeout(() => aborting.abort(), 50)
  const abortAt = performance.now()
  assert.equal(await aborted, null)
  assert.ok(performance.now() - abortAt < 500)
})

test('committed messages never come back; uncommitted ones come back to the next reader after close', async (t) => {
  const options = optionsFor(uniqueStream())
  await publish(options, range('m', 0, 30))
  const a = new NatsSource(options)
  await a.open()
  const b1 = await a.fetch(10, 2000, never)
  assert.deepEqual(texts(b1), range('m', 0, 10))
  await a.commit(b1!)
  const b2 = await a.fetch(10, 2000, never)
  assert.deepEqual(texts(b2), range('m', 10, 20))
  await a.close() // b2 not committed: given back

  const b = await openSource(t, options)
  const again = await b.fetch(100, 2000, never)
  assert.deepEqual(texts(again).toSorted(), range('m', 10, 30).toSorted(), 'b2 again, then the rest; not b1')
  assert.deepEqual(texts(again).slice(0, 10), range('m', 10, 20), 'the given-back ones first')
  await b.commit(again!)
  await b.close()

  const c = await openSource(t, options)
  assert.equal(await c.fetch(100, 500, never), null, 'everything was committed')
  const info = await withNats(nats.url, ({ jsm }) => jsm.consumers.info(options.stream, options.consumer))
  assert.equal(info.num_ack_pending, 0)
  assert.equal(info.ack_floor.stream_seq, 30)
})

test('commit(batch) acks the batches fetched before it too', async (t) => {
  const options = optionsFor(uniqueStream())
  await publish(options, range('m', 0, 12))
  const a = new NatsSource(options)
  await a.open()
  const b1 = await a.fetch(4, 2000, never)
  const b2 = await a.fetch(4, 2000, never)
  const b3 = await a.fetch(4, 2000, never)
  await a.commit(b2!)
  await assert.rejects(a.commit(b1!), /was not fetched or is committed/, 'b1 went with b2')
  await a.close()
  const b = await openSource(t, options)
  assert.deepEqual(texts(await b.fetch(100, 1000, never)), texts(b3))
})

test('two readers of the same durable consumer get different messages', async (t) => {
  const options = optionsFor(uniqueStream())
  await publish(options, range('m', 0, 200))
  const a = await openSource(t, options)
  const b = await openSource(t, options)
  const seen: string[] = []
  for (;;) {
    const [x, y] = await Promise.all([a.fetch(30, 300, never), b.fetch(30, 300, never)])
    if (!x && !y) break
    for (const [source, batch] of [
      [a, x],
      [b, y],
    ] as const) {
      if (!batch) continue
      seen.push(...texts(batch))
      await source.commit(batch)
    }
  }
  assert.equal(seen.length, 200)
  assert.equal(new Set(seen).size, 200)
})

test('held messages are kept alive past ack_wait; a killed reader’s messages come back after it', {
  timeout: 30_000,
}, async (t) => {
  const options = optionsFor(uniqueStream(), { ackWaitMs: 1500 })
  await publish(options, range('m', 0, 10))
  // Held for almost three ack_waits without a commit: +WPI keeps them from going to another reader.
  const holder = await openSource(t, options)
  const held = await holder.fetch(5, 2000, never)
  assert.deepEqual(texts(held), range('m', 0, 5))
  await sleep(4000)
  const other = new NatsSource(options)
  await other.open()
  const rest = await other.fetch(100, 1000, never)
  assert.deepEqual(texts(rest), range('m', 5, 10), 'not the held ones')
  await other.commit(rest!)
  await other.close()

  // A reader in another process fetches m10..m14 and is SIGKILLed: no NAK, no ack.
  await publish(options, range('m', 10, 15))
  const child = spawn(
    NODE,
    [
      '--input-type=module',
      '-e',
      `import { NatsSource } from ${JSON.stringify(`${ROOT}src/consume/nats-source.ts`)}
       import { pino } from 'pino'
       const source = new NatsSource({ ...JSON.parse(process.argv[1]), logger: pino({ level: 'silent' }) })
       await source.open()
       const batch = await source.fetch(100, 3000, new AbortController().signal)
       process.stdout.write(JSON.stringify(batch.values.map(String)) + '\\n')
       setInterval(() => {}, 1000)`,
      JSON.stringify({ ...options, logger: undefined }),
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const [line] = (await once(child.stdout!, 'data')) as [Buffer]
  const fetchedAt = performance.now()
  child.kill('SIGKILL')
  assert.deepEqual(JSON.parse(line.toString()), range('m', 10, 15))
  await once(child, 'exit')
  const next = await openSource(t, options)
  assert.equal(await next.fetch(100, 300, never), null, 'not before ack_wait')
  assert.ok(performance.now() - fetchedAt < 1500, 'that was within ack_wait')
  const back = await next.fetch(100, 5000, never)
  assert.deepEqual(texts(back), range('m', 10, 15), 'after ack_wait')
})

test('a consumer it cannot use (ack policy all, or push) fails open with a clear error', async () => {
  const options = optionsFor(uniqueStream())
  await withNats(nats.url, async ({ jsm }) => {
    await jsm.streams.add({ name: options.stream, subjects: [options.subject] })
    await jsm.consumers.add(options.stream, { durable_name: 'all', ack_policy: AckPolicy.All })
    await jsm.consumers.add(options.stream, {
      durable_name: 'push',
      ack_policy: AckPolicy.Explicit,
      deliver_subject: 'somewhere',
    })
  })
  for (const [consumer, why] of [
    ['all', /acks with policy "all", not "explicit"/],
    ['push', /is a push consumer/],
  ] as const) {
    const source = new NatsSource({ ...options, consumer })
    await assert.rejects(source.open(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'SPW_ERR_CONFIG_INVALID')
      assert.match(error.message, why)
      assert.match(error.message, /natsConsumer/)
      return true
    })
    await source.close()
  }
})

test('ping answers while the server is up and rejects while it is down', { timeout: 30_000 }, async (t) => {
  const options = optionsFor(uniqueStream(), { timeoutMs: 1000 })
  const source = await openSource(t, options)
  await source.ping()
  await publish(options, range('m', 0, 3))
  const batch = await source.fetch(10, 2000, never)
  await nats.pause()
  let back = false
  t.after(async () => {
    if (!back) await nats.start()
  })
  await assert.rejects(source.ping())
  await source.commit(batch!) // logged, not thrown
  await nats.start()
  back = true
  let answered = false
  for (let i = 0; i < 50 && !answered; i++) {
    answered = await source.ping().then(
      () => true,
      () => false,
    )
    if (!answered) await sleep(200)
  }
  assert.ok(answered, 'ping answers again after the restart')
  // Fetching works again on the same connection (a new pull request after the reconnect).
  await publish(options, ['after'])
  const after = await source.fetch(10, 3000, never)
  assert.ok(texts(after).includes('after'), JSON.stringify(texts(after)))
})

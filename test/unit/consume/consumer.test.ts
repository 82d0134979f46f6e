/**
 * The consumer's promises, with an in-memory log and a real HTTP receiver as the store (the
 * `http` sink): offsets are committed only after the store confirmed, never before; messages that
 * are not events are dead-lettered and committed; copies in the log are stored once; a restart
 * re-reads what was not committed and stores it once.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadConfig } from '../../../src/config/load.ts'
import { startConsumer } from '../../../src/consume/consumer.ts'
import { spillwayError } from '../../../src/errors.ts'
import { scanDeadLetters } from '../../../src/shared/dead-letter.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'
import { eventBody, sparseEvent } from '../../helpers/events.ts'
import { NdjsonReceiver } from '../../helpers/ndjson-receiver.ts'
import { eventually, sleep } from '../../helpers/wait.ts'
import { MemoryLog } from './memory-log.ts'

const now = Math.floor(Date.now() / 1000)
const event = (i: number) =>
  sparseEvent(`ev-${i}`, {
    event_name: 'page_view',
    user_id: `user_${i % 7}`,
    timestamp: now,
    received_at: Date.now(),
  })

async function setup(t: import('node:test').TestContext) {
  const dataDir = await mkdtemp(join(tmpdir(), 'spillway-consume-'))
  const receiver = await NdjsonReceiver.start()
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      sinks: ['http'],
      httpSinkUrl: receiver.url,
      metricsPort: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      consumeBatchMessages: 100,
      deliveryLingerMs: 5,
      breakerFailures: 1000,
    },
  })
  t.after(async () => {
    await receiver.close()
    await rm(dataDir, { recursive: true, force: true })
  })
  return { dataDir, receiver, config, logger: createLogger('silent') }
}

test('offsets are committed only after the store confirmed; copies in the log are stored once', async (t) => {
  const { receiver, config, logger } = await setup(t)
  const log = new MemoryLog()
  let storeUp = false
  receiver.respond = () => (storeUp ? { status: 200 } : { status: 503 })
  const consumer = await startConsumer(config, logger, log)
  t.after(() => consumer.close())
  for (let i = 0; i < 500; i++) log.produce(event(i))
  for (let i = 0; i < 100; i++) log.produce(event(i)) // copies already in the log

  await eventually(async () => consumer.stats().appended === 600, 'every message in the WAL')
  await sleep(500)
  assert.equal(log.committed, 0, 'nothing is committed while the store refuses')
  assert.ok(receiver.requests.length > 0, 'delivery was tried')

  storeUp = true
  await eventually(async () => log.committed === 600, 'every offset committed', 20_000)
  assert.equal(receiver.stored.size, 500)
  assert.ok(
    [...receiver.stored.values()].every((n) => n === 1),
    'each event stored once',
  )
  assert.deepEqual(
    log.commits,
    [...log.commits].sort((a, b) => a - b),
    'commits go forward, in fetch order',
  )
  const { body } = await consumer.metrics.render()
  assert.match(body, /^consume_messages_fetched_total\{log="memory"\} 600$/m)
  assert.match(body, /^consume_messages_committed_total\{log="memory"\} 600$/m)
  assert.match(body, /^consume_uncommitted_batches 0$/m)
  assert.match(body, /^events_accepted_total 600$/m)
})

test('messages that are not events are dead-lettered with their reason and committed; the rest is stored', async (t) => {
  const { receiver, config, logger, dataDir } = await setup(t)
  const log = new MemoryLog()
  const consumer = await startConsumer(config, logger, log)
  t.after(() => consumer.close())
  const apiShaped = eventBody({
    event_id: 'api-1',
    event_name: 'signup',
    channel: 'api',
    user_id: 'u',
    timestamp: now,
  })
  log.produce(event(1), 'not json', { ...event(2), channel: 'fax' }, apiShaped, event(3))

  await eventually(async () => log.committed === 5, 'the batch committed')
  assert.deepEqual([...receiver.stored.keys()].sort(), ['api-1', 'ev-1', 'ev-3'])
  assert.deepEqual(
    log.deadLettered.map((d) => d.value.slice(0, 8)),
    ['not json', '{"event_'],
  )
  assert.match(log.deadLettered[0].reason, /not JSON/)
  assert.match(log.deadLettered[1].reason, /channel must be one of/)
  const stored = await scanDeadLetters(join(dataDir, 'deadletter'))
  assert.deepEqual(
    stored.map((s) => s.entry.reason.slice(0, 20)).sort(),
    log.deadLettered.map((d) => d.reason.slice(0, 20)).sort(),
  )
  assert.equal(consumer.stats().refused, 2)
})

test('a restart re-reads what was not committed and stores it once', async (t) => {
  const { receiver, config, logger } = await setup(t)
  const log = new MemoryLog()
  for (let i = 0; i < 300; i++) log.produce(event(i))
  receiver.respond = () => ({ status: 503 })
  const first = await startConsumer({ ...config, shutdownTimeoutMs: 200 }, logger, log)
  await eventually(async () => first.stats().appended === 300, 'the log in the WAL')
  await first.close()
  assert.equal(log.committed, 0, 'nothing stored, nothing committed')

  receiver.respond = () => ({ status: 200 })
  const second = await startConsumer(config, logger, log)
  t.after(() => second.close())
  // The WAL replays its 300 events and the log hands out the same 300 again.
  await eventually(async () => log.committed === 300, 'every offset committed', 20_000)
  await sleep(300)
  assert.equal(receiver.stored.size, 300)
  assert.ok(
    [...receiver.stored.values()].every((n) => n === 1),
    'each event stored once',
  )
})

test('a log that is down at start is retried until it answers; a configuration it refuses stops the start', async (t) => {
  const { receiver, config, logger } = await setup(t)
  const log = new MemoryLog()
  log.openErrors.push(new Error('connection refused'), new Error('connection refused'))
  const consumer = await startConsumer(config, logger, log)
  t.after(() => consumer.close())
  log.produce(event(1), event(2))
  await eventually(async () => log.committed === 2, 'the log read once it answered')
  assert.equal(log.opens, 3)
  assert.deepEqual([...receiver.stored.keys()].sort(), ['ev-1', 'ev-2'])

  const refused = new MemoryLog()
  refused.openErrors.push(spillwayError('SPW_ERR_CONFIG_INVALID', 'stream EVENTS does not capture subject x'))
  const { config: other } = await setup(t)
  await assert.rejects(startConsumer(other, logger, refused), /does not capture subject x/)
})

/**
 * Acked events/s into NATS JetStream from one Spillway node, against a real nats-server started
 * for the run (scripts/nats.sh; store under BENCH_TMP or the temp dir), with baselines measured
 * in the same run:
 * - client: the NATS client's own `js.publish()` (one request per message), a sliding window of
 *   `--window` publishes in flight, the same event lines — what a hand-written producer gets;
 * - sink alone: the `nats` sink's `write()` fed pre-encoded NDJSON batches of 20,000 events (the
 *   delivery default), no HTTP, no WAL — the sink's own ceiling (its windowed publisher);
 * - Spillway: wrk posts NDJSON batches of 1000 events (bench/wrk/clickhouse-batch.lua: unique
 *   ids per run, which JetStream's duplicate window would otherwise drop) to a server whose only
 *   sink is nats, for `--seconds`; the stream's message count is sampled every second until every
 *   accepted event is in it. Intake, delivery, nats-server and wrk share the machine's cores.
 * - the same load with `--sinks duckdb` (bench/wrk/ndjson-batch.lua): the default store's rate;
 * - read back: the NATS source of `spillway consume` draining the stream (fetch 5000, commit).
 * Ratios: Spillway's delivery rate over the client's and over DuckDB's.
 *   node bench/nats.ts [--seconds 15] [--connections 8] [--window 1000]
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { pino } from 'pino'
import { parseArgs } from '../src/cli/args.ts'
import { NatsSource } from '../src/consume/nats-source.ts'
import { encodeEvents, serializeEvent } from '../src/intake/serialize.ts'
import type { NormalizedEvent } from '../src/intake/types.ts'
import { NatsSink } from '../src/sinks/nats/sink.ts'
import { BENCH_DIR, ensureWrk, machine, round, startSpillway, stopGracefully } from './lib.ts'
import { loadAndDrain, measureBatchLoad } from './ndjson-batch.ts'

const run = promisify(execFile)
const SCRIPT = join(BENCH_DIR, '../scripts/nats.sh')
const SINK_BATCH = 20_000
const CLIENT_MESSAGES = 200_000
const SINK_MESSAGES = 400_000
const FETCH = 5000

export async function benchNats(seconds = 15, connections = 8, window = 1000) {
  await ensureWrk()
  const dir = await mkdtemp(join(process.env['BENCH_TMP'] ?? tmpdir(), 'spillway-bench-nats-'))
  const url = (await run('bash', [SCRIPT, 'start', dir])).stdout.trim()
  const nc = await connect({ servers: url, noAsyncTraces: true })
  try {
    const { version } = nc.info!
    const client = await clientPublish(nc, window)
    const sink = await sinkAlone(url, window)
    const spillway = await measureSpillway(nc, url, seconds, connections, window)
    const readBack = await readStream(url, 'BENCH')
    const { requestsPerSec: _, ...duckdb } = await measureBatchLoad({}, seconds, connections)
    return {
      benchmark: 'NATS JetStream sink: acked events/s from one Spillway node',
      machine: machine(),
      natsServer: version,
      seconds,
      connections,
      ackWindow: window,
      baseline: {
        clientJsPublishMsgPerSec: client.msgPerSec,
        sinkAloneMsgPerSec: sink.msgPerSec,
        duckdbDeliveryRowsPerSec: duckdb.deliveryRowsPerSec,
      },
      spillway,
      duckdb,
      readBack,
      ratio: {
        deliveryOverClient: round(spillway.deliveryRowsPerSec / client.msgPerSec, 2),
        deliveryOverDuckdb: round(spillway.deliveryRowsPerSec / duckdb.deliveryRowsPerSec, 2),
        sinkAloneOverClient: round(sink.msgPerSec / client.msgPerSec, 2),
      },
    }
  } finally {
    await nc.close()
    await run('bash', [SCRIPT, 'stop', dir])
    await rm(dir, { recursive: true, force: true })
  }
}

function events(n: number, prefix: string): NormalizedEvent[] {
  const now = Math.floor(Date.now() / 1000) - 60
  return Array.from({ length: n }, (_, i) => ({
    event_id: `${prefix}-${i}`,
    event_name: 'bench_nats',
    channel: (['web', 'mobile', 'api', 'email', 'push'] as const)[i % 5],
    campaign_id: `cmp_${i % 50}`,
    user_id: `user_${(i * 7919) % 100_000}`,
    timestamp: now - ((i * 37) % 86_400),
    received_at: Date.now(),
    tags: ['a', 'b'],
    metadata: { product_id: `prod-${i % 1000}`, price: 129.99 },
  }))
}

/** The client's own js.publish, `window` in flight (sliding), one message per event. */
async function clientPublish(nc: NatsConnection, window: number) {
  const jsm = await jetstreamManager(nc)
  await jsm.streams.add({ name: 'BENCH_CLIENT', subjects: ['bench.client'], duplicate_window: 120e9 })
  const js = jetstream(nc, { timeout: 30_000 })
  const lines = events(CLIENT_MESSAGES, 'client').map((e) => ({ id: e.event_id, data: serializeEvent(e) }))
  const started = performance.now()
  let inflight = 0
  let failed = 0
  let wake: (() => void) | null = null
  for (const { id, data } of lines) {
    inflight++
    js.publish('bench.client', data, { msgID: id })
      .catch(() => failed++)
      .finally(() => {
        inflight--
        wake?.()
      })
    while (inflight >= window) await new Promise<void>((r) => (wake = r))
  }
  while (inflight > 0) await new Promise<void>((r) => (wake = r))
  const elapsed = (performance.now() - started) / 1000
  if (failed > 0) throw new Error(`${failed} client publishes failed`)
  const stored = (await jsm.streams.info('BENCH_CLIENT')).state.messages
  await jsm.streams.delete('BENCH_CLIENT')
  return { msgPerSec: round(stored / elapsed) }
}

/** NatsSink.write with pre-encoded batches of SINK_BATCH: the sink without HTTP or WAL. */
async function sinkAlone(url: string, window: number) {
  const sink = new NatsSink({
    servers: [new URL(url).host],
    stream: 'BENCH_SINK',
    subject: 'bench.sink',
    duplicateWindowMs: 120_000,
    timeoutMs: 30_000,
    ackWindow: window,
  })
  await sink.open()
  const batches = Array.from({ length: SINK_MESSAGES / SINK_BATCH }, (_, b) => {
    const ndjson = encodeEvents(events(SINK_BATCH, `sink${b}`))
    return { events: [], ndjson, from: b, to: b + 1 }
  })
  const started = performance.now()
  for (const batch of batches) {
    const verdict = await sink.write(batch)
    if (verdict.kind !== 'delivered') throw verdict.error
  }
  const elapsed = (performance.now() - started) / 1000
  await sink.close()
  return { msgPerSec: round(SINK_MESSAGES / elapsed) }
}

async function measureSpillway(
  nc: NatsConnection,
  url: string,
  seconds: number,
  connections: number,
  window: number,
) {
  const server = await startSpillway({
    SPILLWAY_SINKS: 'nats',
    NATS_URL: url,
    SPILLWAY_NATS_STREAM: 'BENCH',
    SPILLWAY_NATS_SUBJECT: 'bench.events',
    SPILLWAY_NATS_ACK_WINDOW: String(window),
  })
  const jsm = await jetstreamManager(nc)
  const stored = async () => (await jsm.streams.info('BENCH')).state.messages
  try {
    const load = await loadAndDrain({
      url: server.url,
      lua: 'clickhouse-batch.lua',
      luaEnv: { RUN: `nats${Date.now()}` },
      seconds,
      connections,
      stored,
      drainTimeoutMs: 300_000,
    })
    const { requestsPerSec: _, eventsPerSec, ...rest } = load
    return { acceptedEventsPerSec: eventsPerSec, ...rest }
  } finally {
    await stopGracefully(server)
    await rm(server.dataDir, { recursive: true, force: true })
  }
}

/** The consume source reading the whole stream back: fetch FETCH, commit each batch. */
async function readStream(url: string, stream: string) {
  const source = new NatsSource({
    servers: [new URL(url).host],
    stream,
    subject: 'bench.events',
    consumer: 'bench',
    duplicateWindowMs: 120_000,
    timeoutMs: 30_000,
    maxAckPending: 8 * FETCH,
    logger: pino({ level: 'silent' }),
  })
  await source.open()
  const signal = new AbortController().signal
  let messages = 0
  const started = performance.now()
  for (;;) {
    const batch = await source.fetch(FETCH, 1000, signal)
    if (!batch) break
    messages += batch.values.length
    await source.commit(batch)
  }
  const elapsed = (performance.now() - started - 1000) / 1000
  await source.close()
  return { messages, fetchBatch: FETCH, msgPerSec: round(messages / elapsed) }
}

if (import.meta.main) {
  const { flags } = parseArgs(process.argv.slice(2))
  const result = await benchNats(
    Number(flags['seconds'] ?? 15),
    Number(flags['connections'] ?? 8),
    Number(flags['window'] ?? 1000),
  )
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
  process.exit(0)
}

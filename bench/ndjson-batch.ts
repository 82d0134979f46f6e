/**
 * NDJSON batches of 1000 events to POST /events/batch with durable acks, against a bare node:http
 * server (reading and JSON.parsing every line) in the same run. Meanwhile the delivery thread
 * loads the WAL into DuckDB; the benchmark samples the stored row count every second and reports
 * the sustained delivery rate and the largest backlog (accepted − stored).
 * Targets: ≥ 250k events/s accepted; DuckDB ≥ 150k rows/s sustained.
 *   node bench/ndjson-batch.ts [--seconds 15] [--connections 8]
 */
import { parseArgs } from '../src/cli/args.ts'
import { send } from '../test/helpers/http.ts'
import { ensureWrk, machine, round, startBaseline, startSpillway, stopGracefully, wrk } from './lib.ts'

const BATCH = 1000

export interface BatchLoadResult {
  readonly eventsPerSec: number
  readonly p99Ms: number
  readonly non2xx: number
  readonly accepted: number
  readonly stored: number
  readonly deliveryRowsPerSec: number
  readonly deliveryRowsPerSecDuringLoad: number | null
  readonly drainSecondsAfterLoad: number
  readonly maxBacklogEvents: number
  /** wrk's request rate (for ratios against a baseline). */
  readonly requestsPerSec: number
}

/**
 * NDJSON batches from wrk against `url` for `seconds`, then the drain of what the load left in
 * the WAL; `stored()` (the store's row count) is sampled every second. The server is the caller's.
 */
export async function loadAndDrain(options: {
  readonly url: string
  readonly lua: string
  readonly luaEnv?: Record<string, string>
  readonly seconds: number
  readonly connections: number
  readonly stored: () => Promise<number>
  readonly drainTimeoutMs?: number
}): Promise<BatchLoadResult> {
  const { stored, seconds, connections } = options
  const samples: { t: number; stored: number }[] = []
  const started = performance.now()
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      samples.push({ t: (performance.now() - started) / 1000, stored: await stored() })
      await new Promise((r) => setTimeout(r, 1000))
    }
  })()
  const load = await wrk(`${options.url}/events/batch`, options.lua, {
    seconds,
    connections,
    env: { BATCH: String(BATCH), ...options.luaEnv },
  })
  const loadEnded = (performance.now() - started) / 1000
  const accepted = (load.requests - load.non2xx) * BATCH
  // Let delivery finish what the load left in the WAL (bounded wait).
  const deadline = performance.now() + (options.drainTimeoutMs ?? 120_000)
  while ((await stored()) < accepted && performance.now() < deadline)
    await new Promise((r) => setTimeout(r, 250))
  const drained = (performance.now() - started) / 1000
  sampling = false
  await sampler
  const total = await stored()

  const firstRow = samples.find((s) => s.stored > 0)?.t ?? 0
  const duringLoad = samples.filter((s) => s.t <= loadEnded)
  const lastDuringLoad = duringLoad.at(-1)
  return {
    eventsPerSec: round(load.requestsPerSec * BATCH),
    requestsPerSec: load.requestsPerSec,
    p99Ms: load.latencyMs.p99,
    non2xx: load.non2xx,
    accepted,
    stored: total,
    deliveryRowsPerSec: round(total / (drained - firstRow)),
    deliveryRowsPerSecDuringLoad: lastDuringLoad
      ? round(lastDuringLoad.stored / (lastDuringLoad.t - firstRow))
      : null,
    drainSecondsAfterLoad: round(drained - loadEnded, 1),
    maxBacklogEvents: Math.max(
      0,
      ...duringLoad.map((s) => Math.round((accepted * s.t) / loadEnded) - s.stored),
    ),
  }
}

/** One Spillway server (env as given, DuckDB by default) under `loadAndDrain`, then stopped. */
export async function measureBatchLoad(
  env: Record<string, string>,
  seconds: number,
  connections: number,
): Promise<BatchLoadResult> {
  const spillway = await startSpillway(env)
  const stored = async () => {
    const answer = await send(`${spillway.url}/metrics?event_name=bench_batch`)
    return Number(answer.body.total_events)
  }
  const result = await loadAndDrain({
    url: spillway.url,
    lua: 'ndjson-batch.lua',
    seconds,
    connections,
    stored,
  })
  await stopGracefully(spillway)
  return result
}

export async function benchNdjsonBatch(seconds = 15, connections = 8) {
  await ensureWrk()
  const env = { BATCH: String(BATCH) }
  const baseline = await startBaseline()
  await wrk(`${baseline.url}/events/batch`, 'ndjson-batch.lua', { seconds: 2, connections, env })
  const bare = await wrk(`${baseline.url}/events/batch`, 'ndjson-batch.lua', { seconds, connections, env })
  await baseline.stop()
  const { requestsPerSec, ...spillway } = await measureBatchLoad({}, seconds, connections)
  return {
    benchmark: `NDJSON batches of ${BATCH}, durable ack, DuckDB delivery`,
    machine: machine(),
    seconds,
    connections,
    baseline: { eventsPerSec: round(bare.requestsPerSec * BATCH) },
    spillway,
    ratio: round(requestsPerSec / bare.requestsPerSec, 2),
    targets: { eventsPerSec: 250_000, deliveryRowsPerSec: 150_000 },
  }
}

if (import.meta.main) {
  const { flags } = parseArgs(process.argv.slice(2))
  const result = await benchNdjsonBatch(Number(flags['seconds'] ?? 15), Number(flags['connections'] ?? 8))
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
  process.exit(0)
}

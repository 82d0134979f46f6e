/**
 * Sustained delivery into ClickHouse and `GET /metrics` latency on the rows it stored, against a
 * real ClickHouse server started for the run (scripts/clickhouse.sh; data under BENCH_TMP or the
 * temp dir), with baselines measured in the same run:
 * - delivery under load: wrk sends NDJSON batches of 1000 events (bench/wrk/clickhouse-batch.lua)
 *   to a Spillway whose only sink is ClickHouse, for `--seconds`; the stored row count is sampled
 *   from ClickHouse every second (`count()`, which reads part metadata, so sampling does not load
 *   the server) until everything accepted is stored. Intake, delivery, ClickHouse and wrk share
 *   the machine's cores here.
 * - backlog drain: ClickHouse is killed, wrk fills the WAL for `--seconds`, ClickHouse comes back
 *   and the time until the backlog is stored gives the sustained delivery rate with the machine to
 *   delivery and ClickHouse alone.
 * Baseline of both: the same rows, already encoded and gzip'd, inserted straight into ClickHouse
 * in batches of the same size from one connection — the store's own ceiling on this machine.
 * - queries: every /metrics shape `--queries` times through Spillway's HTTP API (the `uniq`
 *   strategy it uses), and straight through the query backend with both exact strategies
 *   (`uniqExact(event_id)` vs `count()` over `FINAL`), before and after `OPTIMIZE … FINAL`.
 *   Baseline: the same SQL sent straight to ClickHouse.
 *   node bench/clickhouse.ts [--seconds 20] [--connections 8] [--queries 5]
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { gzipSync } from 'node:zlib'
import { parseArgs } from '../src/cli/args.ts'
import { ClickHouseClient } from '../src/connectors/clickhouse/client.ts'
import { encodeEvents } from '../src/intake/serialize.ts'
import type { NormalizedEvent } from '../src/intake/types.ts'
import type { GroupBy, MetricsQuery } from '../src/query/types.ts'
import {
  type ClickHouseQueryBackend as Backend,
  ClickHouseQueryBackend,
  sqlFor,
} from '../src/sinks/clickhouse/query.ts'
import { walToJsonEachRow } from '../src/sinks/clickhouse/rows.ts'
import { COLUMNS, qualifiedName } from '../src/sinks/clickhouse/schema.ts'
import { ClickHouseSink } from '../src/sinks/clickhouse/sink.ts'
import { send } from '../test/helpers/http.ts'
import {
  BENCH_DIR,
  benchEvent,
  ensureWrk,
  machine,
  round,
  startSpillway,
  stopGracefully,
  waitForCount,
  wrk,
} from './lib.ts'
import { loadAndDrain } from './ndjson-batch.ts'

const run = promisify(execFile)
const SCRIPT = join(BENCH_DIR, '../scripts/clickhouse.sh')
const BATCH = 1000
const INSERT_ROWS = 20_000
const EVENT_NAME = 'bench_clickhouse'

type Shape = 'totals' | 'totals 1h' | GroupBy

export async function benchClickHouse(seconds = 20, connections = 8, queries = 5) {
  await ensureWrk()
  const dir = await mkdtemp(join(process.env['BENCH_TMP'] ?? tmpdir(), 'spillway-bench-ch-'))
  const url = (await run('bash', [SCRIPT, 'start', dir])).stdout.trim()
  const client = new ClickHouseClient({ url })
  try {
    const baseline = await baselineInserts(url, client)
    const delivery = await measureDelivery(url, client, seconds, connections)
    const drain = await measureDrain(dir, client, delivery.server.url, seconds, connections)
    const latency = await measureQueries(url, client, delivery.spillwayUrl, queries)
    await stopGracefully(delivery.server)
    await rm(delivery.server.dataDir, { recursive: true, force: true })
    const { version } = await (async () => {
      const sink = new ClickHouseSink({ url, database: 'bench' })
      await sink.open()
      const features = await sink.server()
      await sink.close()
      return features
    })()
    return {
      benchmark: 'ClickHouse sink: sustained delivery and GET /metrics latency',
      machine: machine(),
      clickhouse: version,
      seconds,
      connections,
      baseline: { insertRowsPerSec: baseline.rowsPerSec, insertBatchRows: INSERT_ROWS },
      delivery: delivery.result,
      drain,
      ratio: round(drain.deliveryRowsPerSec / baseline.rowsPerSec, 2),
      queries: latency,
    }
  } finally {
    client.close()
    await run('bash', [SCRIPT, 'stop', dir])
    await rm(dir, { recursive: true, force: true })
  }
}

/** The store alone: pre-encoded, gzip'd JSONEachRow batches of INSERT_ROWS, one connection. */
export async function baselineInserts(url: string, client: ClickHouseClient) {
  const sink = new ClickHouseSink({ url, database: 'bench_baseline' })
  await sink.open()
  const features = await sink.server()
  await sink.close()
  const now = Math.floor(Date.now() / 1000) - 60
  const bodies: Buffer[] = []
  for (let b = 0; b < 50; b++) {
    const events: NormalizedEvent[] = Array.from({ length: INSERT_ROWS }, (_, i) => {
      const n = b * INSERT_ROWS + i
      return benchEvent(n, `base-${n}`, EVENT_NAME, now)
    })
    const rows = walToJsonEachRow(encodeEvents(events), { objectsAsStrings: features.objectsAsStrings })
    if (!rows.ok) throw new Error(rows.error)
    bodies.push(gzipSync(rows.body, { level: 1 }))
  }
  const sql = `INSERT INTO ${qualifiedName('bench_baseline', 'events')} (${COLUMNS.join(', ')}) FORMAT JSONEachRow`
  const started = performance.now()
  for (const data of bodies) {
    const answer = await client.request({ sql, data, gzip: true, timeoutMs: 120_000 })
    if (answer.status !== 200) throw new Error(answer.body)
  }
  const elapsed = (performance.now() - started) / 1000
  await client.query('DROP DATABASE bench_baseline')
  return { rowsPerSec: round((bodies.length * INSERT_ROWS) / elapsed) }
}

async function measureDelivery(url: string, client: ClickHouseClient, seconds: number, connections: number) {
  const server = await startSpillway({
    SPILLWAY_SINKS: 'clickhouse',
    CLICKHOUSE_URL: url,
    CLICKHOUSE_DATABASE: 'bench',
    // The drain phase kills ClickHouse: try again soon after it is back.
    SPILLWAY_BREAKER_MAX_OPEN_MS: '1000',
  })
  const stored = async () =>
    Number((await client.query(`SELECT count() FROM ${qualifiedName('bench', 'events')}`)).trim())
  const load = await loadAndDrain({
    url: server.url,
    lua: 'clickhouse-batch.lua',
    luaEnv: { RUN: `load${Date.now()}` },
    seconds,
    connections,
    stored,
    drainTimeoutMs: 300_000,
  })
  return {
    server,
    spillwayUrl: server.url,
    result: {
      acceptedEventsPerSec: load.eventsPerSec,
      p99Ms: load.p99Ms,
      non2xx: load.non2xx,
      accepted: load.accepted,
      stored: load.stored,
      deliveryRowsPerSec: load.deliveryRowsPerSec,
      deliveryRowsPerSecDuringLoad: load.deliveryRowsPerSecDuringLoad,
      drainSecondsAfterLoad: load.drainSecondsAfterLoad,
    },
  }
}

/** Kill ClickHouse, fill the WAL, bring ClickHouse back, time the drain. */
async function measureDrain(
  dir: string,
  client: ClickHouseClient,
  spillwayUrl: string,
  seconds: number,
  connections: number,
) {
  const stored = async () =>
    Number((await client.query(`SELECT count() FROM ${qualifiedName('bench', 'events')}`)).trim())
  const before = await stored()
  // SIGKILL (MergeTree parts are written atomically): a stop would wait for idle connections.
  const pid = Number((await run('cat', [join(dir, 'clickhouse.pid')])).stdout.trim())
  process.kill(pid, 'SIGKILL')
  await run('bash', [SCRIPT, 'stop', dir])
  const env = { BATCH: String(BATCH), RUN: `drain${Date.now()}` }
  const load = await wrk(`${spillwayUrl}/events/batch`, 'clickhouse-batch.lua', { seconds, connections, env })
  const accepted = (load.requests - load.non2xx) * BATCH
  await run('bash', [SCRIPT, 'start', dir, new URL(client.where).port])
  const started = performance.now()
  const { last, seconds: elapsed } = await waitForCount(stored, before, before + accepted, started, 'rows')
  return {
    backlogEvents: accepted,
    acceptedEventsPerSecWithoutDelivery: round(load.requestsPerSec * BATCH),
    drainSeconds: round(elapsed, 1),
    deliveryRowsPerSec: round((last - before) / elapsed),
  }
}

async function measureQueries(url: string, client: ClickHouseClient, spillwayUrl: string, queries: number) {
  const sink = new ClickHouseSink({ url, database: 'bench' })
  await sink.open()
  const now = Math.floor(Date.now() / 1000)
  const shapes: [Shape, MetricsQuery][] = [
    ['totals', { event_name: EVENT_NAME }],
    ['totals 1h', { event_name: EVENT_NAME, from: now - 4 * 3600, to: now - 3 * 3600 }],
    ['channel', { event_name: EVENT_NAME, group_by: 'channel' }],
    ['hour', { event_name: EVENT_NAME, group_by: 'hour' }],
    ['day', { event_name: EVENT_NAME, group_by: 'day' }],
  ]
  const target = await sink.target()
  const table = async () => {
    const [rows, parts] = (
      await client.query(
        `SELECT sum(rows), count() FROM system.parts WHERE database = 'bench' AND table = 'events' AND active FORMAT TabSeparated`,
      )
    )
      .trim()
      .split('\t')
      .map(Number)
    return { rows, parts }
  }
  const measure = async () => {
    const out: Record<string, unknown> = {}
    const uniq = new ClickHouseQueryBackend(sink, { count: 'uniq' })
    const final = new ClickHouseQueryBackend(sink, { count: 'final' })
    for (const [name, query] of shapes) {
      const params = new URLSearchParams(
        Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]),
      )
      const http = await timeIt(queries, async () => {
        const answer = await send(`${spillwayUrl}/metrics?${params}`)
        if (answer.status !== 200) throw new Error(JSON.stringify(answer.body))
      })
      const statement = sqlFor(
        query.group_by ?? 'totals',
        target.table,
        { name: query.event_name, from: query.from, to: query.to },
        { parameters: target.features.queryParameters },
      )
      const direct = await timeIt(queries, () => client.query(statement.sql, { params: statement.params }))
      out[name] = {
        httpMs: http,
        sqlOnlyMs: direct,
        uniqExactMs: await timeIt(queries, () => ask(uniq, query)),
        finalMs: await timeIt(queries, () => ask(final, query)),
        sameAnswer: JSON.stringify(await ask(uniq, query)) === JSON.stringify(await ask(final, query)),
      }
    }
    return out
  }
  const before = { table: await table(), shapes: await measure() }
  await client.query(`OPTIMIZE TABLE ${qualifiedName('bench', 'events')} FINAL`, { timeoutMs: 600_000 })
  const after = { table: await table(), shapes: await measure() }
  await sink.close()
  return { runsPerShape: queries, beforeOptimize: before, afterOptimize: after }
}

function ask(backend: Backend, query: MetricsQuery) {
  return query.group_by ? backend.groups({ ...query, group_by: query.group_by }) : backend.totals(query)
}

async function timeIt(runs: number, fn: () => Promise<unknown>) {
  await fn() // warm-up
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const started = performance.now()
    await fn()
    times.push(performance.now() - started)
  }
  times.sort((a, b) => a - b)
  const at = (p: number) => round(times[Math.min(times.length - 1, Math.floor(p * times.length))], 1)
  return { p50: at(0.5), p95: at(0.95) }
}

if (import.meta.main) {
  const { flags } = parseArgs(process.argv.slice(2))
  const result = await benchClickHouse(
    Number(flags['seconds'] ?? 20),
    Number(flags['connections'] ?? 8),
    Number(flags['queries'] ?? 5),
  )
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
  process.exit(0)
}

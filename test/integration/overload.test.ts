/**
 * G4 + G5 (docs/ARCHITECTURE.md "Guarantees", "Admission") against the real server process: a
 * load far above what the pipeline can absorb, for a
 * bounded time. The store is made slow on purpose (DuckDB gets batches of 10 rows, one
 * transaction each), so intake outruns delivery, the WAL backlog reaches its bound and admission
 * control turns the surplus into fast 503s, while the commit queue and the bytes in flight stay
 * under their bounds too. Clients are closed-loop without think time (a refused client retries at
 * once, ignoring Retry-After): the harshest steady pressure 256 connections can apply.
 *
 * Checked: the server's RSS (VmRSS, sampled every 100 ms) grows by less than RSS_GROWTH_BOUND_MB over
 * its RSS before the load; accepted
 * requests keep a p99 under P99_BOUND_MS (measured by the client, so it includes the client's own
 * delays); every other answer is a 503 with Retry-After and a JSON error naming the bound; the
 * server's own counters agree with what the clients saw; SIGTERM exits 0; and afterwards every
 * acknowledged event is in DuckDB exactly once.
 *
 * OVERLOAD_SECONDS sets the load duration (default 6); KEEP_DATA=1 keeps the data directory.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { Agent, request } from 'node:http'
import { join } from 'node:path'
import { test } from 'node:test'
import { eventBody } from '../helpers/events.ts'
import { parsePrometheusText, sampleValue, sumOf } from '../helpers/prometheus-text.ts'
import { startServerProcess } from '../helpers/server-process.ts'
import { assertExactlyOnce, storedEventCounts } from '../helpers/store-check.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'

const SECONDS = Number(process.env['OVERLOAD_SECONDS'] ?? 6)
const SINGLE_CONNECTIONS = 240
const BATCH_CONNECTIONS = 16
const BATCH_EVENTS = 100
/**
 * Measured on the 2-core machine (2026-12-04, Node 24, DuckDB 1.5): ~290 MB after start, 370–403 MB
 * peak under this load, i.e. 80–115 MB of growth. The bound is on the growth, with real margin: an
 * absolute bound 90 MB above the start failed a clean-clone run at 388 MB and another at 403 MB.
 */
const RSS_GROWTH_BOUND_MB = 256
/**
 * Measured on the same machine (shared with other test runs, ~20 runs): p99 of 202s 260–600 ms
 * seen by the client, whose own event loop is saturated by 256 connections; ≤ 100–250 ms by the
 * server's `ingest_latency_ms` histogram (its bucket bounds). OVERLOAD_P99_MS overrides the
 * client bound on a slower machine.
 */
const P99_BOUND_MS = Number(process.env['OVERLOAD_P99_MS'] ?? 1000)
const SERVER_P99_BOUND_MS = 500
const PENDING_BYTES = 256 * 1024
const BACKLOG_BYTES = 1024 * 1024

const LIMITS = {
  QUEUE_SIZE: '1000',
  SPILLWAY_MAX_PENDING_BYTES: String(PENDING_BYTES),
  SPILLWAY_MAX_WAL_BACKLOG_BYTES: String(BACKLOG_BYTES),
}

interface Answer {
  readonly status: number
  readonly retryAfter: string | undefined
  readonly body: string
}

test(`overload: ${SINGLE_CONNECTIONS + BATCH_CONNECTIONS} connections for ${SECONDS} s against a slow store`, {
  timeout: 120_000,
}, async (t) => {
  const dataDir = await makeTempDir('spillway-overload-')
  const agent = new Agent({ keepAlive: true, maxSockets: SINGLE_CONNECTIONS + BATCH_CONNECTIONS })
  t.after(async () => {
    agent.destroy()
    await removeTempDir(dataDir)
  })

  // One process: the RSS watched below is the server's whole memory, and the bounds are its own
  // (with workers, each worker has its own queue and pending bytes).
  const server = await startServerProcess(dataDir, {
    SPILLWAY_WORKERS: '1',
    ...LIMITS,
    SPILLWAY_DELIVERY_BATCH_ROWS: '10',
    SPILLWAY_DUCKDB_BATCH_ROWS: '0',
    SPILLWAY_DELIVERY_LINGER_MS: '0',
    SPILLWAY_SHUTDOWN_TIMEOUT_MS: '5000',
  })
  const metricsUrl = server.metricsUrl
  const pid = server.proc.pid!

  const post = (path: string, type: string, body: string) =>
    new Promise<Answer>((resolve, reject) => {
      const req = request(
        `${server.url}${path}`,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': type, 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              retryAfter: res.headers['retry-after'] as string | undefined,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          )
          res.on('error', reject)
        },
      )
      req.on('error', reject)
      req.end(body)
    })

  const now = Math.floor(Date.now() / 1000)
  let seq = 0
  const event = (id: string) =>
    JSON.stringify(
      eventBody({
        event_id: id,
        event_name: 'overload',
        user_id: `user_${seq % 1000}`,
        timestamp: now,
        tags: ['a', 'b'],
        metadata: { product_id: 'prod-789', price: 129.99, seq: seq++ },
      }),
    )

  const sent = new Set<string>()
  const acked = new Set<string>()
  const latencies: number[] = []
  const statuses = new Map<number, number>()
  const unexpected: string[] = []
  const refusedBy = new Map<string, number>()
  const retryAfters = new Map<string, number[]>()
  let stopping = false

  const record = (answer: Answer, ids: readonly string[], started: number) => {
    statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
    if (answer.status === 202) {
      latencies.push(performance.now() - started)
      for (const id of ids) acked.add(id)
      return
    }
    if (answer.status !== 503) {
      unexpected.push(`${answer.status} ${answer.body.slice(0, 200)}`)
      return
    }
    const seconds = Number(answer.retryAfter)
    const body = JSON.parse(answer.body) as { error?: string; bound?: string }
    if (!Number.isInteger(seconds) || seconds < 1 || typeof body.error !== 'string' || !body.bound) {
      unexpected.push(`503 without Retry-After or bound: ${answer.retryAfter} ${answer.body.slice(0, 200)}`)
      return
    }
    refusedBy.set(body.bound, (refusedBy.get(body.bound) ?? 0) + 1)
    const list = retryAfters.get(body.bound) ?? []
    list.push(seconds)
    retryAfters.set(body.bound, list)
  }

  const singleClient = async (c: number) => {
    for (let n = 0; !stopping; n++) {
      const id = `s${c}-${n}`
      sent.add(id)
      const started = performance.now()
      record(await post('/events', 'application/json', event(id)), [id], started)
    }
  }
  const batchClient = async (c: number) => {
    for (let n = 0; !stopping; n++) {
      const ids = Array.from({ length: BATCH_EVENTS }, (_, i) => `b${c}-${n}-${i}`)
      for (const id of ids) sent.add(id)
      const started = performance.now()
      const answer = await post('/events/batch', 'application/x-ndjson', ids.map(event).join('\n'))
      if (answer.status === 202) assert.equal(JSON.parse(answer.body).accepted, BATCH_EVENTS, answer.body)
      record(answer, ids, started)
    }
  }

  const rssOf = (status: string) => Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024
  const rssMb: number[] = [rssOf(await readFile(`/proc/${pid}/status`, 'utf8'))]
  const sampler = setInterval(() => {
    readFile(`/proc/${pid}/status`, 'utf8').then(
      (status) => {
        const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1]
        if (kb) rssMb.push(Number(kb) / 1024)
      },
      () => {},
    )
  }, 100)

  // The operations port under load: the bounds as the server sees them, twice a second.
  const peak = { backlog: 0, pending: 0, queue: 0, scrapes: 0 }
  const scraper = (async () => {
    while (!stopping) {
      const m = parsePrometheusText(await (await fetch(`${metricsUrl}/metrics`)).text())
      peak.backlog = Math.max(peak.backlog, sampleValue(m, 'wal_backlog_bytes') ?? 0)
      peak.pending = Math.max(
        peak.pending,
        sampleValue(m, 'admission_current', { bound: 'pending_bytes' }) ?? 0,
      )
      peak.queue = Math.max(peak.queue, sampleValue(m, 'ingest_queue_size') ?? 0)
      peak.scrapes++
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
  })()

  const started = Date.now()
  const clients = [
    ...Array.from({ length: SINGLE_CONNECTIONS }, (_, c) => singleClient(c)),
    ...Array.from({ length: BATCH_CONNECTIONS }, (_, c) => batchClient(c)),
  ]
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000))
  stopping = true
  await Promise.all(clients)
  await scraper
  const elapsed = (Date.now() - started) / 1000
  clearInterval(sampler)

  const scrape = parsePrometheusText(await (await fetch(`${metricsUrl}/metrics`)).text())

  server.kill('SIGTERM')
  const exit = await server.exited()

  latencies.sort((a, b) => a - b)
  const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))]
  const accepted = statuses.get(202) ?? 0
  const refused = statuses.get(503) ?? 0
  const maxRss = Math.max(...rssMb)
  const serverP99 = histogramQuantile(scrape, 'ingest_latency_ms', { route: '/events', status: '202' }, 0.99)
  const serverMean = (status: string) =>
    sumOf(scrape, 'ingest_latency_ms_sum', { status }) / sumOf(scrape, 'ingest_latency_ms_count', { status })
  t.diagnostic(
    `${elapsed.toFixed(1)} s: ${accepted + refused} requests (${Math.round((accepted + refused) / elapsed)}/s), ` +
      `${accepted} accepted (${acked.size} events), ${refused} refused ${JSON.stringify(Object.fromEntries(refusedBy))}`,
  )
  t.diagnostic(
    `202 latency (client) p50 ${p(0.5).toFixed(1)} ms, p99 ${p(0.99).toFixed(1)} ms, max ${p(1).toFixed(1)} ms; ` +
      `server p99 of single-event 202s ≤ ${serverP99} ms; server mean 202 ${serverMean('202').toFixed(2)} ms vs 503 ${serverMean('503').toFixed(2)} ms`,
  )
  t.diagnostic(
    `RSS ${rssMb[0]?.toFixed(0)} MB at start, max ${maxRss.toFixed(0)} MB (${rssMb.length} samples); ` +
      `Retry-After ${JSON.stringify(Object.fromEntries([...retryAfters].map(([b, v]) => [b, [Math.min(...v), Math.max(...v)]])))}`,
  )
  t.diagnostic(
    `peaks over ${peak.scrapes} scrapes: WAL backlog ${peak.backlog} bytes, pending ${peak.pending} bytes, queue ${peak.queue} events`,
  )

  // Only 202 and 503-with-Retry-After, and no connection errors (a client error would have thrown).
  assert.deepEqual(unexpected.slice(0, 5), [], `${unexpected.length} unexpected answers`)
  assert.deepEqual([...statuses.keys()].sort(), [202, 503])
  // Several times capacity: most requests are the surplus.
  assert.ok(refused >= 2 * accepted, `refused ${refused} vs accepted ${accepted}`)
  assert.ok((refusedBy.get('wal_backlog') ?? 0) > 0, 'the slow store filled the backlog bound')
  assert.ok(Math.min(...(retryAfters.get('wal_backlog') ?? [])) >= 2, 'the backlog asks for a longer wait')
  assert.ok(
    Math.max(...(retryAfters.get('queue') ?? [1]), ...(retryAfters.get('pending_bytes') ?? [1])) === 1,
  )
  assert.ok(
    maxRss - rssMb[0] < RSS_GROWTH_BOUND_MB,
    `RSS grew ${(maxRss - rssMb[0]).toFixed(0)} MB (from ${rssMb[0].toFixed(0)} to ${maxRss.toFixed(0)} MB) ≥ ${RSS_GROWTH_BOUND_MB} MB`,
  )
  assert.ok(p(0.99) < P99_BOUND_MS, `p99 ${p(0.99).toFixed(0)} ms ≥ ${P99_BOUND_MS} ms`)
  assert.ok(serverP99 <= SERVER_P99_BOUND_MS, `server p99 ≤ ${serverP99} ms, over ${SERVER_P99_BOUND_MS} ms`)
  // Requests are admitted against the durable backlog, so it passes its bound by at most what was
  // in flight when it filled; the bytes in memory never pass theirs.
  assert.ok(peak.scrapes >= 3, 'the operations port answered under load')
  assert.ok(peak.backlog <= 2 * BACKLOG_BYTES, `WAL backlog peaked at ${peak.backlog} bytes`)
  assert.ok(peak.pending <= PENDING_BYTES, `pending bytes peaked at ${peak.pending}`)

  // The server counted what the clients saw.
  for (const bound of ['wal_backlog', 'queue', 'pending_bytes'])
    assert.equal(sampleValue(scrape, 'admission_refused_total', { bound }), refusedBy.get(bound) ?? 0, bound)
  assert.equal(sampleValue(scrape, 'events_rejected_total', { reason: 'overloaded' }), refused)
  assert.equal(sampleValue(scrape, 'events_accepted_total'), acked.size)
  assert.ok(
    sampleValue(scrape, 'wal_backlog_bytes')! <= 2 * BACKLOG_BYTES,
    'the backlog stayed near its bound',
  )

  assert.deepEqual(exit, { code: 0, signal: null }, `SIGTERM exits 0; see ${server.logFile}`)

  // What the slow store had not taken yet is in the WAL: a clean run with default batching drains it.
  const last = await startServerProcess(dataDir)
  assert.equal((await fetch(`${last.url}/health`)).status, 200)
  last.kill('SIGTERM')
  assert.deepEqual(await last.exited(), { code: 0, signal: null }, `clean drain; see ${last.logFile}`)

  const stored = await storedEventCounts(join(dataDir, 'spillway.duckdb'))
  assertExactlyOnce(stored, acked, sent)
  t.diagnostic(`${sent.size} events sent, ${acked.size} acked, ${stored.size} stored`)
})

/** The upper bound of the histogram bucket that holds quantile `q` (what Prometheus can tell). */
function histogramQuantile(
  families: ReturnType<typeof parsePrometheusText>,
  name: string,
  labels: Record<string, string>,
  q: number,
): number {
  const family = families.get(name)!
  const buckets = family.samples
    .filter((s) => s.name === `${name}_bucket` && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .map(
      (s) =>
        [Number(s.labels['le'] === '+Inf' ? Number.POSITIVE_INFINITY : s.labels['le']), s.value] as const,
    )
    .sort((a, b) => a[0] - b[0])
  const total = buckets[buckets.length - 1][1]
  return buckets.find(([, count]) => count >= q * total)![0]
}

import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  ageOf,
  Feed,
  HISTORY_SAMPLES,
  quantileOf,
  Ring,
  readExposition,
  type Sample,
  sampleOf,
} from '../../../src/dashboard/feed.ts'
import { buckets, parseExposition, total, totalsBy } from '../../../src/dashboard/prometheus.ts'

/** An exposition as ServerMetrics renders it, with the counters given. */
function exposition(o: {
  accepted: number
  rejected?: number
  published?: number
  latency?: number[]
  head?: number
  backlog?: number
  breaker?: string
}): string {
  const lat = o.latency ?? [0, 0, 0, 0]
  return `# HELP events_accepted_total Events acknowledged.
# TYPE events_accepted_total counter
events_accepted_total ${o.accepted}
# TYPE events_received_total counter
events_received_total ${o.accepted + (o.rejected ?? 0)}
# TYPE events_rejected_total counter
events_rejected_total{reason="invalid"} ${o.rejected ?? 0}
events_rejected_total{reason="overloaded"} 0
# TYPE events_duplicate_total counter
events_duplicate_total{layer="l1"} 0
events_duplicate_total{layer="l2"} 0
# TYPE http_requests_total counter
http_requests_total{route="/events",method="POST",status="202"} ${o.accepted}
http_requests_total{route="/events/batch",method="POST",status="400"} ${o.rejected ?? 0}
http_requests_total{route="/ready",method="GET",status="200"} 99
# TYPE ingest_latency_ms histogram
ingest_latency_ms_bucket{le="1",route="/events",status="202"} ${lat[0]}
ingest_latency_ms_bucket{le="10",route="/events",status="202"} ${lat[1]}
ingest_latency_ms_bucket{le="100",route="/events",status="202"} ${lat[2]}
ingest_latency_ms_bucket{le="+Inf",route="/events",status="202"} ${lat[3]}
ingest_latency_ms_sum{route="/events",status="202"} 0
ingest_latency_ms_count{route="/events",status="202"} ${lat[3]}
ingest_latency_ms_bucket{le="1",route="/events",status="503"} 500
ingest_latency_ms_bucket{le="10",route="/events",status="503"} 500
ingest_latency_ms_bucket{le="100",route="/events",status="503"} 500
ingest_latency_ms_bucket{le="+Inf",route="/events",status="503"} 500
# TYPE wal_head_bytes gauge
wal_head_bytes ${o.head ?? 0}
# TYPE wal_backlog_bytes gauge
wal_backlog_bytes ${o.backlog ?? 0}
# TYPE sink_backlog_bytes gauge
sink_backlog_bytes{sink="duckdb"} ${o.backlog ?? 0}
# TYPE events_published_total counter
events_published_total{sink="duckdb"} ${o.published ?? 0}
# TYPE sink_breaker_state gauge
sink_breaker_state{sink="duckdb",state="closed"} ${(o.breaker ?? 'closed') === 'closed' ? 1 : 0}
sink_breaker_state{sink="duckdb",state="open"} ${o.breaker === 'open' ? 1 : 0}
sink_breaker_state{sink="duckdb",state="half-open"} 0
# TYPE admission_limit gauge
admission_limit{bound="queue"} 1000
# TYPE admission_current gauge
admission_current{bound="queue"} 250
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1048576
# TYPE nodejs_eventloop_lag_p99_seconds gauge
nodejs_eventloop_lag_p99_seconds 0.012
`
}

test('the exposition reader keeps labels, escapes and special values', () => {
  const parsed = parseExposition(
    'a_total{x="1",y="q\\"uo\\\\te\\n"} 3\na_total{x="2",y="}, "} 4 1700000000000\n# comment\nb +Inf\nc NaN\nbroken{x= 1\n',
  )
  assert.equal(total(parsed, 'a_total'), 7)
  assert.deepEqual(totalsBy(parsed, 'a_total', 'x'), { 1: 3, 2: 4 })
  assert.equal(parsed.get('a_total')![0].labels['y'], 'q"uo\\te\n')
  assert.equal(parsed.get('a_total')![1].labels['y'], '}, ')
  assert.equal(total(parsed, 'b'), Number.POSITIVE_INFINITY)
  assert.ok(Number.isNaN(total(parsed, 'c')))
  assert.equal(parsed.has('broken'), false)
})

test('histogram buckets are summed over label sets and sorted with +Inf last', () => {
  const parsed = parseExposition(exposition({ accepted: 0, latency: [1, 2, 3, 4] }))
  assert.deepEqual(buckets(parsed, 'ingest_latency_ms', { status: '202' }), {
    le: [1, 10, 100, Number.POSITIVE_INFINITY],
    counts: [1, 2, 3, 4],
  })
  assert.deepEqual(buckets(parsed, 'ingest_latency_ms').counts, [501, 502, 503, 504])
})

test('quantiles interpolate inside the bucket of the delta, like histogram_quantile', () => {
  const le = [1, 10, 100, Number.POSITIVE_INFINITY]
  // 100 observations between the readings: 50 ≤ 1 ms, 40 in (1, 10], 10 in (10, 100].
  const before = { le, counts: [1000, 1000, 1000, 1000] }
  const now = { le, counts: [1050, 1090, 1100, 1100] }
  assert.equal(quantileOf(0.5, now, before), 1)
  assert.equal(quantileOf(0.7, now, before), 1 + (9 * 20) / 40)
  assert.equal(quantileOf(0.95, now, before), 10 + (90 * 5) / 10)
  assert.equal(quantileOf(0.5, before, before), null, 'no observation in the interval')
  // In the +Inf bucket: the highest finite bound.
  assert.equal(quantileOf(0.99, { le, counts: [0, 0, 0, 10] }), 100)
})

test('a sample has rates from counter deltas, quantiles of 202s only, fullness and ingest statuses', () => {
  const history = new Ring<Sample>(10)
  const a = readExposition(parseExposition(exposition({ accepted: 100, rejected: 4, published: 50 })), 10_000)
  const b = readExposition(
    parseExposition(
      exposition({ accepted: 300, rejected: 8, published: 250, latency: [100, 200, 200, 200] }),
    ),
    12_000,
  )
  const s = sampleOf(a, b, history)
  assert.equal(s.events.accepted, 100)
  assert.equal(s.events.rejected, 2)
  assert.deepEqual(s.requests, { 202: 100, 400: 2 }, 'the GET /ready answers are not ingest requests')
  assert.equal(s.sinks['duckdb'].rowsPerSecond, 100)
  assert.equal(s.sinks['duckdb'].breaker, 'closed')
  assert.equal(s.admission['queue'], 0.25)
  assert.ok(s.latencyMs && s.latencyMs.p50 <= 1 && s.latencyMs.p99 > 1 && s.latencyMs.p99 <= 10)
  assert.equal(s.eventLoopDelayMs, 12)
  assert.equal(s.rssBytes, 1048576)
})

test('a counter that went down (a restarted source) gives rate 0, never a negative rate', () => {
  const a = readExposition(parseExposition(exposition({ accepted: 500 })), 0)
  const b = readExposition(parseExposition(exposition({ accepted: 10 })), 1000)
  assert.equal(sampleOf(a, b, new Ring(2)).events.accepted, 0)
})

test('the ring never holds more than its capacity and keeps the newest, oldest first', () => {
  const ring = new Ring<number>(HISTORY_SAMPLES)
  for (let i = 0; i < HISTORY_SAMPLES * 3 + 17; i++) {
    ring.push(i)
    assert.ok(ring.length <= HISTORY_SAMPLES)
  }
  const items = ring.toArray()
  assert.equal(items.length, HISTORY_SAMPLES)
  assert.equal(items[0], HISTORY_SAMPLES * 2 + 17)
  assert.equal(items.at(-1), HISTORY_SAMPLES * 3 + 16)
  assert.equal(ring.at(0), items[0])
  assert.equal(ring.last(), items.at(-1))
})

test('the age of the oldest undelivered byte comes from the history of the head', () => {
  const history = new Ring<Sample>(100)
  const at = (t: number, head: number) => ({ t, walHeadBytes: head }) as Sample
  history.push(at(1000, 100))
  history.push(at(2000, 200))
  history.push(at(3000, 300))
  history.push(at(4000, 400))
  assert.deepEqual(ageOf(400, 400, 5000, history), { seconds: 0, lowerBound: false }, 'nothing waits')
  assert.deepEqual(ageOf(250, 400, 5000, history), { seconds: 2, lowerBound: false }, 'written by t=3000')
  assert.deepEqual(ageOf(50, 400, 5000, history), { seconds: 4, lowerBound: true }, 'older than the history')
  assert.deepEqual(
    ageOf(450, 500, 5000, history),
    { seconds: 0, lowerBound: false },
    'newer than the history',
  )
})

test('the feed samples its source, keeps the history bounded, and filters by since', async () => {
  let accepted = 0
  let clock = 0
  const feed = new Feed({
    render: async () => ({ body: exposition({ accepted }) }),
    version: 'test',
    capacity: 5,
    clock: () => clock,
  })
  const seen: number[] = []
  feed.subscribe((s) => seen.push(s.events.accepted))
  for (let i = 0; i < 9; i++) {
    accepted += 10
    clock += 1000
    await feed.sample()
  }
  const stats = feed.stats()
  assert.equal(stats.history.length, 5)
  assert.equal(stats.totals.events.accepted, 90)
  assert.equal(stats.current?.events.accepted, 10)
  assert.deepEqual(seen, [10, 10, 10, 10, 10, 10, 10, 10])
  assert.deepEqual(
    feed.stats(8000).history.map((s) => s.t),
    [9000],
  )
  assert.ok(feed.lastSampleCpuMicros >= 0)
})

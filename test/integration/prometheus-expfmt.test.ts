/**
 * The server's Prometheus exposition as Prometheus itself reads it. A real `spillway serve` gets a
 * known mix of requests; its `GET /metrics` (operations port) must then be accepted by Go's
 * expfmt TextParser — the parser of the Prometheus server — and by our strict hand-written one,
 * the two must read the same samples, and the counters must be exactly what the test sent.
 */
import assert from 'node:assert/strict'
import { after, type TestContext, test } from 'node:test'
import { eventBody } from '../helpers/events.ts'
import { familyMap, parseWithExpfmt, promparseBinary } from '../helpers/expfmt.ts'
import { type Answer, destroyAgent, postJson } from '../helpers/http.ts'
import {
  type Family,
  parsePrometheusText,
  type Sample,
  sampleValue,
  sumOf,
} from '../helpers/prometheus-text.ts'
import { type ServerProcess, startServerProcess } from '../helpers/server-process.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'
import { eventually } from '../helpers/wait.ts'

const SINGLES = 7
const BATCH = 5
const INVALID = 3
const DUPLICATES = 2
const ACCEPTED = SINGLES + BATCH
const RECEIVED = ACCEPTED + INVALID + DUPLICATES

const now = Math.floor(Date.now() / 1000)
const event = (id: string, over: Record<string, unknown> = {}) =>
  eventBody({
    event_id: id,
    event_name: 'expfmt_probe',
    user_id: `user-${id}`,
    timestamp: now - 60,
    tags: ['a', 'b'],
    metadata: { price: 9.5 },
    ...over,
  })
/** Each refused by validation: `events_rejected_total{reason="invalid"}`. */
const INVALID_EVENTS = [
  event('bad-channel', { channel: 'fax' }),
  event('bad-timestamp', { timestamp: undefined }),
  event('bad-field', { colour: 'red' }),
]

after(() => destroyAgent())

interface Case {
  /** Server environment. */
  readonly env: Record<string, string>
  /**
   * L1 is a cache of each HTTP process: with several workers a resent event may reach another
   * worker than its original and pass L1 — the delivery-time check (one, in the primary) drops it
   * then. So only a single process has exactly DUPLICATES at L1.
   */
  readonly singleProcess: boolean
}

test(
  '1 worker: expfmt accepts /metrics, agrees with our parser, and the counters are what was sent',
  {
    timeout: 300_000,
  },
  (t) => checkExposition(t, { env: { SPILLWAY_WORKERS: '1' }, singleProcess: true }),
)

// `serve --workers 2`: the primary sums the workers' series with its own.
test(
  '2 workers: the same, with requests spread over both workers',
  {
    timeout: 300_000,
  },
  (t) => checkExposition(t, { env: { SPILLWAY_WORKERS: '2' }, singleProcess: false }),
)

async function checkExposition(t: TestContext, c: Case): Promise<void> {
  // The Go tool builds (once per machine) while the server starts.
  const building = promparseBinary()
  const dataDir = await makeTempDir('spillway-expfmt-')
  let server: ServerProcess | undefined
  t.after(async () => {
    server?.kill('SIGTERM')
    await server?.exited()
    await removeTempDir(dataDir)
  })
  server = await startServerProcess(dataDir, { SPILLWAY_DELIVERY_LINGER_MS: '0', ...c.env })
  const { url, metricsUrl } = server

  // Every first request at once, so they come on many connections (and, with workers, reach
  // all of them); the duplicates after their originals were accepted.
  const singles = Array.from({ length: SINGLES }, (_, i) => event(`single-${i}`))
  const answers = await Promise.all([
    ...singles.map((e) => postJson(`${url}/events`, e)),
    postJson(
      `${url}/events/batch`,
      Array.from({ length: BATCH }, (_, i) => event(`batch-${i}`)),
    ),
    ...INVALID_EVENTS.map((e) => postJson(`${url}/events`, e)),
  ])
  const status = (a: Answer) => `${a.status} ${JSON.stringify(a.body)}`
  answers.slice(0, SINGLES).forEach((a, i) => {
    assert.equal(a.status, 202, `single ${i}: ${status(a)}`)
  })
  assert.deepEqual(answers[SINGLES].body, { accepted: BATCH, duplicates: 0, rejected: [] }, 'the batch')
  answers.slice(SINGLES + 1).forEach((a, i) => {
    assert.equal(a.status, 400, `invalid event ${i}: ${status(a)}`)
  })
  for (const e of singles.slice(0, DUPLICATES)) {
    const a = await postJson(`${url}/events`, e)
    assert.equal(a.status, 202, `resent ${e.event_id}: ${status(a)}`)
    if (c.singleProcess) assert.equal(a.body.duplicate, true, `resent ${e.event_id} is an L1 duplicate`)
  }

  // Delivery publishes every distinct event once; a duplicate that passed L1 is dropped there.
  const scrape = async () => {
    const response = await fetch(`${metricsUrl}/metrics`)
    assert.equal(response.status, 200)
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    return response.text()
  }
  await eventually(async () => {
    const m = parsePrometheusText(await scrape())
    const published = sampleValue(m, 'events_published_total', { sink: 'duckdb' }) ?? 0
    const droppedLater =
      sumOf(m, 'events_duplicate_total', { layer: 'l2' }) +
      sumOf(m, 'events_duplicate_total', { layer: 'delivery' })
    return published + droppedLater === sampleValue(m, 'events_accepted_total')
  }, 'events_published_total{sink="duckdb"} to reach the accepted events')

  await building
  const text = await scrape()
  const ours = parsePrometheusText(text)
  let theirs: Family[]
  try {
    theirs = await parseWithExpfmt(text)
  } catch (error) {
    assert.fail(`${(error as Error).message}\n--- exposition ---\n${text}`)
  }

  // --- the two parsers agree ---------------------------------------------------------------
  // expfmt drops the families that have no sample (HELP and TYPE only); those are all it may miss.
  const empty = [...ours.values()].filter((f) => f.samples.length === 0).map((f) => f.name)
  assert.deepEqual(
    canonical(theirs),
    canonical([...ours.values()].filter((f) => f.samples.length > 0)),
    'expfmt and prometheus-text.ts read the same families and samples',
  )
  assert.ok(theirs.length > 20, `a real exposition (${theirs.length} families, ${empty.length} empty)`)

  // --- the counters are what was sent, read from expfmt's parse --------------------------------
  const m = familyMap(theirs)
  const value = (name: string, labels: Record<string, string> = {}) => {
    const v = sampleValue(m, name, labels)
    assert.notEqual(v, undefined, `${name}${JSON.stringify(labels)} is exposed`)
    return v!
  }
  assert.equal(value('events_received_total'), RECEIVED, 'events_received_total')
  assert.equal(value('events_rejected_total', { reason: 'invalid' }), INVALID, 'rejected as invalid')
  assert.equal(sumOf(m, 'events_rejected_total'), INVALID, 'no event rejected for another reason')
  const l1 = value('events_duplicate_total', { layer: 'l1' })
  const accepted = value('events_accepted_total')
  if (c.singleProcess) {
    assert.equal(accepted, ACCEPTED, 'events_accepted_total')
    assert.equal(l1, DUPLICATES, 'events_duplicate_total{layer="l1"}')
    assert.equal(
      value('events_duplicate_total', { layer: 'delivery' }),
      0,
      'nothing left for delivery to drop',
    )
  } else {
    assert.equal(accepted + l1, ACCEPTED + DUPLICATES, 'every valid event accepted or an L1 duplicate')
    assert.equal(sumOf(m, 'events_duplicate_total'), DUPLICATES, 'each resent event dropped by one layer')
    // Each worker appends to its own WAL shard: all of them wrote, so all of them got traffic.
    const shards = seriesOf(m, 'wal_shard_head_bytes')
    assert.equal(
      shards.length,
      Number(c.env.SPILLWAY_WORKERS),
      `one WAL shard per worker: ${JSON.stringify(shards)}`,
    )
    for (const [labels, head] of shards)
      assert.ok(head > 0, `shard ${labels.shard} got events: ${JSON.stringify(shards)}`)
  }
  assert.equal(value('events_duplicate_total', { layer: 'l2' }), 0, 'no L2 without Redis')
  assert.equal(
    value('events_received_total'),
    accepted + l1 + sumOf(m, 'events_rejected_total'),
    'received = accepted + duplicate{l1} + rejected',
  )
  assert.equal(
    value('events_published_total', { sink: 'duckdb' }),
    ACCEPTED,
    'each distinct event published once',
  )

  // One series per route and status, counting the requests; the latency histogram counts the same.
  const requests: [route: string, status: string, count: number][] = [
    ['/events', '202', SINGLES + DUPLICATES],
    ['/events', '400', INVALID],
    ['/events/batch', '202', 1],
  ]
  assert.deepEqual(
    seriesOf(m, 'http_requests_total'),
    bySeries(requests.map(([route, status, n]) => [{ method: 'POST', route, status }, n])),
    'http_requests_total: the requests sent, and no other',
  )
  assert.deepEqual(
    seriesOf(m, 'ingest_latency_ms_count'),
    bySeries(requests.map(([route, status, n]) => [{ route, status }, n])),
    'ingest_latency_ms_count: one observation per request',
  )

  // Each histogram's +Inf bucket is its _count, for every label set.
  const histograms = theirs.filter((f) => f.type === 'histogram').map((f) => f.name)
  for (const name of ['ingest_latency_ms', 'sink_batch_rows', 'sink_batch_latency_ms'])
    assert.ok(histograms.includes(name), `${name} is a histogram with samples: ${histograms.join(', ')}`)
  for (const family of theirs.filter((f) => f.type === 'histogram')) {
    for (const count of family.samples.filter((s) => s.name === `${family.name}_count`)) {
      const inf = family.samples.find(
        (s) =>
          s.name === `${family.name}_bucket` &&
          s.labels.le === '+Inf' &&
          sameLabels(withoutLe(s.labels), count.labels),
      )
      assert.equal(
        inf?.value,
        count.value,
        `${family.name}${JSON.stringify(count.labels)}: +Inf bucket = _count`,
      )
    }
  }
}

/** Families and samples in a stable order, labels sorted, to compare two parses. */
function canonical(families: readonly Family[]) {
  const key = (s: Sample) => `${s.name}${JSON.stringify(sortedLabels(s.labels))}`
  return [...families]
    .sort((a, b) => compare(a.name, b.name))
    .map((f) => ({
      name: f.name,
      type: f.type,
      help: f.help,
      samples: [...f.samples]
        .sort((a, b) => compare(key(a), key(b)))
        .map((s) => ({ ...s, labels: sortedLabels(s.labels) })),
    }))
}

type Series = [labels: Record<string, string>, value: number]

/** `[labels, value]` of every sample named `name`, in the order of `bySeries`. */
function seriesOf(families: Map<string, Family>, name: string): Series[] {
  const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''))
  return bySeries((family?.samples ?? []).filter((s) => s.name === name).map((s) => [s.labels, s.value]))
}

/** Series sorted by their label set, labels sorted by name. */
function bySeries(series: Series[]): Series[] {
  const key = ([labels]: Series) => JSON.stringify(sortedLabels(labels))
  return series
    .map(([labels, value]): Series => [sortedLabels(labels), value])
    .sort((a, b) => compare(key(a), key(b)))
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function sortedLabels(labels: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).sort(([a], [b]) => compare(a, b)))
}

function withoutLe(labels: Readonly<Record<string, string>>): Record<string, string> {
  const { le: _, ...rest } = labels
  return rest
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  return JSON.stringify(sortedLabels(a)) === JSON.stringify(sortedLabels(b))
}

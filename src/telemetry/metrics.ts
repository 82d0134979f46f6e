/**
 * The Prometheus metrics of one server, served on the operations port (docs/ARCHITECTURE.md "The API").
 *
 * One registry per server, never prom-client's global one, so tests run several servers in one
 * process. Three kinds of series:
 * - counted here as things happen on the HTTP thread: events received/accepted/rejected, HTTP
 *   requests, ingest latency — in plain numbers and maps (a map lookup per request), turned
 *   into series only when scraped;
 * - read at scrape time from the HTTP thread's state (collect callbacks): WAL head and backlog,
 *   the commit queue, admission limits and refusals;
 * - read at scrape time from the delivery thread (`DeliveryHost.stats()`, once per scrape) and
 *   kept monotonic across restarts of that thread (delivery-totals.ts): published events,
 *   retries, dead letters, per-sink batch histograms rendered from the thread's bucket snapshots.
 *
 * Counting unit of the `events_*` counters: events, once a body was read as events; a request
 * refused before that (admission, 415, 413, a body that is not JSON) counts as one event. So
 * `events_received_total = events_accepted_total + events_duplicate_total + events_rejected_total`.
 */
import {
  AggregatorRegistry,
  Counter,
  collectDefaultMetrics,
  Gauge,
  type Metric,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client'
import { Histogram as BucketHistogram, type HistogramSnapshot } from './histogram.ts'
import type { DeliveryStats } from '../delivery/loop.ts'
import { DeliveryTotals, type SinkCounter, type SinkTotals } from './delivery-totals.ts'
import { REJECT_REASONS, type RejectReason, reasonOf } from './reasons.ts'

export type { RejectReason } from './reasons.ts'

/** What the intake reports (implemented by ServerMetrics; the Ingestor depends on this only). */
export interface IntakeRecorder {
  received(count: number): void
  accepted(count: number): void
  /** Events answered as duplicates by L1 (received, not appended). */
  duplicate(count: number): void
  rejected(reason: RejectReason, count: number): void
  deadLettered(count: number): void
  /** Counts `count` events rejected for `error` and marks it, so the HTTP layer does not count it again. */
  rejectedBy(error: unknown, count: number): void
}

export interface DeliveryReading {
  /** The delivery thread's generation (the host's restart count when the reading was taken). */
  readonly generation: number
  readonly running: boolean
  readonly sinks: readonly DeliveryStats[]
}

export interface AdmissionReading {
  readonly bound: string
  readonly limit: number
  readonly current: number
  readonly refused: number
}

export interface WalReading {
  /** End of the durable log (byte position). */
  readonly head: number
  /** Durable bytes not yet delivered to the slowest sink. */
  readonly backlogBytes: number
  /** Bytes appended, not yet durable. */
  readonly pendingBytes: number
  readonly fsyncs: number
  readonly records: number
  readonly bytes: number
  readonly failedGroups: number
  /** Damaged ranges skipped and kept aside (src/wal/damage.ts), and their bytes. */
  readonly damagedRanges?: number
  readonly damagedBytes?: number
}

/** Where scrape-time values come from; every function but `delivery` must be cheap and sync. */
export interface MetricSources {
  /** Events waiting for a WAL group commit. */
  readonly queuedEvents: () => number
  /** Keys in the L1 dedup cache. */
  readonly l1Keys?: () => number
  /** The WAL delivery reads (absent in a cluster worker, whose shard the primary reports). */
  readonly wal?: () => WalReading
  /** Per sink, from the shared cursors (no message to the delivery thread). */
  readonly sinkBacklog?: () => readonly { readonly sink: string; readonly bytes: number }[]
  readonly admission: () => readonly AdmissionReading[]
  /**
   * null when the reading is not trustworthy (the thread restarted while answering). Absent in a
   * cluster worker: delivery runs in the primary, whose series are added to the workers'.
   */
  readonly delivery?: () => Promise<DeliveryReading | null>
  /** `spillway consume` only: what it took from the log and committed back. */
  readonly consume?: () => ConsumeReading
  /** The primary of `serve --workers N` only. */
  readonly cluster?: () => ClusterReading
  /** The node's dead-letter store (absent in a cluster worker: its primary reports it). */
  readonly deadLetter?: () => Promise<DeadLetterReading>
}

/** What the dead-letter store holds, every writer's files together, and its bounds. */
export interface DeadLetterReading {
  readonly bytes: number
  readonly entries: number
  readonly maxBytes: number
  readonly maxEntries: number
}

/** `serve --workers N`, read in the primary (src/cluster/primary.ts). */
export interface ClusterReading {
  /** Worker processes running now. */
  readonly running: number
  readonly workers: number
  /** Workers that died and were started again. */
  readonly restarts: number
  /** Per shard: its durable head and the bytes not yet moved into the delivery WAL. */
  readonly shards: readonly { readonly shard: number; readonly head: number; readonly backlogBytes: number }[]
}

export interface ConsumeReading {
  /** `kafka` or `nats`. */
  readonly log: string
  readonly fetched: number
  readonly committed: number
  readonly uncommittedBatches: number
}

export const DUPLICATE_LAYERS = ['l1', 'l2', 'delivery'] as const

const LATENCY_MS_BUCKETS = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000]
const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

export class ServerMetrics implements IntakeRecorder {
  readonly registry: Registry
  readonly #sources: MetricSources
  readonly #totals = new DeliveryTotals()
  readonly #counted = new WeakSet<object>()
  #reading: Promise<void> | undefined
  #deliveryUp = false
  #restarts = 0
  #intakeDeadLettered = 0

  // The hot path only adds to plain numbers and maps (one lookup per request); prom-client
  // builds the series from them at scrape time.
  #received = 0
  #accepted = 0
  #l1Duplicates = 0
  readonly #rejected = new Map<RejectReason, number>(REJECT_REASONS.map((r) => [r, 0]))
  readonly #httpRequests = new Map<string, { labels: Labels; count: number }>()
  readonly #keyRequests = new Map<string, { labels: Labels; count: number }>()
  readonly #ingestLatency = new Map<string, { labels: Labels; histogram: BucketHistogram }>()

  constructor(sources: MetricSources, options: { defaultMetrics?: boolean } = {}) {
    this.#sources = sources
    const registry = new Registry()
    this.registry = registry
    const registers = [registry]
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry })

    // --- intake (counted as it happens) ---------------------------------------------------------
    monotonic(
      'events_received_total',
      'Events received on the ingest routes (a request refused before its body was read counts as one).',
      [],
      registers,
      () => [[{}, this.#received]],
    )
    monotonic(
      'events_accepted_total',
      'Events acknowledged with 202 (in the WAL, fdatasynced unless the fast answer was asked for).',
      [],
      registers,
      () => [[{}, this.#accepted]],
    )
    monotonic('events_rejected_total', 'Events not accepted, by reason.', ['reason'], registers, () =>
      [...this.#rejected].map(([reason, count]) => [{ reason }, count]),
    )
    monotonic(
      'events_duplicate_total',
      'Events recognised as duplicates, by dedup layer.',
      ['layer'],
      registers,
      async () => {
        // Delivery-time layers: every sink's check skips the same events; the first sink's count.
        const totals = await this.#delivery()
        const first = this.#firstSink()
        const t = first ? totals.get(first.sink) : undefined
        const counts = {
          l1: this.#l1Duplicates,
          l2: t?.duplicatesL2 ?? 0,
          delivery: t?.duplicatesDelivery ?? 0,
        }
        return DUPLICATE_LAYERS.map((layer) => [{ layer }, counts[layer]])
      },
    )
    monotonic(
      'http_requests_total',
      'HTTP requests answered on the API port, by route, method and status.',
      ['route', 'method', 'status'],
      registers,
      () => [...this.#httpRequests.values()].map(({ labels, count }) => [labels, count]),
    )
    monotonic(
      'api_key_requests_total',
      'Requests on routes that need an API key, by key label (`missing`, `unrecognised` for the refused), route and status.',
      ['key', 'route', 'status'],
      registers,
      () => [...this.#keyRequests.values()].map(({ labels, count }) => [labels, count]),
    )
    registry.registerMetric(
      new SnapshotHistogram(
        'ingest_latency_ms',
        'Time from a POST on an ingest route being received to its answer, in milliseconds.',
        async () =>
          [...this.#ingestLatency.values()].map(({ labels, histogram }) => ({
            labels,
            snapshot: histogram.snapshot(),
          })),
      ) as unknown as Metric,
    )

    // --- HTTP-thread state (read at scrape time) ------------------------------------------------
    const gauge = (name: string, help: string, read: () => number) => scrapeGauge(registers, name, help, read)
    gauge('ingest_queue_size', 'Events waiting for a WAL group commit.', () => sources.queuedEvents())
    gauge(
      'dedup_l1_keys',
      'Keys held by the L1 dedup cache of the HTTP path (bounded by dedupCacheEntries).',
      () => sources.l1Keys?.() ?? 0,
    )
    const consume = sources.consume
    if (consume) {
      monotonic(
        'consume_messages_fetched_total',
        'Messages `spillway consume` fetched from the log (redeliveries included).',
        ['log'],
        registers,
        () => [[{ log: consume().log }, consume().fetched]],
      )
      monotonic(
        'consume_messages_committed_total',
        'Messages whose offsets were committed (acked): every sink stored or dead-lettered them.',
        ['log'],
        registers,
        () => [[{ log: consume().log }, consume().committed]],
      )
      gauge(
        'consume_uncommitted_batches',
        'Fetched batches waiting for every sink before their offsets are committed.',
        () => consume().uncommittedBatches,
      )
    }
    // --- admission ------------------------------------------------------------------------------
    new Gauge({
      name: 'admission_limit',
      help: 'Configured limit of each admission bound (bytes, or events for queue); with workers, each worker has its own.',
      labelNames: ['bound'],
      registers,
      aggregator: 'max',
      collect() {
        for (const b of sources.admission()) this.set({ bound: b.bound }, b.limit)
      },
    })
    new Gauge({
      name: 'admission_current',
      help: 'Current value of each admission bound, to compare with admission_limit; with workers, the highest worker.',
      labelNames: ['bound'],
      registers,
      aggregator: 'max',
      collect() {
        for (const b of sources.admission()) this.set({ bound: b.bound }, b.current)
      },
    })
    monotonic(
      'admission_refused_total',
      'Requests refused with 503 by admission control, by the bound that refused them.',
      ['bound'],
      registers,
      () => sources.admission().map((b) => [{ bound: b.bound }, b.refused]),
    )

    const { wal, sinkBacklog, delivery } = sources
    if (wal && sinkBacklog && delivery) this.#registerPipeline(registers, wal, sinkBacklog)
    const cluster = sources.cluster
    if (cluster) registerCluster(registers, cluster)
    const deadLetter = sources.deadLetter
    if (deadLetter) registerDeadLetter(registers, deadLetter)
  }

  /** The series of the WAL delivery reads and of the delivery thread (not in a cluster worker). */
  #registerPipeline(
    registers: Registry[],
    wal: NonNullable<MetricSources['wal']>,
    sinkBacklog: NonNullable<MetricSources['sinkBacklog']>,
  ): void {
    const registry = registers[0]
    monotonic(
      'dedup_l2_errors_total',
      'Failed or skipped Redis round trips of the shared dedup layer (each: a batch delivered without L2).',
      [],
      registers,
      async () => {
        await this.#delivery()
        const l2 = this.#firstSink()?.dedupL2
        return l2 ? [[{}, l2.errors]] : []
      },
    )
    const metrics = this
    new Gauge({
      name: 'dedup_l2_up',
      help: 'Whether the shared dedup layer (Redis) answered its last round trip: 1 up, 0 down (absent without REDIS_URL).',
      registers,
      async collect() {
        await metrics.#delivery()
        this.reset()
        const l2 = metrics.#firstSink()?.dedupL2
        if (l2) this.set(l2.state === 'up' ? 1 : 0)
      },
    })
    scrapeGauge(registers, 'wal_head_bytes', 'End of the durable WAL (a byte position).', () => wal().head)
    scrapeGauge(
      registers,
      'wal_backlog_bytes',
      'WAL bytes durable but not yet delivered to the slowest sink.',
      () => wal().backlogBytes,
    )
    scrapeGauge(
      registers,
      'wal_pending_bytes',
      'WAL bytes appended, not yet durable.',
      () => wal().pendingBytes,
    )
    const walCounter = (name: string, help: string, read: (w: WalReading) => number) =>
      monotonic(name, help, [], registers, () => [[{}, read(wal())]])
    walCounter('wal_fsyncs_total', 'fdatasync calls of the WAL writer.', (w) => w.fsyncs)
    walCounter('wal_records_total', 'Records made durable in the WAL.', (w) => w.records)
    walCounter('wal_written_bytes_total', 'Bytes made durable in the WAL.', (w) => w.bytes)
    walCounter('wal_failed_groups_total', 'Group commits that failed (ENOSPC, EIO…).', (w) => w.failedGroups)
    walCounter(
      'wal_damaged_ranges_total',
      'Damaged WAL ranges skipped up to the next valid record (each held at least one record).',
      (w) => w.damagedRanges ?? 0,
    )
    walCounter(
      'wal_damaged_bytes_total',
      'Bytes of damaged WAL ranges skipped; each range is kept in <dataDir>/wal/damaged/.',
      (w) => w.damagedBytes ?? 0,
    )
    new Gauge({
      name: 'sink_backlog_bytes',
      help: 'WAL bytes durable but not yet delivered, per sink.',
      labelNames: ['sink'],
      registers,
      collect() {
        this.reset()
        for (const { sink, bytes } of sinkBacklog()) this.set({ sink }, bytes)
      },
    })

    // --- delivery thread (read at scrape time, monotonic across restarts) -----------------------
    const sinkCounter = (name: string, help: string, key: SinkCounter) =>
      monotonic(name, help, ['sink'], registers, async () =>
        [...(await this.#delivery()).entries()].map(([sink, t]) => [{ sink }, t[key]]),
      )
    sinkCounter('events_published_total', 'Events delivered to each sink.', 'deliveredRows')
    sinkCounter(
      'sink_retries_total',
      'Sink writes that ended in retry (verdict, error or timeout).',
      'retries',
    )
    sinkCounter('sink_timeouts_total', 'Sink writes not answered within the delivery timeout.', 'timeouts')
    sinkCounter('sink_breaker_opens_total', 'Times the sink circuit breaker opened.', 'breakerOpens')
    sinkCounter(
      'sink_refused_batches_total',
      'Sink batches refused permanently (then split to isolate the bad events).',
      'refusedBatches',
    )
    monotonic(
      'events_dead_lettered_total',
      'Events written to the dead-letter store: invalid batch events (intake) and events a sink refused permanently (delivery).',
      ['source'],
      registers,
      async () => {
        let delivery = 0
        for (const t of (await this.#delivery()).values()) delivery += t.deadLettered
        return [
          [{ source: 'intake' }, this.#intakeDeadLettered],
          [{ source: 'delivery' }, delivery],
        ]
      },
    )
    const self = this
    new Gauge({
      name: 'sink_breaker_state',
      help: 'Circuit breaker state per sink: 1 for the current state (closed, open, half-open).',
      labelNames: ['sink', 'state'],
      registers,
      async collect() {
        await self.#delivery()
        this.reset()
        for (const s of self.#totals.latest) {
          for (const state of ['closed', 'open', 'half-open'])
            this.set({ sink: s.sink, state }, s.breaker === state ? 1 : 0)
        }
      },
    })
    new Gauge({
      name: 'dedup_delivery_keys',
      help: "Keys held by each sink's delivery-time dedup cache (bounded by dedupCacheEntries).",
      labelNames: ['sink'],
      registers,
      async collect() {
        await self.#delivery()
        this.reset()
        for (const s of self.#totals.latest) this.set({ sink: s.sink }, s.dedupCacheKeys)
      },
    })
    new Gauge({
      name: 'delivery_thread_up',
      help: '1 while the delivery thread runs, 0 while it is being restarted.',
      registers,
      async collect() {
        await self.#delivery()
        this.set(self.#deliveryUp ? 1 : 0)
      },
    })
    monotonic(
      'delivery_thread_restarts_total',
      'Unexpected deaths of the delivery thread (each followed by a restart).',
      [],
      registers,
      async () => {
        await this.#delivery()
        return [[{}, this.#restarts]]
      },
    )
    const histogram = (name: string, help: string, pick: (t: SinkTotals) => HistogramSnapshot) =>
      registry.registerMetric(
        new SnapshotHistogram(name, help, async () =>
          [...(await this.#delivery()).entries()].map(([sink, t]) => ({
            labels: { sink },
            snapshot: pick(t),
          })),
        ) as unknown as Metric,
      )
    histogram('sink_batch_rows', 'Events per batch delivered to each sink.', (t) => t.batchRows)
    histogram(
      'sink_batch_latency_ms',
      'Time to deliver one batch to each sink, in milliseconds.',
      (t) => t.batchLatencyMs,
    )
  }

  // --- IntakeRecorder ---------------------------------------------------------------------------

  received(count: number): void {
    this.#received += count
  }

  duplicate(count: number): void {
    this.#l1Duplicates += count
  }

  accepted(count: number): void {
    this.#accepted += count
  }

  rejected(reason: RejectReason, count: number): void {
    this.#rejected.set(reason, (this.#rejected.get(reason) ?? 0) + count)
  }

  deadLettered(count: number): void {
    if (count > 0) this.#intakeDeadLettered += count
  }

  rejectedBy(error: unknown, count: number): void {
    this.rejected(reasonOf(error), count)
    if (typeof error === 'object' && error !== null) this.#counted.add(error)
  }

  /**
   * An ingest request failed with `error` outside the intake (admission, body parsing, bad query
   * string): one event received and rejected — unless the intake counted this error already.
   */
  requestFailed(error: unknown): void {
    if (typeof error === 'object' && error !== null && this.#counted.has(error)) return
    this.received(1)
    this.rejected(reasonOf(error), 1)
  }

  /** One answered request on the API port; `ingest` adds it to `ingest_latency_ms`. */
  request(route: string, method: string, status: number, elapsedMs: number, ingest: boolean): void {
    const m = HTTP_METHODS.has(method) ? method : 'OTHER'
    const key = `${route} ${m} ${status}`
    const entry = this.#httpRequests.get(key)
    if (entry) entry.count++
    else this.#httpRequests.set(key, { labels: { route, method: m, status: String(status) }, count: 1 })
    if (!ingest) return
    let latency = this.#ingestLatency.get(key)
    if (!latency) {
      latency = {
        labels: { route, status: String(status) },
        histogram: new BucketHistogram(LATENCY_MS_BUCKETS),
      }
      this.#ingestLatency.set(key, latency)
    }
    latency.histogram.observe(elapsedMs)
  }

  /**
   * One answered request on a route that needs an API key: `key` is the key's label, `missing`
   * (none sent) or `unrecognised` (never the key itself, so the label set stays bounded).
   */
  keyedRequest(key: string, route: string, status: number): void {
    const id = `${key} ${route} ${status}`
    const entry = this.#keyRequests.get(id)
    if (entry) entry.count++
    else this.#keyRequests.set(id, { labels: { key, route, status: String(status) }, count: 1 })
  }

  /** The exposition text and its content type; `others` (a cluster's workers) are added in. */
  async render(others?: () => Promise<MetricObjectWithValues<MetricValue<string>>[][]>): Promise<{
    contentType: string
    body: string
  }> {
    if (!others) return { contentType: this.registry.contentType, body: await this.registry.metrics() }
    const [own, theirs] = await Promise.all([this.registry.getMetricsAsJSON(), others()])
    const merged = AggregatorRegistry.aggregate([own, ...theirs])
    return { contentType: merged.contentType, body: await merged.metrics() }
  }

  /** Delivery totals, refreshed at most once per scrape (every collect of a scrape shares it). */
  /**
   * The first sink's latest reading: the dedup counters and L2 state are read from it (every
   * sink's check skips the same events and shares the one L2).
   */
  #firstSink(): DeliveryStats | undefined {
    return this.#totals.latest.find((s) => s.slot === 0)
  }

  async #delivery(): Promise<Map<string, SinkTotals>> {
    const delivery = this.#sources.delivery
    if (!delivery) return new Map()
    this.#reading ??= (async () => {
      try {
        const reading = await delivery()
        if (reading) {
          this.#deliveryUp = reading.running
          this.#restarts = Math.max(this.#restarts, reading.generation)
          if (reading.running) this.#totals.update(reading.generation, reading.sinks)
        }
      } finally {
        this.#reading = undefined
      }
    })()
    await this.#reading
    return this.#totals.totals()
  }
}

type Labels = Record<string, string>

/** The dead-letter store's size against its bounds (read from its files at scrape time). */
function registerDeadLetter(registers: Registry[], read: () => Promise<DeadLetterReading>): void {
  const series: [string, string, (r: DeadLetterReading) => number][] = [
    [
      'deadletter_bytes',
      'Bytes of the dead-letter store (<dataDir>/deadletter), every writer together.',
      (r) => r.bytes,
    ],
    ['deadletter_entries', 'Entries of the dead-letter store.', (r) => r.entries],
    [
      'deadletter_limit_bytes',
      'maxDeadLetterBytes: past it, batches with invalid events get 503.',
      (r) => r.maxBytes,
    ],
    [
      'deadletter_limit_entries',
      'maxDeadLetterEntries: past it, batches with invalid events get 503.',
      (r) => r.maxEntries,
    ],
  ]
  for (const [name, help, value] of series) {
    new Gauge({
      name,
      help,
      registers,
      aggregator: 'max',
      async collect() {
        this.set(value(await read()))
      },
    })
  }
}

/** A gauge read at scrape time; `aggregator` says how a cluster's primary adds the workers' values. */
function scrapeGauge(
  registers: Registry[],
  name: string,
  help: string,
  read: () => number,
  aggregator: 'sum' | 'max' = 'sum',
): Gauge {
  return new Gauge({
    name,
    help,
    registers,
    aggregator,
    collect() {
      this.set(read())
    },
  })
}

/** The primary's own series in `serve --workers N`: its workers and their WAL shards. */
function registerCluster(registers: Registry[], cluster: () => ClusterReading): void {
  scrapeGauge(
    registers,
    'cluster_workers',
    'HTTP worker processes configured (`workers`).',
    () => cluster().workers,
  )
  scrapeGauge(
    registers,
    'cluster_workers_running',
    'HTTP worker processes running now (less than cluster_workers while one is restarted).',
    () => cluster().running,
  )
  monotonic(
    'cluster_worker_restarts_total',
    'HTTP worker processes that died and were started again.',
    [],
    registers,
    () => [[{}, cluster().restarts]],
  )
  const perShard = (name: string, help: string, pick: (s: ClusterReading['shards'][number]) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['shard'],
      registers,
      collect() {
        this.reset()
        for (const shard of cluster().shards) this.set({ shard: String(shard.shard) }, pick(shard))
      },
    })
  perShard(
    'wal_shard_head_bytes',
    'End of the durable WAL shard of each worker (a byte position).',
    (s) => s.head,
  )
  perShard(
    'wal_shard_backlog_bytes',
    "Bytes of each worker's WAL shard not yet moved into the WAL delivery reads.",
    (s) => s.backlogBytes,
  )
}

/**
 * A counter whose value is read at scrape time from a source that is already monotonic (the
 * totals above): each collect replaces the values, in one synchronous step after the read, so two
 * concurrent scrapes cannot interleave a reset with an increment.
 */
function monotonic(
  name: string,
  help: string,
  labelNames: string[],
  registers: Registry[],
  read: () => readonly (readonly [Labels, number])[] | Promise<readonly (readonly [Labels, number])[]>,
): Counter {
  return new Counter({
    name,
    help,
    labelNames,
    registers,
    async collect() {
      const values = await read()
      this.reset()
      for (const [labels, value] of values) this.inc(labels, Math.max(0, value))
    },
  })
}

/**
 * A histogram rendered from bucket snapshots taken elsewhere (the delivery thread), exactly as a
 * prom-client Histogram renders its own: cumulative `_bucket{le}` series ending with +Inf, `_sum`
 * and `_count`.
 */
class SnapshotHistogram {
  readonly name: string
  readonly help: string
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #read: () => Promise<{ labels: Labels; snapshot: HistogramSnapshot }[]>

  constructor(
    name: string,
    help: string,
    read: () => Promise<{ labels: Labels; snapshot: HistogramSnapshot }[]>,
  ) {
    this.name = name
    this.help = help
    this.#read = read
  }

  async get() {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = []
    for (const { labels, snapshot } of await this.#read()) {
      snapshot.buckets.forEach((le, i) => {
        values.push({
          labels: { ...labels, le },
          value: snapshot.counts[i],
          metricName: `${this.name}_bucket`,
        })
      })
      values.push({
        labels: { ...labels, le: '+Inf' },
        value: snapshot.count,
        metricName: `${this.name}_bucket`,
      })
      values.push({ labels, value: snapshot.sum, metricName: `${this.name}_sum` })
      values.push({ labels, value: snapshot.count, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }

  reset(): void {}
}

/**
 * The live feed of the operations port (`GET /api/stats`, its SSE stream, the dashboard page and
 * `spillway top`). Once a second it renders the same Prometheus exposition as `GET /metrics` (in a
 * cluster's primary: the sum over the workers), reads it back, and turns counter deltas into rates
 * and histogram bucket deltas into quantiles. The last 900 samples (15 minutes) stay in a ring, so
 * a page opened now shows the history at once; the ring never holds more.
 *
 * Sampling runs whether anyone watches or not (the history must be there when someone looks);
 * one sample is a render, a parse and some arithmetic, a few milliseconds of CPU a second (README
 * "Operations port"). Figures without a metric (a sink's last error, the delivery phase) come from
 * the optional `sinkDetails` source — the delivery thread's own stats.
 */
import { hostname } from 'node:os'
import { buckets, type Exposition, has, parseExposition, total, totalsBy } from './prometheus.ts'

export const HISTORY_SAMPLES = 900
export const SAMPLE_EVERY_MS = 1000
/** The shape's version: a tool reading the feed checks it. */
export const FEED_VERSION = 1

const INGEST_ROUTES = new Set(['/events', '/events/batch', '/events/bulk'])

/** A fixed-capacity ring: pushing past the capacity drops the oldest. */
export class Ring<T> {
  readonly capacity: number
  readonly #items: T[] = []
  #start = 0

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer')
    this.capacity = capacity
  }

  get length(): number {
    return this.#items.length
  }

  push(item: T): void {
    if (this.#items.length < this.capacity) this.#items.push(item)
    else {
      this.#items[this.#start] = item
      this.#start = (this.#start + 1) % this.capacity
    }
  }

  /** Oldest first. */
  at(index: number): T | undefined {
    if (index < 0 || index >= this.#items.length) return undefined
    return this.#items[(this.#start + index) % this.#items.length]
  }

  last(): T | undefined {
    return this.at(this.#items.length - 1)
  }

  /** Oldest first. */
  toArray(): T[] {
    return [...this.#items.slice(this.#start), ...this.#items.slice(0, this.#start)]
  }
}

/** What one sink's delivery loop says beyond the metrics (DeliveryStats has these fields). */
export interface SinkDetail {
  readonly sink: string
  readonly phase?: string
  readonly deadLettered?: number
  readonly lastError: string | null
  readonly lastErrorAt: number | null
  readonly lastDeliveredAt: number | null
  /** The shared dedup layer as this sink's check sees it; null without Redis. */
  readonly dedupL2?: { readonly state: string } | null
}

export interface Quantiles {
  readonly p50: number
  readonly p95: number
  readonly p99: number
}

/** One second of the node, as the history keeps it (rates are per second over the interval). */
export interface Sample {
  /** Unix milliseconds. */
  readonly t: number
  /** Answers per second on the ingest routes, by HTTP status. */
  readonly requests: Readonly<Record<string, number>>
  readonly events: { readonly accepted: number; readonly duplicate: number; readonly rejected: number }
  /** Of the 202 answers in the interval, in ms; null when there were none. */
  readonly latencyMs: Quantiles | null
  readonly walBacklogBytes: number
  readonly walHeadBytes: number
  /** Age of the oldest event not yet delivered to every sink; 0 when none waits. */
  readonly oldestUndeliveredSeconds: number
  readonly sinks: Readonly<
    Record<
      string,
      {
        readonly rowsPerSecond: number
        readonly retriesPerSecond: number
        readonly backlogBytes: number
        readonly lagSeconds: number
        readonly breaker: string
      }
    >
  >
  /** Each admission bound's current value over its limit (0–1). */
  readonly admission: Readonly<Record<string, number>>
  readonly deadLettersPerSecond: number
  readonly rssBytes: number
  /** The event loop's p99 delay (ms; the workers' average in a cluster). */
  readonly eventLoopDelayMs: number
}

/** The body of `GET /api/stats` (README "Operations port"). */
export interface Stats {
  readonly version: typeof FEED_VERSION
  readonly node: {
    readonly hostname: string
    readonly pid: number
    readonly version: string
    readonly startedAt: string
    readonly uptimeSeconds: number
    /** null: one process (no `--workers`). */
    readonly workers: {
      readonly configured: number
      readonly running: number
      readonly restarts: number
    } | null
    readonly shards: readonly {
      readonly shard: number
      readonly headBytes: number
      readonly backlogBytes: number
    }[]
  }
  readonly sampleEveryMs: number
  /** The newest sample (null until two readings were taken). */
  readonly current: Sample | null
  readonly totals: {
    readonly requests: Readonly<Record<string, number>>
    readonly events: {
      readonly received: number
      readonly accepted: number
      readonly duplicate: number
      readonly rejected: number
    }
    readonly rejectedByReason: Readonly<Record<string, number>>
    readonly duplicatesByLayer: Readonly<Record<string, number>>
    readonly deadLetteredBySource: Readonly<Record<string, number>>
  }
  readonly admission: readonly {
    readonly bound: string
    readonly current: number
    readonly limit: number
    readonly fullness: number
    readonly refusedTotal: number
  }[]
  readonly wal: {
    readonly headBytes: number
    readonly backlogBytes: number
    readonly pendingBytes: number
    readonly oldestUndeliveredSeconds: number
    /** true when the oldest undelivered event is older than the history: the age is at least this. */
    readonly oldestIsLowerBound: boolean
  }
  readonly sinks: readonly {
    readonly name: string
    readonly breaker: string
    readonly phase: string | null
    readonly backlogBytes: number
    readonly lagSeconds: number
    readonly rowsPerSecond: number
    readonly deliveredTotal: number
    readonly retriesTotal: number
    readonly timeoutsTotal: number
    readonly breakerOpensTotal: number
    readonly refusedBatchesTotal: number
    readonly deadLettered: number | null
    readonly lastError: string | null
    readonly lastErrorAt: string | null
    readonly lastDeliveredAt: string | null
  }[]
  readonly deadLetters: {
    readonly entries: number
    readonly bytes: number
    readonly limitEntries: number
    readonly limitBytes: number
  }
  readonly dedup: {
    readonly l1Keys: number
    /** `up`, `down` or `connecting`; null without Redis. */
    readonly l2: string | null
  }
  readonly process: {
    readonly rssBytes: number
    readonly eventLoopDelayMs: number
    readonly deliveryThreadUp: boolean | null
  }
  /** Oldest first; with `?since=<t>` only the samples after t. */
  readonly history: readonly Sample[]
}

/** The counters and gauges of one exposition, as the feed uses them. */
export interface Reading {
  readonly t: number
  readonly requests: Record<string, number>
  readonly events: { received: number; accepted: number; duplicate: number; rejected: number }
  readonly rejectedByReason: Record<string, number>
  readonly duplicatesByLayer: Record<string, number>
  readonly deadLetteredBySource: Record<string, number>
  readonly latency: { readonly le: number[]; readonly counts: number[] }
  readonly walHead: number
  readonly walBacklog: number
  readonly walPending: number
  readonly sinks: Record<
    string,
    {
      published: number
      retries: number
      timeouts: number
      breakerOpens: number
      refused: number
      backlogBytes: number
      breaker: string
    }
  >
  readonly admission: Record<string, { current: number; limit: number; refused: number }>
  readonly deadLetterStore: { bytes: number; entries: number; limitBytes: number; limitEntries: number }
  readonly cluster: { configured: number; running: number; restarts: number } | null
  readonly shards: { shard: number; headBytes: number; backlogBytes: number }[]
  readonly rssBytes: number
  readonly eventLoopDelayMs: number
  readonly deliveryUp: boolean | null
  readonly l2Up: boolean | null
  readonly l1Keys: number
}

export function readExposition(exposition: Exposition, t: number): Reading {
  const requests: Record<string, number> = {}
  for (const s of exposition.get('http_requests_total') ?? []) {
    if (!INGEST_ROUTES.has(s.labels['route'] ?? '')) continue
    const status = s.labels['status'] ?? 'other'
    requests[status] = (requests[status] ?? 0) + s.value
  }
  const duplicatesByLayer = totalsBy(exposition, 'events_duplicate_total', 'layer')
  const rejectedByReason = totalsBy(exposition, 'events_rejected_total', 'reason')
  const sinks: Reading['sinks'] = {}
  const sink = (name: string) => {
    sinks[name] ??= {
      published: 0,
      retries: 0,
      timeouts: 0,
      breakerOpens: 0,
      refused: 0,
      backlogBytes: 0,
      breaker: 'unknown',
    }
    return sinks[name]
  }
  const perSink = (metric: string, set: (s: Reading['sinks'][string], v: number) => void) => {
    for (const [name, value] of Object.entries(totalsBy(exposition, metric, 'sink'))) set(sink(name), value)
  }
  perSink('events_published_total', (s, v) => {
    s.published = v
  })
  perSink('sink_retries_total', (s, v) => {
    s.retries = v
  })
  perSink('sink_timeouts_total', (s, v) => {
    s.timeouts = v
  })
  perSink('sink_breaker_opens_total', (s, v) => {
    s.breakerOpens = v
  })
  perSink('sink_refused_batches_total', (s, v) => {
    s.refused = v
  })
  perSink('sink_backlog_bytes', (s, v) => {
    s.backlogBytes = v
  })
  for (const s of exposition.get('sink_breaker_state') ?? []) {
    const name = s.labels['sink']
    if (name !== undefined && s.value === 1) sink(name).breaker = s.labels['state'] ?? 'unknown'
  }
  const admission: Reading['admission'] = {}
  const limits = totalsBy(exposition, 'admission_limit', 'bound')
  const currents = totalsBy(exposition, 'admission_current', 'bound')
  const refused = totalsBy(exposition, 'admission_refused_total', 'bound')
  for (const bound of new Set([...Object.keys(limits), ...Object.keys(currents)])) {
    admission[bound] = {
      current: currents[bound] ?? 0,
      limit: limits[bound] ?? 0,
      refused: refused[bound] ?? 0,
    }
  }
  const shardHeads = totalsBy(exposition, 'wal_shard_head_bytes', 'shard')
  const shardBacklogs = totalsBy(exposition, 'wal_shard_backlog_bytes', 'shard')
  return {
    t,
    requests,
    events: {
      received: total(exposition, 'events_received_total'),
      accepted: total(exposition, 'events_accepted_total'),
      duplicate: total(exposition, 'events_duplicate_total'),
      rejected: total(exposition, 'events_rejected_total'),
    },
    rejectedByReason,
    duplicatesByLayer,
    deadLetteredBySource: totalsBy(exposition, 'events_dead_lettered_total', 'source'),
    latency: buckets(exposition, 'ingest_latency_ms', { status: '202' }),
    walHead: total(exposition, 'wal_head_bytes'),
    walBacklog: total(exposition, 'wal_backlog_bytes'),
    walPending: total(exposition, 'wal_pending_bytes'),
    sinks,
    admission,
    deadLetterStore: {
      bytes: total(exposition, 'deadletter_bytes'),
      entries: total(exposition, 'deadletter_entries'),
      limitBytes: total(exposition, 'deadletter_limit_bytes'),
      limitEntries: total(exposition, 'deadletter_limit_entries'),
    },
    cluster: has(exposition, 'cluster_workers')
      ? {
          configured: total(exposition, 'cluster_workers'),
          running: total(exposition, 'cluster_workers_running'),
          restarts: total(exposition, 'cluster_worker_restarts_total'),
        }
      : null,
    shards: Object.keys(shardHeads)
      .map(Number)
      .sort((a, b) => a - b)
      .map((shard) => ({
        shard,
        headBytes: shardHeads[shard] ?? 0,
        backlogBytes: shardBacklogs[shard] ?? 0,
      })),
    rssBytes: total(exposition, 'process_resident_memory_bytes'),
    eventLoopDelayMs: total(exposition, 'nodejs_eventloop_lag_p99_seconds') * 1000,
    deliveryUp: has(exposition, 'delivery_thread_up') ? total(exposition, 'delivery_thread_up') > 0 : null,
    l2Up: has(exposition, 'dedup_l2_up') ? total(exposition, 'dedup_l2_up') > 0 : null,
    l1Keys: total(exposition, 'dedup_l1_keys'),
  }
}

/**
 * The q-quantile of the observations between two cumulative bucket readings, interpolated
 * linearly inside the bucket it falls in (as PromQL's histogram_quantile); null without
 * observations. In the +Inf bucket it is the highest finite bound.
 */
export function quantileOf(
  q: number,
  now: { readonly le: readonly number[]; readonly counts: readonly number[] },
  before?: { readonly le: readonly number[]; readonly counts: readonly number[] },
): number | null {
  const counts = now.le.map((le, i) => {
    const j = before ? before.le.indexOf(le) : -1
    return Math.max(0, now.counts[i] - (j === -1 ? 0 : before!.counts[j]))
  })
  const count = counts.at(-1) ?? 0
  if (count <= 0) return null
  const rank = q * count
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] < rank) continue
    const upper = now.le[i]
    const lower = i === 0 ? 0 : now.le[i - 1]
    if (upper === Number.POSITIVE_INFINITY) return lower
    const below = i === 0 ? 0 : counts[i - 1]
    const inBucket = counts[i] - below
    if (inBucket <= 0) return upper
    return lower + ((upper - lower) * (rank - below)) / inBucket
  }
  return now.le.findLast((le) => le !== Number.POSITIVE_INFINITY) ?? null
}

/**
 * How long ago the WAL byte after `position` was written, from the history of the head: the
 * time of the first sample whose head had passed it. `lowerBound` when even the oldest sample had.
 */
export function ageOf(
  position: number,
  head: number,
  now: number,
  history: Ring<Sample>,
): { seconds: number; lowerBound: boolean } {
  if (head <= position) return { seconds: 0, lowerBound: false }
  // Heads only grow within a process: binary search for the first sample past `position`.
  let lo = 0
  let hi = history.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (history.at(mid)!.walHeadBytes > position) hi = mid
    else lo = mid + 1
  }
  const first = history.at(lo)
  if (!first) return { seconds: 0, lowerBound: false }
  return { seconds: Math.max(0, Math.round((now - first.t) / 1000)), lowerBound: lo === 0 }
}

export function sampleOf(before: Reading, now: Reading, history: Ring<Sample>): Sample {
  const seconds = Math.max(0.001, (now.t - before.t) / 1000)
  const rate = (a: number, b: number) => round(Math.max(0, a - b) / seconds)
  const requests: Record<string, number> = {}
  for (const [status, count] of Object.entries(now.requests))
    requests[status] = rate(count, before.requests[status] ?? 0)
  const p = (q: number) => round(quantileOf(q, now.latency, before.latency) ?? 0)
  const hasLatency = quantileOf(0.5, now.latency, before.latency) !== null
  const sinks: Record<string, Sample['sinks'][string]> = {}
  for (const [name, s] of Object.entries(now.sinks)) {
    const b = before.sinks[name]
    sinks[name] = {
      rowsPerSecond: rate(s.published, b?.published ?? s.published),
      retriesPerSecond: rate(s.retries, b?.retries ?? s.retries),
      backlogBytes: s.backlogBytes,
      lagSeconds: ageOf(now.walHead - s.backlogBytes, now.walHead, now.t, history).seconds,
      breaker: s.breaker,
    }
  }
  const admission: Record<string, number> = {}
  for (const [bound, a] of Object.entries(now.admission))
    admission[bound] = a.limit > 0 ? round(Math.min(1, a.current / a.limit)) : 0
  const deadLettered = (r: Reading) => Object.values(r.deadLetteredBySource).reduce((x, y) => x + y, 0)
  return {
    t: now.t,
    requests,
    events: {
      accepted: rate(now.events.accepted, before.events.accepted),
      duplicate: rate(now.events.duplicate, before.events.duplicate),
      rejected: rate(now.events.rejected, before.events.rejected),
    },
    latencyMs: hasLatency ? { p50: p(0.5), p95: p(0.95), p99: p(0.99) } : null,
    walBacklogBytes: now.walBacklog,
    walHeadBytes: now.walHead,
    oldestUndeliveredSeconds: ageOf(now.walHead - now.walBacklog, now.walHead, now.t, history).seconds,
    sinks,
    admission,
    deadLettersPerSecond: rate(deadLettered(now), deadLettered(before)),
    rssBytes: now.rssBytes,
    eventLoopDelayMs: round(now.eventLoopDelayMs),
  }
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000
}

export interface FeedOptions {
  /** The exposition (`GET /metrics`' body): ServerMetrics.render, or a primary's sum over workers. */
  readonly render: () => Promise<{ body: string }>
  readonly sinkDetails?: () => Promise<readonly SinkDetail[]>
  readonly version: string
  readonly everyMs?: number
  readonly capacity?: number
  readonly clock?: () => number
  readonly onError?: (error: unknown) => void
}

export class Feed {
  readonly #options: FeedOptions
  readonly #history: Ring<Sample>
  readonly #clock: () => number
  readonly #startedAt: number
  readonly #listeners = new Set<(sample: Sample) => void>()
  #last: Reading | undefined
  #details: readonly SinkDetail[] = []
  #timer: NodeJS.Timeout | undefined
  #sampling: Promise<void> | undefined
  /** CPU time of the newest sample's parse and arithmetic (µs; the render is measured apart). */
  lastSampleCpuMicros = 0

  constructor(options: FeedOptions) {
    this.#options = options
    this.#clock = options.clock ?? Date.now
    this.#history = new Ring(options.capacity ?? HISTORY_SAMPLES)
    this.#startedAt = this.#clock()
  }

  get history(): Ring<Sample> {
    return this.#history
  }

  /** Samples now, then every `everyMs`; the timer never keeps the process alive. */
  start(): this {
    void this.sample()
    this.#timer = setInterval(() => void this.sample(), this.#options.everyMs ?? SAMPLE_EVERY_MS)
    this.#timer.unref()
    return this
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#listeners.clear()
  }

  /** Called with every new sample; returns the unsubscribe. */
  subscribe(listener: (sample: Sample) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** One reading; a sample when there was a reading before. Overlapping calls share one. */
  sample(): Promise<void> {
    this.#sampling ??= this.#take().finally(() => {
      this.#sampling = undefined
    })
    return this.#sampling
  }

  async #take(): Promise<void> {
    try {
      const [{ body }, details] = await Promise.all([
        this.#options.render(),
        this.#options.sinkDetails?.().catch(() => this.#details) ?? Promise.resolve([]),
      ])
      const cpu = process.cpuUsage()
      const reading = readExposition(parseExposition(body), this.#clock())
      this.#details = details
      const before = this.#last
      this.#last = reading
      if (!before) return
      const sample = sampleOf(before, reading, this.#history)
      this.#history.push(sample)
      const used = process.cpuUsage(cpu)
      this.lastSampleCpuMicros = used.user + used.system
      for (const listener of this.#listeners) listener(sample)
    } catch (error) {
      this.#options.onError?.(error)
    }
  }

  /** The body of `GET /api/stats`; `since` (Unix ms) keeps only newer history samples. */
  stats(since?: number): Stats {
    const now = this.#last
    const current = this.#history.last() ?? null
    const history = this.#history.toArray()
    const newer = since === undefined ? history : history.filter((s) => s.t > since)
    const details = new Map(this.#details.map((d) => [d.sink, d]))
    const iso = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString() : null)
    const walAge = now
      ? ageOf(now.walHead - now.walBacklog, now.walHead, now.t, this.#history)
      : { seconds: 0, lowerBound: false }
    const clock = this.#clock()
    return {
      version: FEED_VERSION,
      node: {
        hostname: hostname(),
        pid: process.pid,
        version: this.#options.version,
        startedAt: new Date(this.#startedAt).toISOString(),
        uptimeSeconds: Math.round((clock - this.#startedAt) / 1000),
        workers: now?.cluster ?? null,
        shards: now?.shards ?? [],
      },
      sampleEveryMs: this.#options.everyMs ?? SAMPLE_EVERY_MS,
      current,
      totals: {
        requests: now?.requests ?? {},
        events: now?.events ?? { received: 0, accepted: 0, duplicate: 0, rejected: 0 },
        rejectedByReason: now?.rejectedByReason ?? {},
        duplicatesByLayer: now?.duplicatesByLayer ?? {},
        deadLetteredBySource: now?.deadLetteredBySource ?? {},
      },
      admission: Object.entries(now?.admission ?? {}).map(([bound, a]) => ({
        bound,
        current: a.current,
        limit: a.limit,
        fullness: a.limit > 0 ? round(Math.min(1, a.current / a.limit)) : 0,
        refusedTotal: a.refused,
      })),
      wal: {
        headBytes: now?.walHead ?? 0,
        backlogBytes: now?.walBacklog ?? 0,
        pendingBytes: now?.walPending ?? 0,
        oldestUndeliveredSeconds: walAge.seconds,
        oldestIsLowerBound: walAge.lowerBound,
      },
      sinks: Object.entries(now?.sinks ?? {}).map(([name, s]) => {
        const d = details.get(name)
        return {
          name,
          breaker: s.breaker,
          phase: d?.phase ?? null,
          backlogBytes: s.backlogBytes,
          lagSeconds: current?.sinks[name]?.lagSeconds ?? 0,
          rowsPerSecond: current?.sinks[name]?.rowsPerSecond ?? 0,
          deliveredTotal: s.published,
          retriesTotal: s.retries,
          timeoutsTotal: s.timeouts,
          breakerOpensTotal: s.breakerOpens,
          refusedBatchesTotal: s.refused,
          deadLettered: d?.deadLettered ?? null,
          lastError: d?.lastError ?? null,
          lastErrorAt: iso(d?.lastErrorAt),
          lastDeliveredAt: iso(d?.lastDeliveredAt),
        }
      }),
      deadLetters: now?.deadLetterStore ?? { entries: 0, bytes: 0, limitEntries: 0, limitBytes: 0 },
      // The metric reads 0 both without Redis and with it down: the delivery thread tells them apart.
      dedup: {
        l1Keys: now?.l1Keys ?? 0,
        l2: this.#details[0]?.dedupL2?.state ?? (now?.l2Up ? 'up' : null),
      },
      process: {
        rssBytes: now?.rssBytes ?? 0,
        eventLoopDelayMs: round(now?.eventLoopDelayMs ?? 0),
        deliveryThreadUp: now?.deliveryUp ?? null,
      },
      history: newer,
    }
  }
}

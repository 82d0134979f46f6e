/**
 * One Prometheus exposition read into the counters and gauges the feed works from (feed.ts): the
 * same series `GET /metrics` serves, summed over label sets where the dashboard shows totals.
 */
import { buckets, type Exposition, has, total, totalsBy } from './prometheus.ts'

const INGEST_ROUTES = new Set(['/events', '/events/batch', '/events/bulk'])

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

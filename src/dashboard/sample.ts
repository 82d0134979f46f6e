/**
 * One second of the node from two readings (reading.ts): counter deltas as rates, histogram bucket
 * deltas as quantiles, and ages from the history of the WAL head.
 */
import type { Reading } from './reading.ts'
import type { Ring } from './ring.ts'

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

export function round(value: number): number {
  return Math.round(value * 1000) / 1000
}

/**
 * The shapes `spillway load` works with: a plan (what to send, how fast), and the result it writes
 * as JSON and renders as text and HTML.
 */

/** One stage of an open-model plan: the arrival rate moves linearly to `target` req/s over `durationMs`. */
export interface Stage {
  readonly durationMs: number
  readonly target: number
}

/** What each request carries. */
export interface PayloadPlan {
  /** Event names to draw from, uniformly. */
  readonly eventNames: readonly string[]
  /** Users are `user_0` … `user_<users-1>`. */
  readonly users: number
  /** Campaigns are `cmp_0` … `cmp_<campaigns-1>`. */
  readonly campaigns: number
  readonly channels: readonly string[]
  /** Fraction 0..1 of events that are an exact copy of a recently sent event (a client retry). */
  readonly duplicateRatio: number
  /** 0: one event per request to POST /events; N: NDJSON of N events to POST /events/batch. */
  readonly batch: number
  readonly gzip: boolean
}

export interface LoadPlan {
  /** The endpoint: a request URL (`/events` or `/events/batch` is added when the path is `/`). */
  readonly url: string
  /** open: arrivals on a schedule, whatever the server does; closed: N connections, each sends when answered. */
  readonly model: 'open' | 'closed'
  /** open: the rate at time 0, req/s. */
  readonly startRate: number
  /** open: the stages, in order. */
  readonly stages: readonly Stage[]
  /** closed: the run's length. open: the sum of the stages. */
  readonly durationMs: number
  /** open: the most connections opened at once; closed: exactly this many. */
  readonly connections: number
  /** Stop after this many requests (0: no limit). */
  readonly maxRequests: number
  /** A request not answered within this is counted as a timeout and its connection is replaced. */
  readonly timeoutMs: number
  /** open: arrivals waiting for a free connection beyond this are dropped (counted, and errors). */
  readonly maxQueued: number
  readonly headers: Readonly<Record<string, string>>
  readonly payload: PayloadPlan
  /** Threshold expressions, e.g. `p95<60ms`, `errors<1%`, `rate>=14000`. */
  readonly thresholds: readonly string[]
  /** The preset this plan came from, if any. */
  readonly preset?: string
}

/** Requests by outcome. `other` is every status not named; `byStatus` has the exact codes. */
export interface StatusSummary {
  readonly '202': number
  readonly '400': number
  readonly '429': number
  readonly '503': number
  readonly other: number
  readonly timeouts: number
  /** Refused, reset or closed before the response was complete. */
  readonly connectionErrors: number
  /** open model: arrivals that found no connection and no room to wait. */
  readonly dropped: number
}

export interface LatencySummaryMs {
  readonly min: number
  readonly mean: number
  readonly p50: number
  readonly p90: number
  readonly p95: number
  readonly p99: number
  readonly p999: number
  readonly max: number
}

/** One second of the run. */
export interface TimelinePoint {
  /** Seconds since the start, at the end of this interval. */
  readonly second: number
  /** open: the scheduled arrival rate at the middle of the second, req/s. */
  readonly targetRate: number | null
  readonly sent: number
  readonly completed: number
  /** 2xx answers. */
  readonly ok: number
  /** Everything else, timeouts, connection errors and drops included. */
  readonly errors: number
  /** Latency of the requests answered in this second, ms; null when none were. */
  readonly p50Ms: number | null
  readonly p95Ms: number | null
  readonly p99Ms: number | null
  readonly maxMs: number | null
}

export interface ThresholdOutcome {
  readonly expression: string
  /** The measured value in the threshold's own unit (ms, %, req/s). */
  readonly actual: number
  readonly unit: string
  readonly pass: boolean
}

export interface LoadResult {
  readonly tool: 'spillway load'
  readonly startedAt: string
  readonly machine: string
  readonly plan: LoadPlan
  readonly durationSeconds: number
  readonly requests: {
    /** Requests that came due (open model; the whole schedule unless the run was stopped early). */
    readonly scheduled: number
    readonly sent: number
    readonly completed: number
    /** 2xx answers. */
    readonly ok: number
    readonly summary: StatusSummary
    readonly byStatus: Readonly<Record<string, number>>
    /** A fraction 0..1: errors / (completed + dropped), everything that was not a 2xx. */
    readonly errorRate: number
  }
  readonly events: { readonly sent: number; readonly duplicates: number }
  readonly throughput: {
    /** Answers of any kind per second. */
    readonly requestsPerSec: number
    readonly okPerSec: number
    /** Events in 2xx-answered requests per second. */
    readonly eventsPerSec: number
  }
  /**
   * Latency of answered requests (any status), from the scheduled send time in the open model, so
   * time spent waiting for a connection counts; from the write in the closed model.
   */
  readonly latencyMs: LatencySummaryMs
  /** The same for 2xx answers only, and for 503 refusals only. */
  readonly latencyMsByOutcome?: { readonly ok: LatencySummaryMs; readonly refused: LatencySummaryMs }
  /** Latency by percentile, for the percentile chart: [percentile 0..100, ms]. */
  readonly percentiles: readonly (readonly [number, number])[]
  readonly timeline: readonly TimelinePoint[]
  readonly thresholds: readonly ThresholdOutcome[]
  readonly generator: {
    /** The generator's own CPU over the run, % of one core: near 100 means it may be the bottleneck. */
    readonly cpuPercent: number
    readonly connectionsOpened: number
    /** open model: the longest queue of arrivals waiting for a connection. */
    readonly maxQueued: number
    /**
     * open model: how late the generator's timer acted on arrivals, p99, ms — its own lag, not the
     * wait for a connection (that is in the latency). 0 in the closed model.
     */
    readonly scheduleLagP99Ms: number
  }
  /** Every threshold passed (true when there are none). */
  readonly pass: boolean
  /** The run was stopped early (Ctrl-C): what is here covers only the time it ran. */
  readonly interrupted: boolean
}

/**
 * Runs a load plan and measures it.
 *
 * Open model: arrivals come on the schedule (schedule.ts) whatever the server does. Each takes an
 * idle connection, opens a new one while fewer than `connections` are open, or waits in a queue
 * (up to `maxQueued`, beyond which it is dropped and counted as an error). Its latency runs from the
 * time it was due, so waiting in that queue counts — as it would for the user whose request it is.
 *
 * Closed model: `connections` connections each send their next request as soon as the previous
 * one is answered, for the duration; latency runs from the write.
 *
 * After the last arrival (or the end of the duration) the run goes on until the queue is sent and
 * every request in flight is answered or past its own `timeoutMs` (a timeout).
 */
import { withTimeout } from '../shared/timeout.ts'
import { Connection, type ConnectionEvents } from './connection.ts'
import { RequestFactory, targetUrl } from './events.ts'
import { Histogram } from './histogram.ts'
import { ArrivalSchedule } from './schedule.ts'
import { evaluate, parseThresholds, type Threshold } from './thresholds.ts'
import type { LatencySummaryMs, LoadPlan, LoadResult, StatusSummary, TimelinePoint } from './types.ts'

/** What the live progress line shows, once a second. */
export interface Progress {
  readonly elapsedSeconds: number
  readonly targetRate: number | null
  /** Answers in the last second. */
  readonly answeredPerSec: number
  readonly summary: StatusSummary
  readonly ok: number
  /** p99 of the last second's answers, ms (null when none). */
  readonly p99Ms: number | null
  readonly inFlight: number
  readonly queued: number
}

export interface RunOptions {
  readonly onProgress?: (progress: Progress) => void
  /** Ends the run early (e.g. Ctrl-C): scheduling stops, answers in flight are awaited. */
  readonly signal?: AbortSignal
  readonly machine?: string
  readonly seed?: number
}

export interface RunOutcome {
  readonly result: LoadResult
  readonly latency: Histogram
}

export async function runLoad(plan: LoadPlan, options: RunOptions = {}): Promise<RunOutcome> {
  const thresholds = parseThresholds(plan.thresholds) // a bad one is refused before the run, not after it
  const url = targetUrl(plan.url, plan.payload.batch)
  const factory = new RequestFactory(url, plan.payload, plan.headers, options.seed)
  const schedule =
    plan.model === 'open' ? new ArrivalSchedule(plan.startRate, plan.stages, plan.maxRequests) : null
  const run = new Run(plan, thresholds, url, factory, schedule, options)
  return run.start()
}

class Run implements ConnectionEvents {
  readonly #plan: LoadPlan
  readonly #host: string
  readonly #port: number
  readonly #factory: RequestFactory
  readonly #schedule: ArrivalSchedule | null
  readonly #options: RunOptions
  readonly #thresholds: readonly Threshold[]
  /** Requests written and not yet answered, timed out or failed. */
  #inFlight = 0
  readonly #latency = new Histogram()
  /** Latency of 2xx answers and of 503s apart: an overloaded server's refusals must be fast, its accepts keep low. */
  readonly #okLatency = new Histogram()
  readonly #refusedLatency = new Histogram()
  readonly #second = new Histogram({ significantDigits: 2 })
  readonly #lag = new Histogram()
  readonly #connections = new Set<Connection>()
  readonly #idle: Connection[] = []
  readonly #timedOut = new WeakSet<Connection>()
  /** Due times (ms since start) of arrivals waiting for a connection: a ring. */
  #queue: Float64Array
  #queueHead = 0
  #queueLength = 0
  #maxQueued = 0
  #opened = 0
  #start = 0
  #next = 0
  #sending = true
  #finished = Promise.withResolvers<void>()
  #done = false
  /** When the last answer (of any kind) came: the stall guard after the last arrival. */
  #lastAnswer = 0
  /** Arrivals that were due but never sent because the run was stopped early. */
  #abandoned = 0
  #scheduleTimer: NodeJS.Timeout | undefined
  // counts
  #sent = 0
  #events = 0
  #duplicates = 0
  #completed = 0
  #ok = 0
  #okEvents = 0
  readonly #byStatus = new Map<number, number>()
  #timeouts = 0
  #connectionErrors = 0
  #dropped = 0
  // the timeline, one slot per second
  readonly #timeline: { sent: number; completed: number; ok: number; errors: number }[] = []
  readonly #points: TimelinePoint[] = []
  #currentSecond = 0
  #lastProgressCompleted = 0

  constructor(
    plan: LoadPlan,
    thresholds: readonly Threshold[],
    url: URL,
    factory: RequestFactory,
    schedule: ArrivalSchedule | null,
    options: RunOptions,
  ) {
    this.#plan = plan
    this.#host = url.hostname.replace(/^\[|\]$/g, '')
    this.#port = Number(url.port || 80)
    this.#factory = factory
    this.#schedule = schedule
    this.#options = options
    this.#thresholds = thresholds
    this.#queue = new Float64Array(Math.max(16, Math.min(plan.maxQueued, 1 << 16)))
  }

  async start(): Promise<RunOutcome> {
    const startedAt = new Date().toISOString()
    if (this.#schedule) await this.#preconnect(this.#schedule)
    // Serialising a few thousand requests first lets V8 compile the hot path before the clock runs.
    for (let i = 0; i < 5000; i++) this.#lag.record(this.#factory.warm().length)
    this.#lag.reset()
    const cpu = process.cpuUsage()
    this.#start = performance.now()
    const ticker = setInterval(() => this.#tick(), Math.max(10, Math.min(100, this.#plan.timeoutMs / 4)))
    const progress = setInterval(() => this.#progress(), 1000)
    const abort = () => this.#abandon()
    this.#options.signal?.addEventListener('abort', abort, { once: true })
    if (this.#schedule) {
      this.#scheduleArrivals()
    } else {
      for (let i = 0; i < this.#plan.connections; i++) this.#sendClosed(this.#open())
      this.#scheduleTimer = setTimeout(() => this.#stopSending(), this.#plan.durationMs)
    }
    await this.#finished.promise
    // Sockets closed from here on (the ones destroyed below, late closes) belong to no request.
    this.#done = true
    clearInterval(ticker)
    clearInterval(progress)
    clearTimeout(this.#scheduleTimer)
    this.#options.signal?.removeEventListener('abort', abort)
    for (const connection of this.#connections) connection.destroy()
    const elapsedMs = performance.now() - this.#start
    this.#flushSeconds(Math.ceil(elapsedMs / 1000))
    const used = process.cpuUsage(cpu)
    return {
      result: this.#result(startedAt, elapsedMs, (used.user + used.system) / 1000),
      latency: this.#latency,
    }
  }

  // ---- open model ----

  /**
   * Opens connections before the clock starts (k6's pre-allocated VUs): enough for the peak rate
   * at 10 ms a request, so the first second measures the server, not a storm of connects.
   */
  async #preconnect(schedule: ArrivalSchedule): Promise<void> {
    let peak = this.#plan.startRate
    for (const stage of this.#plan.stages) peak = Math.max(peak, stage.target)
    const count = Math.min(
      this.#plan.connections,
      Math.max(4, Math.ceil(peak / 100)),
      Math.max(1, schedule.total),
    )
    const opened = Array.from({ length: count }, () => this.#open())
    const ready = await withTimeout(
      Promise.all(opened.map((c) => c.ready)),
      this.#plan.timeoutMs,
      () => null,
      { unref: true },
    )
    for (const [i, connection] of opened.entries())
      if (connection.alive && ready?.[i]) this.#idle.push(connection) // idle since 0 on the run's clock
  }

  #scheduleArrivals(): void {
    const schedule = this.#schedule as ArrivalSchedule
    if (!this.#sending) return
    const now = this.#now()
    const due = schedule.dueBy(now)
    while (this.#next < due) {
      const at = schedule.timeOf(this.#next++)
      this.#arrive(at)
    }
    if (this.#next >= schedule.total) {
      this.#stopSending()
      return
    }
    const wait = schedule.timeOf(this.#next) - this.#now()
    this.#scheduleTimer = setTimeout(() => this.#scheduleArrivals(), Math.max(0, wait))
  }

  #arrive(at: number): void {
    // How late the timer let the generator act on this arrival: its own lag, not the server's.
    this.#lag.record(Math.max(0, (this.#now() - at) * 1000))
    const connection =
      this.#takeIdle() ?? (this.#connections.size < this.#plan.connections ? this.#open() : null)
    if (connection) {
      this.#send(connection, at)
      return
    }
    if (this.#queueLength >= this.#plan.maxQueued) {
      this.#dropped++
      this.#slot(at).errors++
      return
    }
    if (this.#queueLength === this.#queue.length) this.#growQueue()
    this.#queue[(this.#queueHead + this.#queueLength++) % this.#queue.length] = at
    if (this.#queueLength > this.#maxQueued) this.#maxQueued = this.#queueLength
  }

  #growQueue(): void {
    const bigger = new Float64Array(Math.min(this.#queue.length * 2, Math.max(this.#plan.maxQueued, 16)))
    for (let i = 0; i < this.#queueLength; i++)
      bigger[i] = this.#queue[(this.#queueHead + i) % this.#queue.length]
    this.#queue = bigger
    this.#queueHead = 0
  }

  #dequeue(): number {
    const at = this.#queue[this.#queueHead]
    this.#queueHead = (this.#queueHead + 1) % this.#queue.length
    this.#queueLength--
    return at
  }

  // ---- closed model ----

  #sendClosed(connection: Connection): void {
    if (!this.#sending || this.#limitReached()) {
      this.#stopSending()
      return
    }
    this.#send(connection, this.#now())
  }

  #limitReached(): boolean {
    return this.#plan.maxRequests > 0 && this.#sent >= this.#plan.maxRequests
  }

  // ---- both ----

  #open(): Connection {
    const connection = new Connection(this.#host, this.#port, this)
    this.#connections.add(connection)
    this.#opened++
    return connection
  }

  #send(connection: Connection, at: number): void {
    const request = this.#factory.next()
    const now = this.#now()
    connection.scheduledAt = at
    connection.sentAt = now
    connection.deadline = now + this.#plan.timeoutMs
    connection.events = request.events
    this.#sent++
    this.#inFlight++
    this.#events += request.events
    this.#duplicates += request.duplicates
    this.#slot(now).sent++
    connection.send(request.bytes)
  }

  answered(connection: Connection, status: number): void {
    if (this.#done) return
    this.#inFlight--
    const now = this.#now()
    this.#lastAnswer = now
    const slot = this.#slot(now)
    this.#completed++
    slot.completed++
    if (status === 0) {
      if (this.#timedOut.has(connection)) this.#timeouts++
      else this.#connectionErrors++
      slot.errors++
    } else {
      const micros = (now - connection.scheduledAt) * 1000
      this.#latency.record(micros)
      this.#second.record(micros)
      this.#byStatus.set(status, (this.#byStatus.get(status) ?? 0) + 1)
      if (status === 503) this.#refusedLatency.record(micros)
      if (status >= 200 && status < 300) {
        this.#okLatency.record(micros)
        this.#ok++
        this.#okEvents += connection.events
        slot.ok++
      } else {
        slot.errors++
      }
    }
    if (connection.alive) this.#reuse(connection)
  }

  closed(connection: Connection): void {
    this.#connections.delete(connection)
    if (this.#done) return
    const idle = this.#idle.indexOf(connection)
    if (idle >= 0) this.#idle.splice(idle, 1)
    if (this.#schedule) {
      // Arrivals waiting for a connection get a new one in its place (after the last arrival too:
      // they were due).
      if (this.#queueLength > 0) this.#send(this.#open(), this.#dequeue())
    } else if (this.#sending) {
      // A closed-model connection is replaced; after a pause when the server refuses, so a server
      // that is down costs a few attempts a second per connection, not a busy loop.
      const replace = () => this.#sending && this.#sendClosed(this.#open())
      setTimeout(replace, connection.answeredAny ? 0 : 50)
    }
    this.#maybeFinish()
  }

  #reuse(connection: Connection): void {
    connection.answeredAny = true
    if (this.#schedule) {
      if (this.#queueLength > 0) this.#send(connection, this.#dequeue())
      else this.#park(connection)
    } else {
      this.#sendClosed(connection)
    }
    this.#maybeFinish()
  }

  /**
   * No more arrivals. Queued ones are still sent as connections free up, and each request in
   * flight has its own deadline, so the run ends when the last answer or timeout is in.
   */
  #stopSending(): void {
    if (!this.#sending) return
    this.#sending = false
    this.#lastAnswer = this.#now()
    clearTimeout(this.#scheduleTimer)
    this.#maybeFinish()
  }

  /** Stopped early (Ctrl-C): what is queued is not sent; what is in flight is awaited. */
  #abandon(): void {
    this.#abandoned += this.#queueLength
    this.#queueHead = 0
    this.#queueLength = 0
    this.#stopSending()
  }

  /** An idle connection, most recently used first; one idle too long is closed instead. */
  #takeIdle(): Connection | undefined {
    const now = this.#now()
    for (let connection = this.#idle.pop(); connection; connection = this.#idle.pop()) {
      if (now - connection.idleSince < IDLE_LIMIT_MS) return connection
      connection.destroy()
    }
    return undefined
  }

  #park(connection: Connection): void {
    connection.idleSince = this.#now()
    this.#idle.push(connection)
  }

  #maybeFinish(): void {
    if (this.#sending || this.#queueLength > 0) return
    if (this.#inFlight > 0) return
    this.#finished.resolve()
  }

  /**
   * A guard that should never fire: nothing was answered for twice the request timeout after the
   * last arrival. What is in flight is counted as timed out now (not when its socket closes, which
   * would be after the result), and what is queued as dropped.
   */
  #giveUp(): void {
    while (this.#queueLength > 0) {
      this.#dropped++
      this.#slot(this.#dequeue()).errors++
    }
    const slot = this.#slot(this.#now())
    for (const connection of this.#connections) {
      if (!connection.busy) continue
      this.#timeouts++
      this.#completed++
      slot.completed++
      slot.errors++
    }
    this.#done = true
    for (const connection of this.#connections) connection.destroy()
    this.#finished.resolve()
  }

  #tick(): void {
    const now = this.#now()
    this.#expire(now)
    this.#flushSeconds(Math.floor(now / 1000))
    if (!this.#sending && now - this.#lastAnswer > 2 * this.#plan.timeoutMs) this.#giveUp()
  }

  /** Requests past their deadline are timeouts; their connection is dropped. */
  #expire(now: number): void {
    for (const connection of this.#connections) {
      if (connection.busy && connection.deadline <= now) {
        this.#timedOut.add(connection)
        connection.destroy()
      }
    }
  }

  #now(): number {
    return performance.now() - this.#start
  }

  #slot(ms: number) {
    const second = Math.max(0, Math.floor(ms / 1000))
    this.#flushSeconds(second)
    while (this.#timeline.length <= second) this.#timeline.push({ sent: 0, completed: 0, ok: 0, errors: 0 })
    return this.#timeline[second]
  }

  /** Closes the per-second latency histogram of every second before `second`. */
  #flushSeconds(second: number): void {
    while (this.#currentSecond < second) {
      const h = this.#second
      const has = h.count > 0
      this.#points[this.#currentSecond] = {
        second: this.#currentSecond + 1,
        targetRate: this.#schedule ? this.#schedule.rateAt(this.#currentSecond * 1000 + 500) : null,
        sent: 0,
        completed: 0,
        ok: 0,
        errors: 0,
        p50Ms: has ? h.valueAtPercentile(50) / 1000 : null,
        p95Ms: has ? h.valueAtPercentile(95) / 1000 : null,
        p99Ms: has ? h.valueAtPercentile(99) / 1000 : null,
        maxMs: has ? h.max / 1000 : null,
      }
      h.reset()
      this.#currentSecond++
    }
  }

  #summary(): StatusSummary {
    let other = 0
    for (const [status, count] of this.#byStatus) if (![202, 400, 429, 503].includes(status)) other += count
    return {
      '202': this.#byStatus.get(202) ?? 0,
      '400': this.#byStatus.get(400) ?? 0,
      '429': this.#byStatus.get(429) ?? 0,
      '503': this.#byStatus.get(503) ?? 0,
      other,
      timeouts: this.#timeouts,
      connectionErrors: this.#connectionErrors,
      dropped: this.#dropped,
    }
  }

  #progress(): void {
    const elapsed = this.#now()
    const h = this.#second
    this.#options.onProgress?.({
      elapsedSeconds: elapsed / 1000,
      targetRate: this.#schedule && this.#sending ? this.#schedule.rateAt(elapsed) : null,
      answeredPerSec: this.#completed - this.#lastProgressCompleted,
      summary: this.#summary(),
      ok: this.#ok,
      p99Ms: this.#points.at(-1)?.p99Ms ?? (h.count > 0 ? h.valueAtPercentile(99) / 1000 : null),
      inFlight: this.#inFlight,
      queued: this.#queueLength,
    })
    this.#lastProgressCompleted = this.#completed
  }

  #result(startedAt: string, elapsedMs: number, cpuMs: number): LoadResult {
    const seconds = elapsedMs / 1000
    const summary = this.#summary()
    const failed = this.#completed - this.#ok + this.#dropped
    const errorRate = this.#completed + this.#dropped > 0 ? failed / (this.#completed + this.#dropped) : 0
    const h = this.#latency
    const ms = (p: number) => h.valueAtPercentile(p) / 1000
    const answered = this.#completed - this.#timeouts - this.#connectionErrors
    const throughput = {
      requestsPerSec: answered / seconds,
      okPerSec: this.#ok / seconds,
      eventsPerSec: this.#okEvents / seconds,
    }
    const measured = {
      latencyAt: ms,
      meanMs: h.mean / 1000,
      errorRate,
      ...throughput,
    }
    const outcomes = this.#thresholds.map((t) => evaluate(t, measured))
    const timeline = this.#points.map((point, i) => ({ ...point, ...this.#timeline[i] }))
    return {
      tool: 'spillway load',
      startedAt,
      machine: this.#options.machine ?? '',
      plan: { ...this.#plan, headers: redacted(this.#plan.headers) },
      durationSeconds: seconds,
      requests: {
        scheduled: this.#schedule ? this.#next - this.#abandoned : this.#sent,
        sent: this.#sent,
        completed: this.#completed,
        ok: this.#ok,
        summary,
        byStatus: Object.fromEntries([...this.#byStatus].sort((a, b) => a[0] - b[0])),
        errorRate,
      },
      events: { sent: this.#events, duplicates: this.#duplicates },
      throughput,
      latencyMs: summaryMs(h),
      latencyMsByOutcome: { ok: summaryMs(this.#okLatency), refused: summaryMs(this.#refusedLatency) },
      percentiles: h.percentileDistribution().map(([p, v]) => [p, v / 1000] as const),
      timeline,
      thresholds: outcomes,
      generator: {
        cpuPercent: (cpuMs / elapsedMs) * 100,
        connectionsOpened: this.#opened,
        maxQueued: this.#maxQueued,
        scheduleLagP99Ms: this.#lag.valueAtPercentile(99) / 1000,
      },
      pass: outcomes.every((o) => o.pass),
      interrupted: this.#options.signal?.aborted ?? false,
    }
  }
}

/**
 * An idle connection is not reused after this long: servers close idle keep-alive connections
 * (Node's default after 5 s; a connection that never sent a request gets a 408 when its headers
 * timeout runs out), and a request written just as that happens would be counted against the
 * server. HTTP clients keep their idle limit below the server's for the same reason (undici: 4 s).
 */
const IDLE_LIMIT_MS = 4000

/** Header values that are credentials stay out of the result file. */
function redacted(headers: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [
      name,
      /^(authorization|x-api-key|cookie|proxy-authorization)$/i.test(name) ? '<redacted>' : value,
    ]),
  )
}

function summaryMs(h: Histogram): LatencySummaryMs {
  const at = (p: number) => (h.count > 0 ? h.valueAtPercentile(p) / 1000 : 0)
  return {
    min: h.count > 0 ? h.min / 1000 : 0,
    mean: h.mean / 1000,
    p50: at(50),
    p90: at(90),
    p95: at(95),
    p99: at(99),
    p999: at(99.9),
    max: h.count > 0 ? h.max / 1000 : 0,
  }
}

/**
 * SpillwayClient: `track()` checks an event as the server would, gives it its `event_id` (so
 * every retry of it is a server-side duplicate, never a second row), and queues it; batches leave
 * by count, bytes or age, at most `concurrency` requests at a time, and each is retried until the
 * server answers for it. Every event ends in exactly one of: sent, rejected (by the server, with
 * its reason), dropped (by a full queue or a `close()` that gave up) or beaconed (handed to the
 * browser as the page went away) — and each is counted in `stats` and reported through the
 * callbacks.
 *
 * Flow: track → [store.append, when durable] → pending → batch (in flight) → settle → [store.remove].
 * `#events`/`#bytes` count everything not yet settled, which is what the queue bound limits.
 */
import { clientError, type EventFailure, type SpillwayClientError } from './errors.ts'
import {
  type BatchResult,
  type ClientOptions,
  isBrowser,
  type ResolvedOptions,
  type RetryInfo,
  resolveOptions,
} from './options.ts'
import { backoffDelay } from './retry.ts'
import type { EventStore } from './store.ts'
import { KEEPALIVE_BYTES, ndjsonBody, type SendOutcome, sendBatch } from './transport.ts'
import { uuidv7 } from './uuid.ts'
import { type PreparedEvent, prepareEvent, type TrackEvent, utf8Length } from './validate.ts'

export interface TrackResult {
  readonly event_id: string
  /** `queued`: the client holds it (on disk, with a store) and will deliver it. */
  readonly status: 'queued' | 'dropped'
}

export interface ClientStats {
  /** Events `track()` queued. */
  readonly tracked: number
  /** Events the server took: stored now, or already stored (`duplicates` of these). */
  readonly sent: number
  readonly duplicates: number
  /** Requests sent again after a network error, timeout, 408, 429 or 5xx. */
  readonly retried: number
  /** Events a full queue (or a `close()` that gave up) dropped. */
  readonly dropped: number
  /** Events the server refused (400, 401, …), reported through `onError`. */
  readonly rejected: number
  /** Events handed to `navigator.sendBeacon` as the page went away (their answer is never seen). */
  readonly beaconed: number
  /** Events not delivered yet (in flight included), and their bytes. */
  readonly queued: number
  readonly queuedBytes: number
  readonly inFlight: number
}

interface Entry extends PreparedEvent {
  /** Order of admission; flush() waits for every entry up to a sequence number. */
  seq: number
  /** When it joined the pending queue (its batch is due flushIntervalMs later). */
  at: number
  done: boolean
}

interface Waiter {
  readonly target: number
  readonly resolve: () => void
}

interface Blocked {
  readonly entry: Entry
  readonly resolve: (result: TrackResult | Promise<TrackResult>) => void
}

export class SpillwayClient {
  readonly #o: ResolvedOptions
  readonly #store: EventStore | undefined
  readonly #onError: ((error: SpillwayClientError) => void) | undefined
  readonly #onRetry: ((info: RetryInfo) => void) | undefined
  readonly #onResult: ((result: BatchResult) => void) | undefined
  readonly #pending = new Deque<Entry>()
  #pendingBytes = 0
  readonly #inFlight = new Set<Entry[]>()
  readonly #reserving = new Set<Entry>()
  #keepaliveBytes = 0
  #events = 0
  #bytes = 0
  #seq = 0
  #flushTarget = 0
  #pauseUntil = 0
  #timer: ReturnType<typeof setTimeout> | undefined
  #timerAt = 0
  readonly #waiters = new Set<Waiter>()
  readonly #blocked: Blocked[] = []
  /** Aborted when close() gives up: in-flight requests and backoff sleeps end at once. */
  readonly #giveUp = new AbortController()
  #closed = false
  #closing: Promise<void> | undefined
  #detachUnload: (() => void) | undefined
  readonly #stats = { tracked: 0, sent: 0, duplicates: 0, retried: 0, dropped: 0, rejected: 0, beaconed: 0 }

  constructor(options: ClientOptions) {
    this.#o = resolveOptions(options)
    this.#store = options.store
    this.#onError = options.onError
    this.#onRetry = options.onRetry
    this.#onResult = options.onResult
    // Events a previous run left in the store go first, in their order, whatever the bound.
    for (const stored of this.#store?.recovered ?? []) {
      const entry: Entry = {
        id: stored.id,
        line: stored.line,
        bytes: utf8Length(stored.line),
        seq: 0,
        at: 0,
        done: false,
      }
      this.#account(entry)
      this.#enqueue(entry)
    }
    if (this.#o.unload !== false && isBrowser()) this.#attachUnload()
  }

  /**
   * Queues one event. Throws SPW_ERR_CLIENT_INVALID_EVENT (at once, with the server's reason) when
   * the server would refuse it, SPW_ERR_CLIENT_CLOSED after close(). Resolves once the event is
   * queued — with a store, once it is on disk — or dropped (overflow 'drop-newest'); with
   * overflow 'block', once there is room. Rejects only when the store cannot write.
   */
  track(event: TrackEvent): Promise<TrackResult> {
    if (this.#closed) throw clientError('SPW_ERR_CLIENT_CLOSED', 'track() after close(); make a new client')
    const verdict = prepareEvent(event, this.#o.limits, Date.now(), uuidv7)
    if (!verdict.ok) throw clientError('SPW_ERR_CLIENT_INVALID_EVENT', verdict.error)
    const entry: Entry = { ...verdict.event, seq: 0, at: 0, done: false }
    if (entry.bytes > this.#o.maxQueueBytes) {
      this.#drop(
        [entry],
        `the event (${entry.bytes} bytes) is larger than maxQueueBytes (${this.#o.maxQueueBytes})`,
      )
      return Promise.resolve({ event_id: entry.id, status: 'dropped' })
    }
    if (this.#blocked.length > 0 || !this.#hasRoom(entry)) {
      switch (this.#o.overflow) {
        case 'drop-newest':
          this.#drop([entry], this.#fullMessage())
          return Promise.resolve({ event_id: entry.id, status: 'dropped' })
        case 'drop-oldest':
          if (!this.#evictFor(entry)) {
            this.#drop([entry], `${this.#fullMessage()}, and every queued event is in flight`)
            return Promise.resolve({ event_id: entry.id, status: 'dropped' })
          }
          break
        case 'block':
          return new Promise((resolve) => this.#blocked.push({ entry, resolve }))
      }
    }
    return this.#admit(entry)
  }

  /**
   * Sends everything queued so far without waiting for batches to fill, and resolves when each of
   * those events has its fate (sent, rejected or dropped). Retries keep their backoff. With
   * `timeoutMs`, rejects with SPW_ERR_CLIENT_TIMEOUT when events are still undelivered then
   * (they stay queued).
   */
  flush(options: { timeoutMs?: number } = {}): Promise<void> {
    const target = this.#seq
    if (target > this.#flushTarget) this.#flushTarget = target
    this.#pump()
    return this.#waitFor(target, options.timeoutMs, 'flush()')
  }

  /**
   * Stops taking events, delivers every queued one (and every blocked `track()`), then closes the
   * store. With `timeoutMs`, gives up after it: in-flight requests are aborted; without a store the
   * undelivered events are dropped (counted and reported), with one they stay on disk for the next
   * start; either way close() rejects with SPW_ERR_CLIENT_TIMEOUT.
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.#closing !== undefined) return this.#closing
    this.#closed = true
    this.#detachUnload?.()
    this.#flushTarget = Number.POSITIVE_INFINITY
    this.#pump()
    this.#closing = this.#waitFor(Number.POSITIVE_INFINITY, options.timeoutMs, 'close()')
      .catch((error: unknown) => {
        this.#abandon()
        throw error
      })
      .finally(async () => {
        this.#clearTimer()
        await this.#store?.close()
      })
    return this.#closing
  }

  get stats(): ClientStats {
    let inFlight = 0
    for (const batch of this.#inFlight) for (const entry of batch) if (!entry.done) inFlight++
    return { ...this.#stats, queued: this.#events, queuedBytes: this.#bytes, inFlight }
  }

  // Admission and the queue bound

  #hasRoom(entry: Entry): boolean {
    return this.#events + 1 <= this.#o.maxQueueEvents && this.#bytes + entry.bytes <= this.#o.maxQueueBytes
  }

  #fullMessage(): string {
    return `the queue is full (${this.#events} events, ${this.#bytes} bytes; maxQueueEvents ${this.#o.maxQueueEvents}, maxQueueBytes ${this.#o.maxQueueBytes})`
  }

  /** Drops pending events, oldest first, until `entry` fits; false when it cannot fit that way. */
  #evictFor(entry: Entry): boolean {
    let events = this.#events
    let bytes = this.#bytes
    let count = 0
    while (events + 1 > this.#o.maxQueueEvents || bytes + entry.bytes > this.#o.maxQueueBytes) {
      const victim = this.#pending.at(count)
      if (victim === undefined) return false
      events--
      bytes -= victim.bytes
      count++
    }
    const victims = this.#pending.shift(count)
    for (const victim of victims) this.#pendingBytes -= victim.bytes
    this.#drop(victims, this.#fullMessage())
    return true
  }

  #account(entry: Entry): void {
    entry.seq = ++this.#seq
    this.#events++
    this.#bytes += entry.bytes
  }

  #admit(entry: Entry): Promise<TrackResult> {
    this.#account(entry)
    this.#stats.tracked++
    const result: TrackResult = { event_id: entry.id, status: 'queued' }
    if (this.#store === undefined) {
      this.#enqueue(entry)
      return Promise.resolve(result)
    }
    this.#reserving.add(entry)
    return this.#store.append([{ id: entry.id, line: entry.line }]).then(
      () => {
        this.#reserving.delete(entry)
        this.#enqueue(entry)
        return result
      },
      (error: unknown) => {
        this.#reserving.delete(entry)
        this.#stats.tracked--
        this.#release([entry])
        throw clientError(
          'SPW_ERR_CLIENT_STORAGE',
          `the event could not be written to the durable queue: ${(error as Error).message}`,
          { cause: error },
        )
      },
    )
  }

  /** Lets blocked track() calls in, in order, while there is room. */
  #admitBlocked(): void {
    while (this.#blocked.length > 0) {
      const next = this.#blocked[0]
      if (!this.#hasRoom(next.entry) && this.#events > 0) return
      this.#blocked.shift()
      next.resolve(this.#admit(next.entry))
    }
  }

  #enqueue(entry: Entry): void {
    entry.at = Date.now()
    this.#pending.push(entry)
    this.#pendingBytes += entry.bytes
    this.#pump()
  }

  // Sending

  /** Starts every batch that is due, up to `concurrency` in flight. */
  #pump(): void {
    if (this.#giveUp.signal.aborted) return
    while (this.#inFlight.size < this.#o.concurrency && this.#pending.length > 0) {
      const now = Date.now()
      if (now < this.#pauseUntil) {
        this.#wakeAt(this.#pauseUntil)
        return
      }
      const head = this.#pending.at(0)!
      const due = head.at + this.#o.flushIntervalMs
      const ready =
        this.#pending.length >= this.#o.batchEvents ||
        this.#pendingBytes >= this.#o.batchBytes ||
        head.seq <= this.#flushTarget ||
        now >= due
      if (!ready) {
        this.#wakeAt(due)
        return
      }
      this.#run(this.#take(this.#batchSize()), false)
    }
  }

  /** Events in the next batch from the head of the queue: at most batchEvents and batchBytes, at least one. */
  #batchSize(): number {
    const most = Math.min(this.#pending.length, this.#o.batchEvents)
    let count = 0
    let bytes = 0
    while (count < most) {
      const next = this.#pending.at(count)!
      if (count > 0 && bytes + next.bytes > this.#o.batchBytes) break
      bytes += next.bytes
      count++
    }
    return count
  }

  #take(count: number): Entry[] {
    const taken = this.#pending.shift(count)
    for (const entry of taken) this.#pendingBytes -= entry.bytes
    return taken
  }

  #run(batch: Entry[], unloading: boolean): void {
    this.#inFlight.add(batch)
    let bytes = 0
    for (const entry of batch) bytes += entry.bytes
    const keepalive = unloading || (this.#o.keepalive && bytes <= KEEPALIVE_BYTES)
    if (keepalive) this.#keepaliveBytes += bytes
    this.#deliver(batch, keepalive, unloading)
      .catch((error: unknown) => {
        // A bug, not an answer: the events stay unsettled rather than vanish.
        this.#report(clientError('SPW_ERR_CLIENT_STORAGE', `delivery failed: ${(error as Error).message}`))
      })
      .finally(() => {
        if (keepalive) this.#keepaliveBytes -= bytes
        this.#inFlight.delete(batch)
        this.#pump()
        this.#checkWaiters()
      })
  }

  /** One batch until it has an answer: retried with backoff, split on 413. */
  async #deliver(batch: Entry[], keepalive: boolean, unloading: boolean): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (this.#giveUp.signal.aborted) return
      const outcome: SendOutcome = await sendBatch(
        batch.map((e) => e.line),
        {
          endpoint: this.#o.endpoint,
          apiKey: this.#o.apiKey,
          // A page-hide request must leave before the handler returns: no await for gzip first.
          gzipAboveBytes: unloading ? Number.POSITIVE_INFINITY : this.#o.gzipAboveBytes,
          timeoutMs: this.#o.requestTimeoutMs,
          keepalive,
          fetch: this.#o.fetch,
          signal: this.#giveUp.signal,
        },
      )
      if (this.#giveUp.signal.aborted) return
      switch (outcome.kind) {
        case 'delivered':
          if (outcome.rateLimitWaitMs > 0) {
            this.#pauseUntil = Date.now() + Math.min(outcome.rateLimitWaitMs, this.#o.retry.maxServerDelayMs)
          }
          this.#delivered(batch, outcome)
          return
        case 'too-large':
          // The request exceeded the server's batch limits, not any one event: halves will fit.
          if (batch.length > 1) {
            const half = Math.ceil(batch.length / 2)
            await this.#deliver(batch.slice(0, half), keepalive, false)
            await this.#deliver(batch.slice(half), keepalive, false)
          } else {
            this.#refused(batch, outcome.status, outcome.error, [])
          }
          return
        case 'reject':
          this.#refused(batch, outcome.status, outcome.error, outcome.rejected)
          return
        case 'retry': {
          this.#stats.retried++
          const backoff = backoffDelay(attempt, this.#o.retry)
          const server = Math.min(outcome.retryAfterMs ?? 0, this.#o.retry.maxServerDelayMs)
          const delayMs = Math.max(backoff, server)
          this.#notify(this.#onRetry, {
            attempt,
            status: outcome.status,
            error: outcome.error,
            delayMs,
            events: batch.length,
          })
          await this.#sleep(delayMs)
        }
      }
    }
  }

  #delivered(batch: Entry[], outcome: Extract<SendOutcome, { kind: 'delivered' }>): void {
    const failures = this.#failures(batch, outcome.rejected, undefined)
    const refused = new Set(outcome.rejected.map((r) => batch[r.index]).filter((e) => e !== undefined))
    const sent = batch.filter((e) => !refused.has(e))
    this.#stats.sent += sent.length
    this.#stats.duplicates += outcome.duplicates
    this.#release(sent)
    this.#notify(this.#onResult, {
      status: outcome.status,
      events: batch.length,
      accepted: outcome.accepted,
      duplicates: outcome.duplicates,
      rejected: failures,
    })
    if (failures.length > 0) {
      this.#reject(
        [...refused],
        failures,
        outcome.status,
        `the server rejected ${failures.length} of ${batch.length} events; the first: ${failures[0].error}`,
      )
    }
  }

  #refused(
    batch: Entry[],
    status: number,
    error: string,
    rejected: readonly { index: number; error: string }[],
  ): void {
    const failures = this.#failures(batch, rejected, error)
    this.#notify(this.#onResult, {
      status,
      events: batch.length,
      accepted: 0,
      duplicates: 0,
      rejected: failures,
    })
    this.#reject(
      batch,
      failures,
      status,
      `the server refused ${batch.length} events with ${status}: ${error}`,
    )
  }

  /** Per-event reasons; events the server did not name get `fallback` (when given). */
  #failures(
    batch: Entry[],
    rejected: readonly { index: number; error: string }[],
    fallback: string | undefined,
  ): EventFailure[] {
    const reasons = new Map<number, string>()
    for (const r of rejected) if (r.index >= 0 && r.index < batch.length) reasons.set(r.index, r.error)
    const out: EventFailure[] = []
    for (let i = 0; i < batch.length; i++) {
      const error = reasons.get(i) ?? fallback
      if (error !== undefined) out.push({ event_id: batch[i].id, event: JSON.parse(batch[i].line), error })
    }
    return out
  }

  #reject(entries: Entry[], failures: EventFailure[], status: number, message: string): void {
    this.#stats.rejected += entries.length
    this.#release(entries)
    this.#report(clientError('SPW_ERR_CLIENT_REJECTED', message, { status, events: failures }))
  }

  #drop(entries: Entry[], reason: string): void {
    if (entries.length === 0) return
    this.#stats.dropped += entries.length
    this.#release(entries.filter((e) => e.seq !== 0))
    this.#report(
      clientError('SPW_ERR_CLIENT_DROPPED', `${entries.length} events dropped: ${reason}`, {
        events: entries.map((e) => ({ event_id: e.id, event: JSON.parse(e.line), error: reason })),
      }),
    )
  }

  /** Settles entries: off the bound, out of the store; blocked tracks and flush waiters may go on. */
  #release(entries: Entry[]): void {
    const ids: string[] = []
    for (const entry of entries) {
      if (entry.done) continue
      entry.done = true
      this.#events--
      this.#bytes -= entry.bytes
      ids.push(entry.id)
    }
    if (ids.length > 0) this.#store?.remove(ids)
    this.#admitBlocked()
    this.#checkWaiters()
  }

  // Browsers: the page going away

  #attachUnload(): void {
    const g = globalThis as unknown as BrowserGlobals
    const onHide = () => this.#sendOnHide()
    const onVisibility = () => {
      if (g.document.visibilityState === 'hidden') this.#sendOnHide()
    }
    g.addEventListener('pagehide', onHide)
    g.document.addEventListener('visibilitychange', onVisibility)
    this.#detachUnload = () => {
      g.removeEventListener('pagehide', onHide)
      g.document.removeEventListener('visibilitychange', onVisibility)
    }
  }

  /**
   * Sends what is pending while the page can still send: sendBeacon (no API key: it cannot carry
   * an Authorization header) or fetch with keepalive. Browsers allow 64 KiB of such bodies in
   * flight per page, so what does not fit stays queued — sent if the page comes back.
   */
  #sendOnHide(): void {
    if (this.#closed || this.#pending.length === 0) return
    const g = globalThis as unknown as BrowserGlobals
    const sendBeacon = g.navigator?.sendBeacon?.bind(g.navigator)
    const beacon =
      sendBeacon !== undefined &&
      (this.#o.unload === 'beacon' || (this.#o.unload === 'auto' && this.#o.apiKey === undefined))
    // `,"sent_at":NNNNNNNNNN` and the newline: what each line grows by on the wire.
    const perLine = 22
    let budget = KEEPALIVE_BYTES - this.#keepaliveBytes
    while (this.#pending.length > 0) {
      let count = 0
      let bytes = 0
      while (count < Math.min(this.#pending.length, this.#o.batchEvents)) {
        const size = this.#pending.at(count)!.bytes + perLine
        if (bytes + size > budget) break
        bytes += size
        count++
      }
      if (count === 0) return
      if (beacon) {
        const lines: string[] = []
        for (let i = 0; i < count; i++) lines.push(this.#pending.at(i)!.line)
        const body = new Blob([ndjsonBody(lines, Math.round(Date.now() / 1000))], {
          type: 'application/x-ndjson',
        })
        if (!sendBeacon(this.#o.endpoint, body)) return
        const sent = this.#take(count)
        this.#stats.beaconed += sent.length
        this.#release(sent)
      } else {
        this.#run(this.#take(count), true)
      }
      budget -= bytes
    }
  }

  // Waiting

  #minUnsettled(): number {
    let min = this.#pending.at(0)?.seq ?? Number.POSITIVE_INFINITY
    for (const entry of this.#reserving) if (entry.seq < min) min = entry.seq
    for (const batch of this.#inFlight) {
      for (const entry of batch) {
        if (entry.done) continue
        if (entry.seq < min) min = entry.seq
        break
      }
    }
    return min
  }

  #settledUpTo(target: number): boolean {
    const min = this.#minUnsettled()
    if (min !== Number.POSITIVE_INFINITY && min <= target) return false
    return target !== Number.POSITIVE_INFINITY || this.#blocked.length === 0
  }

  #waitFor(target: number, timeoutMs: number | undefined, what: string): Promise<void> {
    if (this.#settledUpTo(target)) return Promise.resolve()
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const waiter: Waiter = {
        target,
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
      }
      this.#waiters.add(waiter)
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.#waiters.delete(waiter)
          reject(
            clientError(
              'SPW_ERR_CLIENT_TIMEOUT',
              `${what} timed out after ${timeoutMs} ms with ${this.#events} events undelivered`,
            ),
          )
        }, timeoutMs)
      }
    })
  }

  #checkWaiters(): void {
    for (const waiter of this.#waiters) {
      if (this.#settledUpTo(waiter.target)) {
        this.#waiters.delete(waiter)
        waiter.resolve()
      }
    }
  }

  /** close() gave up: stop sending; without a store, what is left is dropped and reported. */
  #abandon(): void {
    this.#giveUp.abort(new Error('close() gave up'))
    const reason = 'close() gave up before they were delivered'
    const blocked = this.#blocked.splice(0)
    for (const b of blocked) b.resolve({ event_id: b.entry.id, status: 'dropped' })
    this.#drop(
      blocked.map((b) => b.entry),
      reason,
    )
    const left: Entry[] = this.#take(this.#pending.length)
    for (const batch of this.#inFlight) for (const entry of batch) if (!entry.done) left.push(entry)
    if (this.#store === undefined) {
      this.#drop(left, reason)
      return
    }
    // Still on disk, so the next start sends them: off the books here, but not out of the store.
    for (const entry of left) {
      if (entry.done) continue
      entry.done = true
      this.#events--
      this.#bytes -= entry.bytes
    }
  }

  #sleep(ms: number): Promise<void> {
    const signal = this.#giveUp.signal
    return new Promise((resolve) => {
      if (signal.aborted) return resolve()
      const done = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal.addEventListener('abort', done, { once: true })
    })
  }

  #wakeAt(at: number): void {
    if (this.#timer !== undefined && this.#timerAt <= at) return
    this.#clearTimer()
    this.#timerAt = at
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined
        this.#pump()
      },
      Math.max(0, at - Date.now()),
    )
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #report(error: SpillwayClientError): void {
    this.#notify(this.#onError, error)
  }

  /** Callbacks are the caller's code: what they throw must not break delivery. */
  #notify<T>(callback: ((value: T) => void) | undefined, value: T): void {
    if (callback === undefined) return
    try {
      callback(value)
    } catch {}
  }
}

interface BrowserGlobals {
  addEventListener(type: string, listener: () => void): void
  removeEventListener(type: string, listener: () => void): void
  document: {
    visibilityState: string
    addEventListener(type: string, listener: () => void): void
    removeEventListener(type: string, listener: () => void): void
  }
  navigator: { sendBeacon?(url: string, body: Blob): boolean }
}

/** A FIFO with O(1) shift: an array and a head index, compacted when half of it is spent. */
class Deque<T> {
  #items: T[] = []
  #head = 0

  get length(): number {
    return this.#items.length - this.#head
  }

  at(index: number): T | undefined {
    return index < this.length ? this.#items[this.#head + index] : undefined
  }

  push(item: T): void {
    this.#items.push(item)
  }

  shift(count: number): T[] {
    const out = this.#items.slice(this.#head, this.#head + count)
    this.#head += out.length
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return out
  }
}

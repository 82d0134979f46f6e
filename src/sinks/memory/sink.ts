/**
 * The in-memory sink: the test double of the sink contract (as undici's MockAgent is for
 * dispatchers). It keeps every event it accepted, in order and including redeliveries, so a test
 * can assert "exactly once"; it can keep its cursor in the same "transaction" as the data (the
 * `loadCursor` path of a real transactional store); and it can be scripted — fail the next N
 * writes with a verdict, throw, stall, or refuse any batch holding a poison event — so delivery
 * tests drive retries and permanent failures without a real store.
 *
 * `spillway serve --sinks memory` uses it too: a store that forgets everything on restart, for
 * trying the server out. It never stands in for a real service in integration tests.
 */
import type { NormalizedEvent } from '../../intake/types.ts'
import { delivered, type Sink, type SinkBatch, type Verdict } from '../sink.ts'

export interface MemorySinkOptions {
  readonly name?: string
  /** Commit the cursor with the data and expose `loadCursor` (like DuckDB); default false. */
  readonly transactional?: boolean
  /** Added to every write, to look like a real store. */
  readonly latencyMs?: number
}

/** One scripted behaviour, consumed by one `write` call. */
export type MemorySinkStep =
  | { readonly kind: 'verdict'; readonly verdict: Verdict }
  | { readonly kind: 'throw'; readonly error: Error }
  /** Stall this long, then behave normally. */
  | { readonly kind: 'delay'; readonly ms: number }
  /** Stall until the returned release function is called, then behave normally. */
  | { readonly kind: 'hold'; readonly until: Promise<void> }

export interface MemorySinkWrite {
  readonly batch: SinkBatch
  /** What the call answered, or `thrown` when it threw. */
  readonly verdict: Verdict | { readonly kind: 'thrown'; readonly error: Error }
  readonly at: number
}

type Poison = (event: NormalizedEvent) => boolean

export class MemorySink implements Sink {
  readonly name: string
  /** Present only for a transactional sink (see MemorySinkOptions.transactional). */
  readonly loadCursor?: () => Promise<number | null>
  /** Every event accepted, in delivery order, redeliveries included. */
  readonly events: NormalizedEvent[] = []
  /** Every write call and its answer, failed ones included. */
  readonly writes: MemorySinkWrite[] = []
  /** The committed cursor of a transactional sink (the `to` of its last delivered batch). */
  cursor: number | null = null
  opened = false
  openCount = 0
  closeCount = 0

  readonly #latencyMs: number
  readonly #script: MemorySinkStep[] = []
  readonly #poison: { test: Poison; reason: string }[] = []
  #openError: Error | null = null
  #pingError: Error | null = null
  #waiters: { count: number; resolve: () => void }[] = []
  #inFlight = 0

  constructor(options: MemorySinkOptions = {}) {
    this.name = options.name ?? 'memory'
    this.#latencyMs = options.latencyMs ?? 0
    if (options.transactional) this.loadCursor = async () => this.cursor
  }

  async open(): Promise<void> {
    if (this.#openError) throw this.#openError
    this.opened = true
    this.openCount++
  }

  async write(batch: SinkBatch): Promise<Verdict> {
    if (!this.opened) throw new Error(`memory sink ${this.name} written while closed`)
    this.#inFlight++
    try {
      const verdict = await this.#answer(batch)
      this.writes.push({ batch, verdict, at: Date.now() })
      if (verdict.kind === 'delivered') {
        this.events.push(...batch.events)
        if (this.loadCursor) this.cursor = batch.to
        this.#wake()
      }
      return verdict
    } catch (error) {
      this.writes.push({ batch, verdict: { kind: 'thrown', error: error as Error }, at: Date.now() })
      throw error
    } finally {
      this.#inFlight--
    }
  }

  async ping(): Promise<void> {
    if (this.#pingError) throw this.#pingError
    if (!this.opened) throw new Error(`memory sink ${this.name} is not open`)
  }

  async close(): Promise<void> {
    this.opened = false
    this.closeCount++
  }

  // --- scripting -------------------------------------------------------------------------------

  /** The next `times` writes answer `verdict` (queued after anything already scripted). */
  failNext(verdict: Verdict, times = 1): this {
    for (let i = 0; i < times; i++) this.#script.push({ kind: 'verdict', verdict })
    return this
  }

  /** The next `times` writes throw `error` (a broken sink, not a verdict). */
  throwNext(error: Error, times = 1): this {
    for (let i = 0; i < times; i++) this.#script.push({ kind: 'throw', error })
    return this
  }

  /** The next `times` writes stall `ms` first. */
  delayNext(ms: number, times = 1): this {
    for (let i = 0; i < times; i++) this.#script.push({ kind: 'delay', ms })
    return this
  }

  /** The next write stalls until the returned function is called. */
  holdNext(): () => void {
    let release!: () => void
    const until = new Promise<void>((resolve) => {
      release = resolve
    })
    this.#script.push({ kind: 'hold', until })
    return release
  }

  /** Any batch holding an event that matches is refused with a permanent verdict (a poison event). */
  rejectEvents(test: Poison, reason = 'event refused by the memory sink'): this {
    this.#poison.push({ test, reason })
    return this
  }

  /** `open` rejects with this error (null: opens again). */
  failOpen(error: Error | null): this {
    this.#openError = error
    return this
  }

  /** `ping` rejects with this error (null: answers again). */
  failPing(error: Error | null): this {
    this.#pingError = error
    return this
  }

  /** Scripted steps not consumed yet. */
  get pending(): number {
    return this.#script.length
  }

  /** Writes running right now. */
  get inFlight(): number {
    return this.#inFlight
  }

  /** Resolves once at least `count` events were accepted; rejects after `timeoutMs`. */
  waitForEvents(count: number, timeoutMs = 5000): Promise<void> {
    if (this.events.length >= count) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter)
        reject(
          new Error(
            `memory sink ${this.name}: ${this.events.length} of ${count} events after ${timeoutMs} ms`,
          ),
        )
      }, timeoutMs)
      const waiter = {
        count,
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
      }
      this.#waiters.push(waiter)
    })
  }

  async #answer(batch: SinkBatch): Promise<Verdict> {
    if (this.#latencyMs > 0) await delay(this.#latencyMs)
    const step = this.#script.shift()
    if (step?.kind === 'verdict') return step.verdict
    if (step?.kind === 'throw') throw step.error
    if (step?.kind === 'delay') await delay(step.ms)
    if (step?.kind === 'hold') await step.until
    for (const poison of this.#poison) {
      const bad = batch.events.find(poison.test)
      if (bad) return { kind: 'permanent', error: new Error(`${poison.reason} (event_id ${bad.event_id})`) }
    }
    return delivered
  }

  #wake(): void {
    const ready = this.#waiters.filter((w) => this.events.length >= w.count)
    this.#waiters = this.#waiters.filter((w) => this.events.length < w.count)
    for (const w of ready) w.resolve()
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

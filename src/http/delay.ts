/**
 * The `delay` bound of admission (admission.ts): how long work waits in this process, and what
 * share of new requests to refuse because of it.
 *
 * Signal: a timer due every `sampleMs` measures how late it fires. Node runs timers once per turn
 * of the event loop, so the lateness is the length of the turn: the time a request that became
 * readable at its start waited before JavaScript saw it. When the server is short of CPU, turns
 * grow with the number of requests waiting in the kernel.
 *
 * Rule (after CoDel): every `intervalMs` the SMALLEST lateness of the interval is compared with
 * the target. A burst makes a few long turns and then drains, and its smallest lateness stays
 * low; only a standing queue keeps every turn long. As CoDel does not drop from a queue of less
 * than one packet, an interval with fewer than `minRequests` requests never raises the share: a
 * long turn then is start-up, a GC or a neighbour's CPU, not requests to shed. While the minimum
 * is above target (with requests arriving), the share
 * refused rises by `step` × (minimum / target), capped at `maxShare`; when it is below, the share
 * halves, and under 1 % it is 0 — so a spike's shedding ends within a few intervals of the spike.
 * Refused requests cost a 503 written before their body is read, far less than an accepted one,
 * which is what turns the surplus into goodput for the rest.
 */
import type { DelaySignal } from './admission.ts'

export interface DelayOptions {
  /** The lateness above which, for a whole interval, requests start being refused. */
  readonly targetMs: number
  readonly intervalMs?: number
  readonly sampleMs?: number
  /** The most that is ever refused, so some requests always probe the server. */
  readonly maxShare?: number
  readonly step?: number
  /** Requests an interval must see before its delay may raise the share (default 100). */
  readonly minRequests?: number
  readonly random?: () => number
}

export class DelayController implements DelaySignal {
  readonly targetMs: number
  readonly #intervalMs: number
  readonly #sampleMs: number
  readonly #maxShare: number
  readonly #step: number
  readonly #minRequests: number
  readonly #random: () => number
  #share = 0
  #requests = 0
  #min = Number.POSITIVE_INFINITY
  #lastMin = 0
  #expected = 0
  #intervalStart = 0
  #timer: NodeJS.Timeout | undefined

  constructor(options: DelayOptions) {
    if (!(options.targetMs > 0)) throw new RangeError(`targetMs must be > 0, got ${options.targetMs}`)
    this.targetMs = options.targetMs
    this.#intervalMs = options.intervalMs ?? 100
    this.#sampleMs = options.sampleMs ?? 5
    this.#maxShare = options.maxShare ?? 0.95
    this.#step = options.step ?? 0.05
    this.#minRequests = options.minRequests ?? 100
    this.#random = options.random ?? Math.random
  }

  /** Starts sampling (an unref'd timer: it never keeps the process alive). */
  start(): this {
    const now = performance.now()
    this.#expected = now + this.#sampleMs
    this.#intervalStart = now
    this.#timer = setInterval(() => this.sample(performance.now()), this.#sampleMs)
    this.#timer.unref()
    return this
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** The share of requests refused now (0…maxShare). */
  get share(): number {
    return this.#share
  }

  refuse(): boolean {
    this.#requests++
    return this.#share > 0 && this.#random() < this.#share
  }

  delayMs(): number {
    return this.#lastMin
  }

  /** One timer firing at `now` (tests call it with their own clock). */
  sample(now: number): void {
    const late = Math.max(0, now - this.#expected)
    this.#expected = now + this.#sampleMs
    if (late < this.#min) this.#min = late
    if (now - this.#intervalStart >= this.#intervalMs) this.#decide(now)
  }

  #decide(now: number): void {
    const min = this.#min === Number.POSITIVE_INFINITY ? 0 : this.#min
    this.#lastMin = min
    this.#min = Number.POSITIVE_INFINITY
    this.#intervalStart = now
    const busy = this.#requests >= this.#minRequests
    this.#requests = 0
    if (min > this.targetMs && busy) {
      this.#share = Math.min(this.#maxShare, this.#share + this.#step * Math.min(4, min / this.targetMs))
    } else {
      this.#share = this.#share < 0.02 ? 0 : this.#share / 2
    }
  }
}

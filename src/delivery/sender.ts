/**
 * The part of delivery that talks to the sink: each attempt bounded by a timeout, retries paced by
 * the backoff, and the breaker in front of both. It returns only an answer — `delivered` or
 * `permanent` — and never moves a cursor; docs/ARCHITECTURE.md "Delivery" says why each rule holds.
 *
 * A write that has not answered after `timeoutMs` counts as `retry` (for the backoff, the retry
 * counter and the breaker alike) but is not abandoned, and no second write starts beside it: a sink
 * never sees two calls from one loop at once, and a late answer cannot race a newer write. The next
 * attempt of the same piece waits for the outstanding call and takes its answer as its own; a call
 * carrying another piece is waited for before the next write starts.
 *
 * The breaker paces an outage, the backoff the first few failures: while the breaker is open the
 * wait is its rest of the period (or a longer `afterMs` the sink asked for).
 */
import { spillwayError } from '../errors.ts'
import type { Backoff } from '../shared/backoff.ts'
import { sleep, withTimeout } from '../shared/timeout.ts'
import type { Sink, SinkBatch, Verdict } from '../sinks/sink.ts'
import type { Logger } from '../telemetry/logger.ts'
import { RecordPiece } from './batcher.ts'
import type { Breaker } from './breaker.ts'
import type { DeliveryCounters } from './counters.ts'

export type Answer = Exclude<Verdict, { kind: 'retry' }>

export interface SenderOptions {
  readonly sink: Sink
  readonly timeoutMs: number
  readonly backoff: Backoff
  readonly breaker: Breaker
  readonly counters: DeliveryCounters
  readonly logger: Logger
  /** Aborted by stop without drain: waits end and send() throws the signal's reason. */
  readonly signal: AbortSignal
}

/** A sink call and the piece it carries; it stays outstanding past its timeout until it settles. */
interface SinkCall {
  readonly piece: SinkBatch
  /** Never rejects: a throw is already a `retry` verdict. */
  readonly answer: Promise<Verdict>
}

const TIMED_OUT = Symbol('timed out')
const timedOut = (): typeof TIMED_OUT => TIMED_OUT

export class Sender {
  readonly #sink: Sink
  readonly #timeoutMs: number
  readonly #backoff: Backoff
  readonly #breaker: Breaker
  readonly #counters: DeliveryCounters
  readonly #logger: Logger
  readonly #signal: AbortSignal
  /** The sink call that timed out and has not settled yet. */
  #outstanding: SinkCall | undefined
  #retrying = false

  constructor(options: SenderOptions) {
    this.#sink = options.sink
    this.#timeoutMs = Math.max(1, options.timeoutMs)
    this.#backoff = options.backoff
    this.#breaker = options.breaker
    this.#counters = options.counters
    this.#logger = options.logger
    this.#signal = options.signal
  }

  /** The last attempt failed and no answer has come since (the loop's `retrying` phase). */
  get retrying(): boolean {
    return this.#retrying
  }

  /** Writes until the sink answers delivered or permanent; retries wait, gated by the breaker. */
  async send(piece: SinkBatch): Promise<Answer> {
    for (;;) {
      this.#signal.throwIfAborted()
      const closedFor = this.#breaker.waitMs()
      if (closedFor > 0) {
        await sleep(closedFor, this.#signal)
        continue
      }
      let verdict = await this.attempt(piece)
      // A record that does not decode cannot get better by waiting: isolate it instead.
      if (verdict.kind === 'retry' && piece instanceof RecordPiece && piece.decodeError) {
        verdict = { kind: 'permanent', error: piece.decodeError }
      }
      if (verdict.kind !== 'retry') {
        this.#backoff.reset()
        if (this.#breaker.success() === 'closed') {
          this.#logger.info({ sink: this.#sink.name, opens: this.#breaker.opens }, 'SinkBreakerClosed')
        }
        this.#retrying = false
        return verdict
      }
      this.#counters.retries++
      this.#counters.fail(verdict.error)
      this.#retrying = true
      await sleep(this.#failed(piece, verdict), this.#signal)
    }
  }

  /**
   * One attempt: the answer of a new sink call, or of the outstanding one when it carries this
   * piece; a `retry` when no answer came within the timeout. Never two calls at once.
   */
  async attempt(piece: SinkBatch): Promise<Verdict> {
    const earlier = this.#outstanding
    if (earlier && earlier.piece !== piece) {
      if ((await withTimeout(earlier.answer, this.#timeoutMs, timedOut)) === TIMED_OUT)
        return this.#timedOut()
      this.#outstanding = undefined
    }
    let call = this.#outstanding
    if (!call) {
      call = { piece, answer: this.#call(piece) }
      this.#outstanding = call
    }
    const answer = await withTimeout(call.answer, this.#timeoutMs, timedOut)
    if (answer === TIMED_OUT) return this.#timedOut()
    this.#outstanding = undefined
    return answer
  }

  /** On stop: give an outstanding call one more timeout to settle, then leave it. */
  async settle(): Promise<void> {
    const call = this.#outstanding
    if (!call) return
    if ((await withTimeout(call.answer, this.#timeoutMs, timedOut)) === TIMED_OUT) {
      this.#logger.warn(
        { sink: this.#sink.name, from: call.piece.from, to: call.piece.to, timeoutMs: this.#timeoutMs },
        'SinkWriteAbandoned',
      )
    }
    this.#outstanding = undefined
  }

  /** Reports a failed attempt to the breaker and logs it; returns the wait before the next one. */
  #failed(piece: SinkBatch, verdict: Extract<Verdict, { kind: 'retry' }>): number {
    if (this.#breaker.failure() === 'opened') {
      this.#logger.error(
        {
          sink: this.#sink.name,
          failures: this.#breaker.failures,
          openMs: this.#breaker.periodMs,
          opens: this.#breaker.opens,
          err: verdict.error,
        },
        'SinkBreakerOpened',
      )
    }
    const openFor = this.#breaker.waitMs()
    const waitMs = openFor > 0 ? Math.max(openFor, verdict.afterMs ?? 0) : this.#backoff.next(verdict.afterMs)
    this.#logger.warn(
      {
        sink: this.#sink.name,
        rows: piece instanceof RecordPiece ? piece.rows : piece.events.length,
        attempt: this.#breaker.failures,
        breaker: this.#breaker.state,
        waitMs,
        err: verdict.error,
      },
      'SinkBatchRetried',
    )
    return waitMs
  }

  /** sink.write with a throw (even a synchronous one) turned into a retry verdict. */
  async #call(piece: SinkBatch): Promise<Verdict> {
    try {
      return await this.#sink.write(piece)
    } catch (error) {
      return { kind: 'retry', error: error instanceof Error ? error : new Error(String(error)) }
    }
  }

  #timedOut(): Verdict {
    this.#counters.timeouts++
    return {
      kind: 'retry',
      error: spillwayError(
        'SPW_ERR_SINK_UNAVAILABLE',
        `sink ${this.#sink.name} did not answer within ${this.#timeoutMs} ms`,
      ),
    }
  }
}

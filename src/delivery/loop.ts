/**
 * One sink's delivery: a chain of small parts, run for one batch at a time —
 * batcher.ts (read, batch) → dedup check → sender.ts (timeout, retry with backoff, breaker) →
 * isolator.ts (poison isolation by halving) → committer.ts (cursor). This file starts and stops
 * the chain, reads the next batch ahead while one is written (with an L2 dedup layer), and answers
 * `stats()`. The rules and why they hold: docs/ARCHITECTURE.md "Delivery".
 */

import type { DeliveryCheck } from '../dedup/delivery-check.ts'
import type { L2State } from '../dedup/redis.ts'
import { decodeEvents } from '../intake/serialize.ts'
import type { NormalizedEvent } from '../intake/types.ts'
import { Backoff, type BackoffOptions } from '../shared/backoff.ts'
import type { DeadLetterEntry } from '../shared/dead-letter.ts'
import { sleep } from '../shared/timeout.ts'
import type { Sink, SinkBatch } from '../sinks/sink.ts'
import type { HistogramSnapshot } from '../telemetry/histogram.ts'
import type { Logger } from '../telemetry/logger.ts'
import { WalReader } from '../wal/reader.ts'
import type { WalSharedState } from '../wal/shared-state.ts'
import {
  type Batch,
  Batcher,
  RecordPiece,
  type RecordRef,
  type RecordSource,
  recordPieces,
} from './batcher.ts'
import { Breaker, type BreakerOptions, type BreakerState } from './breaker.ts'
import { CursorCommitter } from './committer.ts'
import { DeliveryCounters } from './counters.ts'
import type { CursorFile } from './cursor-file.ts'
import { PoisonIsolator } from './isolator.ts'
import { Sender } from './sender.ts'

export type { RecordSource } from './batcher.ts'

export interface DeliveryLoopOptions {
  readonly sink: Sink
  /** Index of the sink in the configured list: its cursor slot in the shared state. */
  readonly slot: number
  readonly state: WalSharedState
  /** WAL directory, read with WalReader; or give `openReader`. */
  readonly walDir?: string
  /** Opens a reader positioned at `from` (tests use an in-memory log). */
  readonly openReader?: (from: number) => RecordSource
  /** Where the cursor lives when the sink has no `loadCursor`. */
  readonly cursorFile?: CursorFile
  readonly deadLetter: { append(entries: readonly DeadLetterEntry[]): Promise<void> }
  readonly batchRows: number
  readonly batchBytes: number
  readonly lingerMs: number
  readonly maxRecordBytes: number
  readonly logger: Logger
  readonly backoff?: BackoffOptions
  /** A sink write not answered after this long counts as `retry` (sender.ts); default 30 s. */
  readonly timeoutMs?: number
  readonly breaker?: BreakerOptions
  /** Payload → events; default: the intake's NDJSON decoder. */
  readonly decode?: (payload: Buffer) => NormalizedEvent[]
  /** The delivery-time dedup check of this sink (src/dedup/delivery-check.ts); none: every event goes. */
  readonly dedup?: DeliveryCheck
}

export type DeliveryPhase = 'new' | 'running' | 'retrying' | 'draining' | 'stopped'

export interface DeliveryStats {
  readonly sink: string
  readonly slot: number
  readonly phase: DeliveryPhase
  readonly cursor: number
  readonly durableHead: number
  /** WAL bytes durable but not yet delivered to this sink. */
  readonly backlogBytes: number
  readonly deliveredRows: number
  readonly deliveredBatches: number
  /** Attempts that ended in retry: a retry verdict, a throw, or a timeout. */
  readonly retries: number
  /** Of those, attempts the sink did not answer within the timeout. */
  readonly timeouts: number
  /** The sink's circuit breaker (see breaker.ts). */
  readonly breaker: BreakerState
  /** Times the breaker opened since the loop started. */
  readonly breakerOpens: number
  /** Pieces the sink refused with a permanent verdict (before isolation). */
  readonly refusedBatches: number
  readonly deadLettered: number
  readonly lastError: string | null
  readonly lastErrorAt: number | null
  readonly lastDeliveredAt: number | null
  readonly batchRows: HistogramSnapshot
  readonly batchLatencyMs: HistogramSnapshot
  /** Events the delivery-time dedup check cut out, by layer (0 without a check). */
  readonly duplicatesDelivery: number
  readonly duplicatesL2: number
  /** Keys in this sink's delivery-time dedup cache. */
  readonly dedupCacheKeys: number
  /** The shared L2 layer's state, null when no Redis is configured. */
  readonly dedupL2: L2State | null
}

export const DEFAULT_DELIVERY_TIMEOUT_MS = 30_000

export class DeliveryLoop {
  readonly #sink: Sink
  readonly #slot: number
  readonly #state: WalSharedState
  readonly #logger: Logger
  readonly #decode: (payload: Buffer) => NormalizedEvent[]
  readonly #dedup: DeliveryCheck | undefined
  readonly #abort = new AbortController()
  readonly #counters = new DeliveryCounters()
  readonly #backoff: Backoff
  readonly #breaker: Breaker
  readonly #batcher: Batcher
  readonly #sender: Sender
  readonly #isolator: PoisonIsolator
  readonly #committer: CursorCommitter

  /** Only 'new' and 'stopped' are kept here; the phases between are read off the parts. */
  #phase: 'new' | 'started' | 'stopped' = 'new'
  #done: Promise<void> = Promise.resolve()

  constructor(options: DeliveryLoopOptions) {
    const sink = options.sink
    const signal = this.#abort.signal
    this.#sink = sink
    this.#slot = options.slot
    this.#state = options.state
    this.#logger = options.logger
    this.#decode = options.decode ?? decodeEvents
    this.#dedup = options.dedup
    this.#backoff = new Backoff(options.backoff)
    this.#breaker = new Breaker(options.breaker)
    this.#sender = new Sender({
      sink,
      timeoutMs: options.timeoutMs ?? DEFAULT_DELIVERY_TIMEOUT_MS,
      backoff: this.#backoff,
      breaker: this.#breaker,
      counters: this.#counters,
      logger: options.logger,
      signal,
    })
    this.#committer = new CursorCommitter({
      sink,
      slot: options.slot,
      state: options.state,
      cursorFile: options.cursorFile,
      sender: this.#sender,
      logger: options.logger,
    })
    this.#isolator = new PoisonIsolator({
      sinkName: sink.name,
      sender: this.#sender,
      committer: this.#committer,
      counters: this.#counters,
      deadLetter: options.deadLetter,
      decode: this.#decode,
      dedup: options.dedup,
      logger: options.logger,
      delivered: (piece, rows, started) => this.#delivered(piece, rows, started),
    })
    this.#batcher = new Batcher({
      state: options.state,
      openReader: this.#readerOpener(options),
      batchRows: options.batchRows,
      batchBytes: options.batchBytes,
      lingerMs: options.lingerMs,
      signal,
      logger: options.logger,
      sinkName: sink.name,
      startAt: (from) => this.#startAt(from),
    })
  }

  get sink(): Sink {
    return this.#sink
  }

  /** The position up to which every event is delivered or dead-lettered. */
  get cursor(): number {
    return this.#committer.position
  }

  /** Loads and publishes the start cursor, then runs in the background until `stop`. The sink must be open. */
  async start(): Promise<void> {
    if (this.#phase !== 'new') throw new Error(`delivery to ${this.#sink.name} was already started`)
    this.#phase = 'started'
    let saved: boolean
    try {
      saved = await this.#committer.load()
    } catch (error) {
      this.#phase = 'stopped'
      throw error
    }
    this.#logger.info(
      {
        sink: this.#sink.name,
        slot: this.#slot,
        cursor: this.#committer.position,
        source: this.#sink.loadCursor ? 'sink' : 'file',
        fresh: !saved,
      },
      'DeliveryStarted',
    )
    this.#done = this.#run()
  }

  /**
   * drain: deliver everything up to the durable head as of now, then stop. Without drain: stop
   * at once — a running sink write is awaited (at most its timeout, then once more `timeoutMs`
   * if it was already late), a retry or breaker wait is cut short, nothing advances past what
   * was delivered. Resolves when the loop stopped (the sink stays open: its owner closes it).
   */
  stop(options: { drain: boolean }): Promise<void> {
    if (this.#phase === 'new') {
      this.#phase = 'stopped'
      return Promise.resolve()
    }
    if (options.drain && !this.#abort.signal.aborted) this.#batcher.drain(this.#state.durableHead)
    else this.#abort.abort()
    this.#batcher.wake()
    return this.#done
  }

  /** Resolves when the loop has ended. */
  get done(): Promise<void> {
    return this.#done
  }

  get phase(): DeliveryPhase {
    if (this.#phase !== 'started') return this.#phase
    if (this.#sender.retrying) return 'retrying'
    return this.#batcher.drainTarget === null ? 'running' : 'draining'
  }

  stats(): DeliveryStats {
    const c = this.#counters
    return {
      sink: this.#sink.name,
      slot: this.#slot,
      phase: this.phase,
      cursor: this.#committer.position,
      durableHead: this.#state.durableHead,
      backlogBytes: this.#state.backlogBytes(this.#slot),
      deliveredRows: c.deliveredRows,
      deliveredBatches: c.deliveredBatches,
      retries: c.retries,
      timeouts: c.timeouts,
      breaker: this.#breaker.state,
      breakerOpens: this.#breaker.opens,
      refusedBatches: c.refusedBatches,
      deadLettered: c.deadLettered,
      lastError: c.lastError,
      lastErrorAt: c.lastErrorAt,
      lastDeliveredAt: c.lastDeliveredAt,
      batchRows: c.rows.snapshot(),
      batchLatencyMs: c.latencyMs.snapshot(),
      duplicatesDelivery: this.#dedup?.counts.delivery ?? 0,
      duplicatesL2: this.#dedup?.counts.l2 ?? 0,
      dedupL2: this.#dedup?.l2 ?? null,
      dedupCacheKeys: this.#dedup?.cacheSize ?? 0,
    }
  }

  // --- the loop ---------------------------------------------------------------------------------

  async #run(): Promise<void> {
    const signal = this.#abort.signal
    /** The next batch, read (and its L2 claims made) while the current one is written. */
    let ahead: Promise<Batch | null> | undefined
    try {
      for (;;) {
        if (signal.aborted) break
        const drainTarget = this.#batcher.drainTarget
        if (drainTarget !== null && this.#committer.position >= drainTarget) break
        try {
          let batch = await (ahead ?? this.#batcher.collect(this.#committer.position))
          ahead = undefined
          // A batch read ahead of a delivery that did not reach its end is read again.
          if (batch && batch.from !== this.#committer.position) {
            batch = await this.#batcher.collect(this.#committer.position)
          }
          if (batch) {
            if (this.#dedup?.readsAhead && this.#batcher.drainTarget === null)
              ahead = this.#readAhead(batch.to)
            await this.#deliver(batch)
          }
        } catch (error) {
          await settled(ahead)
          ahead = undefined
          if (signal.aborted) break
          // Reader I/O, cursor file or dead-letter store failure: nothing advanced past the
          // failure, so start over from the cursor after a pause.
          this.#counters.fail(error as Error)
          this.#logger.error(
            { sink: this.#sink.name, err: error, cursor: this.#committer.position },
            'DeliveryLoopFailed',
          )
          await this.#batcher.close()
          await sleep(this.#backoff.next(), signal)
        }
      }
    } finally {
      await settled(ahead)
      await this.#sender.settle()
      await this.#batcher.close()
      this.#phase = 'stopped'
      this.#logger.info({ sink: this.#sink.name, cursor: this.#committer.position }, 'DeliveryStopped')
    }
  }

  /**
   * Read-ahead (only with an L2 dedup layer, whose claim is a network round trip): the batch after
   * `from` is read and its claims are made while the batch before it is being written.
   */
  async #readAhead(from: number): Promise<Batch | null> {
    const batch = await this.#batcher.collect(from)
    if (batch && this.#dedup) batch.prepared = this.#dedup.prepare(batch.records)
    return batch
  }

  /** Checks the batch for duplicates once, then sends it in pieces of whole records. */
  async #deliver(batch: Batch): Promise<void> {
    const records = batch.records
    if (this.#dedup) {
      // A retried piece is not checked again: its own claims must not count against it.
      const found = batch.prepared
        ? this.#dedup.apply(records, await batch.prepared)
        : await this.#dedup.check(records)
      if (found.delivery + found.l2 > 0) {
        this.#logger.debug(
          { sink: this.#sink.name, from: batch.from, to: batch.to, ...found },
          'DeliveryDuplicatesSkipped',
        )
      }
    }
    for (const piece of recordPieces(records, this.#batcher.batchRows)) await this.#deliverRecords(piece)
    await this.#committer.commitEnd(batch.to)
    await this.#committer.advance(batch.to)
  }

  async #deliverRecords(records: readonly RecordRef[]): Promise<void> {
    const piece = new RecordPiece(records, this.#sink.acceptsNdjson === true, this.#decode)
    if (piece.rows === 0) return
    if (!piece.ndjson) {
      // The sink reads events: decode here, so a record that does not decode is caught now.
      try {
        void piece.events
      } catch {
        await this.#isolator.isolate(records)
        return
      }
    }
    const started = performance.now()
    const verdict = await this.#sender.send(piece)
    if (verdict.kind === 'delivered') {
      this.#delivered(piece, piece.rows, started)
      if (this.#dedup) for (const record of records) if (record.keys) this.#dedup.delivered(record.keys)
      await this.#committer.advance(piece.to)
      return
    }
    // Refused as a whole: decode it record by record and find the refused events by halving.
    this.#counters.refusedBatches++
    this.#counters.fail(verdict.error)
    this.#logger.warn({ sink: this.#sink.name, rows: piece.rows, err: verdict.error }, 'SinkBatchRefused')
    await this.#isolator.isolate(records)
  }

  #delivered(piece: SinkBatch, rows: number, started: number): void {
    this.#counters.delivered(rows, started)
    this.#committer.confirmed(piece.to)
    this.#logger.debug({ sink: this.#sink.name, rows, from: piece.from, to: piece.to }, 'SinkBatchDelivered')
  }

  /** Where a reader for `from` starts: at the cursor, never below the oldest record still on disk. */
  async #startAt(from: number): Promise<number> {
    const cursor = this.#committer.position
    const oldest = this.#state.oldest
    if (from !== cursor || oldest <= cursor) return from
    const fresh = this.#committer.fresh && this.#counters.deliveredBatches === 0
    this.#logger[fresh ? 'info' : 'error'](
      { sink: this.#sink.name, cursor, oldest },
      fresh ? 'DeliveryCursorStartedAtOldest' : 'DeliveryEventsSkipped',
    )
    await this.#committer.advance(oldest)
    return this.#committer.position
  }

  #readerOpener(options: DeliveryLoopOptions): (from: number) => RecordSource {
    if (options.openReader) return options.openReader
    if (!options.walDir) throw new TypeError('DeliveryLoop needs walDir or openReader')
    const dir = options.walDir
    const { maxRecordBytes, state } = options
    const logger = options.logger.child({ sink: options.sink.name })
    return (from) =>
      new WalReader(dir, state, {
        from,
        maxRecordBytes,
        logger,
        onCorruption: (info) =>
          this.#counters.fail(
            new Error(`WAL corruption in ${info.segment} at ${info.position}: ${info.reason}`),
          ),
      })
  }
}

/** Waits for a read-ahead to end, whatever its outcome (it is being discarded). */
async function settled(ahead: Promise<unknown> | undefined): Promise<void> {
  await ahead?.catch(() => {})
}

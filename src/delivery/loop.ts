/**
 * One sink's delivery loop: read the WAL from the sink's cursor, cut batches, hand them to the
 * sink, and move the cursor only over events that were delivered or dead-lettered.
 *
 * Batching. A batch closes at `batchRows` events, `batchBytes` WAL bytes, or `lingerMs` after its
 * first record — whichever comes first. The linger is only spent when the log has nothing more to
 * give: under load, records are already durable when the loop asks, so batches fill at once.
 * WAL records are indivisible (a batch request is one record, a cursor is a record boundary), so
 * the sink gets pieces of whole records of at most `batchRows` events — one record bigger than
 * that goes alone — and each piece carries the records' NDJSON as it is for sinks that load it
 * natively; events are decoded in JavaScript only for sinks that read them.
 *
 * Dedup. With a delivery-time check (src/dedup/delivery-check.ts), every collected batch is checked
 * once, before it is cut into pieces: duplicates are cut out of the records' NDJSON (a record left
 * empty is only passed over by the cursor), and the keys of a piece are marked stored when the
 * sink confirms it. A retried piece is not checked again: its own claims must not count against it.
 * With an L2 layer (Redis) the check's round trip is hidden: while batch N is written, batch N+1
 * is read and its keys claimed (`prepare`); the cache half (`apply`) runs once N is stored. A batch
 * read ahead of a delivery that failed is dropped and read again from the cursor.
 *
 * Verdicts. `delivered` → the cursor moves. `retry` (or a throw: a sink bug must not lose data)
 * → the same piece again after a capped, jittered backoff that honours the sink's `afterMs`;
 * the cursor never moves meanwhile, the backlog grows, and admission turns that into 503s.
 * `permanent` → the piece is split in halves, recursively, until each refused event stands
 * alone; lone refused events go to the dead-letter store (fsync'd) with the sink's reason, and
 * every other event is delivered.
 *
 * Cursors and pieces. A record-aligned piece commits its last record's end. Only when a piece is
 * refused permanently is it decoded and cut inside records, by halving, to isolate the refused
 * events. Pieces are delivered in log order, so after piece [0, j) of such a split is resolved
 * (delivered or dead-lettered) everything before the record that holds event j is resolved: that
 * record's start — or the split's end when j is the last event — is the "safe boundary" of the
 * piece. A piece's `to` is its safe boundary, so a transactional sink (one with `loadCursor`)
 * commits with each piece exactly the position up to which nothing is left, never past an event
 * still to come; the loop publishes and (for file-cursor sinks) persists the same boundary as
 * pieces resolve. When the batch ends with dead-lettered events, no sink write carried the end;
 * a transactional sink then gets an empty batch (`events: []`, `from = to`) whose only effect is
 * to commit the cursor — if it refuses, the loop moves on anyway and those events are only
 * re-dead-lettered after a restart. A crash in the middle of a split redelivers at most the
 * unresolved rest of a record (at least once; sinks are idempotent on `event_id`).
 *
 * Timeout. A sink write that has not answered after `timeoutMs` counts as `retry` — for the
 * backoff, the retry counter and the breaker alike — but it is not abandoned, and no second write
 * is started beside it: a sink never sees two calls from one loop at once, so it need not be
 * reentrant, and a late answer cannot race a newer write (a late commit of an old cursor over a
 * newer one, a transaction begun twice on one connection). The call stays outstanding; the next
 * attempt of the same piece waits for it first (another `timeoutMs`, another retry if it still
 * has not answered) and takes its answer as its own: a late `delivered` moves the cursor without
 * sending the piece again, a late `retry` sends it again. If an outstanding call belongs to
 * another piece (a cursor-only commit), the next write waits for it to settle before it starts.
 * On stop, the loop waits for an outstanding call up to `timeoutMs` more, then gives up on it and
 * logs `SinkWriteAbandoned`; its piece was not counted as delivered, so at worst it is delivered
 * again after the restart (at least once).
 *
 * Breaker. Each sink has a circuit breaker (breaker.ts): after `breaker.failures` consecutive
 * failed attempts (retry, throw, timeout) it opens and no write is attempted for its open period
 * (doubling while the sink keeps failing); then one trial write decides (half-open). While it is
 * open the wait before the next attempt is the breaker's rest of the period (or a longer
 * `afterMs` the sink asked for), not the backoff: the backoff paces the first few failures, the
 * breaker paces an outage. `SinkBreakerOpened` / `SinkBreakerClosed` are logged, and `stats()`
 * shows the state and how often it opened.
 *
 * Start. The cursor comes from `sink.loadCursor()`, else the sink's cursor file, else 0 (a new
 * sink reads from the oldest record still on disk). It is published in the sink's slot of the
 * shared state before `start()` resolves, so the WAL writer (which may not have recovered yet)
 * never deletes a segment this sink still needs and never reuses a position it counts as done.
 */

import type { DedupRecord, DeliveryCheck, PreparedCheck } from '../dedup/delivery-check.ts'
import type { L2State } from '../dedup/redis.ts'
import { spillwayError } from '../errors.ts'
import { dedupKeyOf } from '../intake/event-id.ts'
import { decodeEvents } from '../intake/serialize.ts'
import type { NormalizedEvent } from '../intake/types.ts'
import type { Sink, SinkBatch, Verdict } from '../sinks/sink.ts'
import type { Logger } from '../telemetry/logger.ts'
import { WalReader } from '../wal/reader.ts'
import type { WalSharedState } from '../wal/shared-state.ts'
import type { WalRecord } from '../wal/types.ts'
import { Backoff, type BackoffOptions, sleep } from './backoff.ts'
import { Breaker, type BreakerOptions, type BreakerState } from './breaker.ts'
import type { CursorFile } from './cursor-file.ts'
import type { DeadLetterEntry } from './dead-letter.ts'
import {
  BATCH_LATENCY_MS_BUCKETS,
  BATCH_ROWS_BUCKETS,
  Histogram,
  type HistogramSnapshot,
} from '../telemetry/histogram.ts'

/** What the loop needs from a WAL reader (WalReader, or a fake in tests). */
export interface RecordSource {
  /** Whole records from the current position, about `maxBytes` of them (at least one if any), up to `limit`. */
  read(maxBytes: number, limit?: number): Promise<WalRecord[]>
  /** Where the next read starts: past the last record returned (or corrupt bytes skipped). */
  readonly position: number
  close(): void | Promise<void>
}

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
  /** A sink write not answered after this long counts as `retry` (see the header); default 30 s. */
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

/** While idle the loop re-checks the head this often even without a wake-up. */
const IDLE_WAIT_MS = 1000
/**
 * Pause after a read that returned nothing although the head said there was more: the reader
 * waits at corruption in the tail segment until the writer rotates (see reader.ts).
 */
const EMPTY_READ_PAUSE_MS = 50

export const DEFAULT_DELIVERY_TIMEOUT_MS = 30_000

class Stopped extends Error {}

/** A sink call and the piece it carries; it stays outstanding past its timeout until it settles. */
interface SinkCall {
  readonly piece: SinkBatch
  /** Never rejects: a throw is already a `retry` verdict. */
  readonly answer: Promise<Verdict>
}

const TIMED_OUT = Symbol('timed out')

/**
 * A WAL record in a batch; `count` is its number of events (NDJSON lines). The dedup check
 * (DeliveryCheck) may cut duplicates out of `payload` and sets `keys`: the keys of what is left.
 */
interface RecordRef extends DedupRecord {
  readonly start: number
  readonly end: number
}

/** What one read cycle collected: whole records, not decoded yet. */
interface Batch {
  readonly from: number
  to: number
  bytes: number
  rows: number
  readonly records: RecordRef[]
  /** The dedup check's first half, started when the batch was read ahead. */
  prepared?: Promise<PreparedCheck>
}

/** Records decoded into events, for pieces that must be cut inside records (poison isolation). */
interface EventBatch {
  readonly to: number
  readonly events: NormalizedEvent[]
  /** For each event: start of its WAL record, and its index in that record. */
  readonly recordStart: number[]
  readonly indexInRecord: number[]
}

/**
 * A piece of whole records. Its NDJSON is the records' payloads as they are; `events` is decoded
 * on first access only, so a sink that loads NDJSON never pays for JSON.parse in JavaScript.
 */
class RecordPiece implements SinkBatch {
  readonly from: number
  readonly to: number
  readonly rows: number
  readonly ndjson: Buffer | undefined
  readonly #payload: Buffer
  readonly #decode: (payload: Buffer) => NormalizedEvent[]
  #events: NormalizedEvent[] | undefined
  decodeError: Error | undefined

  constructor(
    records: readonly RecordRef[],
    withNdjson: boolean,
    decode: (payload: Buffer) => NormalizedEvent[],
  ) {
    this.from = records[0].start
    this.to = records[records.length - 1].end
    this.rows = records.reduce((n, r) => n + r.count, 0)
    this.#payload = records.length === 1 ? records[0].payload : Buffer.concat(records.map((r) => r.payload))
    this.ndjson = withNdjson ? this.#payload : undefined
    this.#decode = decode
  }

  get events(): NormalizedEvent[] {
    if (this.#events) return this.#events
    try {
      this.#events = this.#decode(this.#payload)
    } catch (error) {
      this.decodeError = error as Error
      throw error
    }
    return this.#events
  }
}

export class DeliveryLoop {
  readonly #sink: Sink
  readonly #slot: number
  readonly #state: WalSharedState
  readonly #openReader: (from: number) => RecordSource
  readonly #cursorFile: CursorFile | undefined
  readonly #deadLetter: DeliveryLoopOptions['deadLetter']
  readonly #batchRows: number
  readonly #batchBytes: number
  readonly #lingerMs: number
  readonly #logger: Logger
  readonly #backoff: Backoff
  readonly #breaker: Breaker
  readonly #timeoutMs: number
  readonly #decode: (payload: Buffer) => NormalizedEvent[]
  readonly #dedup: DeliveryCheck | undefined

  #phase: DeliveryPhase = 'new'
  #cursor = -1
  /** What a transactional sink committed last (its `loadCursor` answer if asked now). */
  #sinkCursor = -1
  /** No cursor was ever saved for this sink. */
  #fresh = false
  #reader: RecordSource | undefined
  #done: Promise<void> = Promise.resolve()
  /** Set by stop({ drain: true }): deliver up to here, then stop. */
  #drainTarget: number | null = null
  readonly #abort = new AbortController()
  /** The sink call that timed out and has not settled yet (see the header). */
  #outstanding: SinkCall | undefined
  #nudge = Promise.withResolvers<void>()

  #deliveredRows = 0
  #deliveredBatches = 0
  #retries = 0
  #timeouts = 0
  #refusedBatches = 0
  #deadLettered = 0
  #lastError: string | null = null
  #lastErrorAt: number | null = null
  #lastDeliveredAt: number | null = null
  readonly #rowsHistogram = new Histogram(BATCH_ROWS_BUCKETS)
  readonly #latencyHistogram = new Histogram(BATCH_LATENCY_MS_BUCKETS)

  constructor(options: DeliveryLoopOptions) {
    this.#sink = options.sink
    this.#slot = options.slot
    this.#state = options.state
    this.#cursorFile = options.cursorFile
    this.#deadLetter = options.deadLetter
    this.#batchRows = Math.max(1, options.batchRows)
    this.#batchBytes = Math.max(1, options.batchBytes)
    this.#lingerMs = Math.max(0, options.lingerMs)
    this.#logger = options.logger
    this.#backoff = new Backoff(options.backoff)
    this.#breaker = new Breaker(options.breaker)
    this.#timeoutMs = Math.max(1, options.timeoutMs ?? DEFAULT_DELIVERY_TIMEOUT_MS)
    this.#decode = options.decode ?? decodeEvents
    this.#dedup = options.dedup
    if (!options.sink.loadCursor && !options.cursorFile) {
      throw new TypeError(`sink ${options.sink.name} keeps no cursor of its own: a cursorFile is required`)
    }
    if (options.openReader) {
      this.#openReader = options.openReader
    } else if (options.walDir) {
      const dir = options.walDir
      const maxRecordBytes = options.maxRecordBytes
      const logger = options.logger.child({ sink: options.sink.name })
      this.#openReader = (from) =>
        new WalReader(dir, options.state, {
          from,
          maxRecordBytes,
          logger,
          onCorruption: (info) =>
            this.#fail(new Error(`WAL corruption in ${info.segment} at ${info.position}: ${info.reason}`)),
        })
    } else {
      throw new TypeError('DeliveryLoop needs walDir or openReader')
    }
  }

  get sink(): Sink {
    return this.#sink
  }

  /** The position up to which every event is delivered or dead-lettered. */
  get cursor(): number {
    return this.#cursor
  }

  /** Loads and publishes the start cursor, then runs in the background until `stop`. The sink must be open. */
  async start(): Promise<void> {
    if (this.#phase !== 'new') throw new Error(`delivery to ${this.#sink.name} was already started`)
    this.#phase = 'running'
    let loaded: number | null
    try {
      loaded = this.#sink.loadCursor ? await this.#sink.loadCursor() : await this.#cursorFile!.load()
    } catch (error) {
      this.#phase = 'stopped'
      throw error
    }
    this.#fresh = loaded === null
    const cursor = loaded ?? Math.max(0, this.#state.oldest)
    this.#cursor = cursor
    this.#sinkCursor = loaded ?? -1
    this.#state.setCursor(this.#slot, cursor)
    this.#logger.info(
      {
        sink: this.#sink.name,
        slot: this.#slot,
        cursor,
        source: this.#sink.loadCursor ? 'sink' : 'file',
        fresh: loaded === null,
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
    if (options.drain && !this.#abort.signal.aborted) {
      this.#drainTarget ??= this.#state.durableHead
      if (this.#phase === 'running') this.#phase = 'draining'
    } else {
      this.#abort.abort()
    }
    this.#wake()
    return this.#done
  }

  /** Resolves when the loop has ended. */
  get done(): Promise<void> {
    return this.#done
  }

  stats(): DeliveryStats {
    const head = this.#state.durableHead
    return {
      sink: this.#sink.name,
      slot: this.#slot,
      phase: this.#phase,
      cursor: this.#cursor,
      durableHead: head,
      backlogBytes: this.#state.backlogBytes(this.#slot),
      deliveredRows: this.#deliveredRows,
      deliveredBatches: this.#deliveredBatches,
      retries: this.#retries,
      timeouts: this.#timeouts,
      breaker: this.#breaker.state,
      breakerOpens: this.#breaker.opens,
      refusedBatches: this.#refusedBatches,
      deadLettered: this.#deadLettered,
      lastError: this.#lastError,
      lastErrorAt: this.#lastErrorAt,
      lastDeliveredAt: this.#lastDeliveredAt,
      batchRows: this.#rowsHistogram.snapshot(),
      batchLatencyMs: this.#latencyHistogram.snapshot(),
      duplicatesDelivery: this.#dedup?.counts.delivery ?? 0,
      duplicatesL2: this.#dedup?.counts.l2 ?? 0,
      dedupL2: this.#dedup?.l2 ?? null,
      dedupCacheKeys: this.#dedup?.cacheSize ?? 0,
    }
  }

  // --- the loop ---------------------------------------------------------------------------------

  async #run(): Promise<void> {
    /** The next batch, read (and its L2 claims made) while the current one is written. */
    let ahead: Promise<Batch | null> | undefined
    try {
      for (;;) {
        if (this.#abort.signal.aborted) break
        if (this.#drainTarget !== null && this.#cursor >= this.#drainTarget) break
        try {
          let batch = await (ahead ?? this.#collect(this.#cursor))
          ahead = undefined
          // A batch read ahead of a delivery that did not reach its end is read again.
          if (batch && batch.from !== this.#cursor) batch = await this.#collect(this.#cursor)
          if (batch) {
            if (this.#dedup?.readsAhead && this.#drainTarget === null) ahead = this.#readAhead(batch.to)
            await this.#deliver(batch)
          }
        } catch (error) {
          await settled(ahead)
          ahead = undefined
          if (error instanceof Stopped || this.#abort.signal.aborted) break
          // Reader I/O, cursor file or dead-letter store failure: nothing advanced past the
          // failure, so start over from the cursor after a pause.
          this.#fail(error as Error)
          this.#logger.error(
            { sink: this.#sink.name, err: error, cursor: this.#cursor },
            'DeliveryLoopFailed',
          )
          await this.#closeReader()
          await sleep(this.#backoff.next(), this.#abort.signal)
        }
      }
    } finally {
      await settled(ahead)
      await this.#settleOutstanding()
      await this.#closeReader()
      this.#phase = 'stopped'
      this.#logger.info({ sink: this.#sink.name, cursor: this.#cursor }, 'DeliveryStopped')
    }
  }

  /**
   * Read-ahead (only with an L2 dedup layer, whose claim is a network round trip): the batch after
   * `from` is read and its claims are made while the batch before it is being written.
   */
  async #readAhead(from: number): Promise<Batch | null> {
    const batch = await this.#collect(from)
    if (batch && this.#dedup) batch.prepared = this.#dedup.prepare(batch.records)
    return batch
  }

  /** Reads the batch at `from`; null when there was nothing to read (after waiting a while). */
  async #collect(from: number): Promise<Batch | null> {
    const limit = this.#drainTarget ?? undefined
    const head = this.#drainTarget ?? this.#state.durableHead
    if (head <= from) {
      if (this.#drainTarget === null) await this.#waitForHead(from, IDLE_WAIT_MS)
      return null
    }
    const reader = await this.#readerAt(from)
    const batch: Batch = { from, to: from, bytes: 0, rows: 0, records: [] }
    const lingerUntil = Date.now() + this.#lingerMs
    for (;;) {
      if (this.#abort.signal.aborted) throw new Stopped()
      const records = await reader.read(Math.max(1, this.#batchBytes - batch.bytes), limit)
      for (const record of records) this.#add(batch, record)
      batch.to = Math.max(batch.to, reader.position)
      if (batch.rows >= this.#batchRows || batch.bytes >= this.#batchBytes) break
      const available = (this.#drainTarget ?? this.#state.durableHead) > reader.position
      if (records.length === 0) {
        if (batch.to > batch.from) break
        // The head says there is more, the reader found none (yet): do not spin.
        await sleep(EMPTY_READ_PAUSE_MS, this.#abort.signal)
        return null
      }
      if (available) continue
      if (this.#drainTarget !== null || this.#lingerMs === 0) break
      const remaining = lingerUntil - Date.now()
      if (remaining <= 0) break
      await this.#waitForHead(reader.position, remaining)
    }
    return batch
  }

  #add(batch: Batch, record: WalRecord): void {
    const count = countLines(record.payload)
    batch.bytes += record.end - record.start
    batch.rows += count
    batch.records.push({ start: record.start, end: record.end, payload: record.payload, count })
  }

  /** Cuts the batch into pieces of whole records, at most `batchRows` events each (a bigger record alone). */
  async #deliver(batch: Batch): Promise<void> {
    const records = batch.records
    if (this.#dedup) {
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
    for (let k = 0; k < records.length; ) {
      let rows = records[k].count
      let m = k + 1
      while (m < records.length && rows + records[m].count <= this.#batchRows) rows += records[m++].count
      await this.#deliverRecords(records.slice(k, m))
      k = m
    }
    if (this.#sink.loadCursor && this.#sinkCursor < batch.to) await this.#commitOnly(batch.to)
    await this.#advance(batch.to)
  }

  async #deliverRecords(records: readonly RecordRef[]): Promise<void> {
    const piece = new RecordPiece(records, this.#sink.acceptsNdjson === true, this.#decode)
    if (piece.rows === 0) return
    if (!piece.ndjson) {
      // The sink reads events: decode here, so a record that does not decode is caught now.
      try {
        void piece.events
      } catch {
        await this.#isolate(records)
        return
      }
    }
    const started = performance.now()
    const verdict = await this.#writeUntilAnswered(piece)
    if (verdict.kind === 'delivered') {
      this.#delivered(piece, piece.rows, started)
      if (this.#dedup) for (const record of records) if (record.keys) this.#dedup.delivered(record.keys)
      await this.#advance(piece.to)
      return
    }
    // Refused as a whole: decode it record by record and find the refused events by halving.
    this.#refusedBatches++
    this.#fail(verdict.error)
    this.#logger.warn({ sink: this.#sink.name, rows: piece.rows, err: verdict.error }, 'SinkBatchRefused')
    await this.#isolate(records)
  }

  /** Event-level delivery of whole records; records that do not decode are dead-lettered whole. */
  async #isolate(records: readonly RecordRef[]): Promise<void> {
    const batch: EventBatch = {
      to: records[records.length - 1].end,
      events: [],
      recordStart: [],
      indexInRecord: [],
    }
    for (const record of records) {
      let events: NormalizedEvent[]
      try {
        events = this.#decode(record.payload)
      } catch (error) {
        await this.#deadLetterEntries([
          {
            at: Date.now(),
            sink: this.#sink.name,
            reason: `WAL record does not decode: ${(error as Error).message}`,
            position: record.start,
            event: record.payload.toString('utf8'),
          },
        ])
        continue
      }
      for (let i = 0; i < events.length; i++) {
        batch.events.push(events[i])
        batch.recordStart.push(record.start)
        batch.indexInRecord.push(i)
      }
    }
    const n = batch.events.length
    if (n === 0) return
    if (n === 1) {
      await this.#deliverRange(batch, 0, 1)
      return
    }
    const mid = n >>> 1
    await this.#deliverRange(batch, 0, mid)
    await this.#deliverRange(batch, mid, n)
  }

  #delivered(piece: SinkBatch, rows: number, started: number): void {
    this.#deliveredRows += rows
    this.#deliveredBatches++
    this.#lastDeliveredAt = Date.now()
    this.#rowsHistogram.observe(rows)
    this.#latencyHistogram.observe(performance.now() - started)
    if (this.#sink.loadCursor) this.#sinkCursor = Math.max(this.#sinkCursor, piece.to)
    this.#logger.debug({ sink: this.#sink.name, rows, from: piece.from, to: piece.to }, 'SinkBatchDelivered')
  }

  /** Delivers events [i, j) of the batch, isolating refused events by halving. */
  async #deliverRange(batch: EventBatch, i: number, j: number): Promise<void> {
    const piece: SinkBatch = {
      events: batch.events.slice(i, j),
      from: batch.recordStart[i],
      to: safeBoundary(batch, j),
    }
    const started = performance.now()
    const verdict = await this.#writeUntilAnswered(piece)
    if (verdict.kind === 'delivered') {
      this.#delivered(piece, j - i, started)
      this.#dedup?.delivered(piece.events.map(dedupKeyOf))
      await this.#advance(piece.to)
      return
    }
    this.#refusedBatches++
    this.#fail(verdict.error)
    if (j - i === 1) {
      await this.#deadLetterEntries([
        {
          at: Date.now(),
          sink: this.#sink.name,
          reason: verdict.error.message,
          index: batch.indexInRecord[i],
          position: batch.recordStart[i],
          event: batch.events[i],
        },
      ])
      this.#logger.warn(
        {
          sink: this.#sink.name,
          eventId: batch.events[i].event_id,
          position: batch.recordStart[i],
          err: verdict.error,
        },
        'SinkEventDeadLettered',
      )
      // Not stored: its L2 claim goes back, so another copy of it may still be stored.
      await this.#dedup
        ?.deadLettered([{ key: dedupKeyOf(batch.events[i]), recordStart: batch.recordStart[i] }])
        .catch((error) => this.#logger.warn({ sink: this.#sink.name, err: error }, 'DedupReleaseFailed'))
      await this.#advance(safeBoundary(batch, j))
      return
    }
    this.#logger.warn({ sink: this.#sink.name, rows: j - i, err: verdict.error }, 'SinkBatchRefused')
    const mid = (i + j) >>> 1
    await this.#deliverRange(batch, i, mid)
    await this.#deliverRange(batch, mid, j)
  }

  /**
   * Writes until the sink answers delivered or permanent; retries wait, the cursor never moves.
   * The breaker gates each attempt and, while open, paces them (see the header).
   */
  async #writeUntilAnswered(piece: SinkBatch): Promise<Exclude<Verdict, { kind: 'retry' }>> {
    for (;;) {
      if (this.#abort.signal.aborted) throw new Stopped()
      const closedFor = this.#breaker.waitMs()
      if (closedFor > 0) {
        await sleep(closedFor, this.#abort.signal)
        continue
      }
      let verdict = await this.#attempt(piece)
      // A record that does not decode cannot get better by waiting: isolate it instead.
      if (verdict.kind === 'retry' && piece instanceof RecordPiece && piece.decodeError) {
        verdict = { kind: 'permanent', error: piece.decodeError }
      }
      if (verdict.kind !== 'retry') {
        this.#backoff.reset()
        if (this.#breaker.success() === 'closed') {
          this.#logger.info({ sink: this.#sink.name, opens: this.#breaker.opens }, 'SinkBreakerClosed')
        }
        if (this.#phase === 'retrying') this.#phase = this.#drainTarget === null ? 'running' : 'draining'
        return verdict
      }
      this.#retries++
      this.#fail(verdict.error)
      this.#phase = 'retrying'
      const rows = piece instanceof RecordPiece ? piece.rows : piece.events.length
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
      const waitMs =
        openFor > 0 ? Math.max(openFor, verdict.afterMs ?? 0) : this.#backoff.next(verdict.afterMs)
      this.#logger.warn(
        {
          sink: this.#sink.name,
          rows,
          attempt: this.#breaker.failures,
          breaker: this.#breaker.state,
          waitMs,
          err: verdict.error,
        },
        'SinkBatchRetried',
      )
      await sleep(waitMs, this.#abort.signal)
    }
  }

  /**
   * One attempt: the answer of a new sink call, or of the outstanding one when it carries this
   * piece; a `retry` when no answer came within the timeout. Never two calls at once (header).
   */
  async #attempt(piece: SinkBatch): Promise<Verdict> {
    const earlier = this.#outstanding
    if (earlier && earlier.piece !== piece) {
      if ((await this.#within(earlier.answer)) === TIMED_OUT) return this.#timedOut()
      this.#outstanding = undefined
    }
    let call = this.#outstanding
    if (!call) {
      call = { piece, answer: this.#call(piece) }
      this.#outstanding = call
    }
    const answer = await this.#within(call.answer)
    if (answer === TIMED_OUT) return this.#timedOut()
    this.#outstanding = undefined
    return answer
  }

  /** sink.write with a throw (even a synchronous one) turned into a retry verdict. */
  async #call(piece: SinkBatch): Promise<Verdict> {
    try {
      return await this.#sink.write(piece)
    } catch (error) {
      return { kind: 'retry', error: asError(error) }
    }
  }

  async #within<T>(answer: Promise<T>): Promise<T | typeof TIMED_OUT> {
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(resolve, this.#timeoutMs, TIMED_OUT)
    })
    try {
      return await Promise.race([answer, deadline])
    } finally {
      clearTimeout(timer)
    }
  }

  #timedOut(): Verdict {
    this.#timeouts++
    return {
      kind: 'retry',
      error: spillwayError(
        'SPW_ERR_SINK_UNAVAILABLE',
        `sink ${this.#sink.name} did not answer within ${this.#timeoutMs} ms`,
      ),
    }
  }

  /** On stop: give an outstanding call one more timeout to settle, then leave it (header). */
  async #settleOutstanding(): Promise<void> {
    const call = this.#outstanding
    if (!call) return
    if ((await this.#within(call.answer)) === TIMED_OUT) {
      this.#logger.warn(
        { sink: this.#sink.name, from: call.piece.from, to: call.piece.to, timeoutMs: this.#timeoutMs },
        'SinkWriteAbandoned',
      )
    }
    this.#outstanding = undefined
  }

  /** An empty batch that only commits a transactional sink's cursor (see the header). */
  async #commitOnly(position: number): Promise<void> {
    const answer = await this.#attempt({ events: [], from: position, to: position })
    if (answer.kind === 'delivered') this.#sinkCursor = position
    else this.#logger.warn({ sink: this.#sink.name, position, err: answer.error }, 'SinkCursorCommitFailed')
  }

  async #deadLetterEntries(entries: DeadLetterEntry[]): Promise<void> {
    await this.#deadLetter.append(entries)
    this.#deadLettered += entries.length
  }

  /** Moves the cursor: persisted first (file-cursor sinks), then published for the writer. */
  async #advance(position: number): Promise<void> {
    if (position <= this.#cursor) return
    if (!this.#sink.loadCursor) await this.#cursorFile!.save(position)
    this.#cursor = position
    this.#state.setCursor(this.#slot, position)
  }

  async #readerAt(from: number): Promise<RecordSource> {
    if (this.#reader && this.#reader.position === from) return this.#reader
    await this.#closeReader()
    if (from !== this.#cursor) {
      this.#reader = this.#openReader(from)
      return this.#reader
    }
    const oldest = this.#state.oldest
    if (oldest > this.#cursor) {
      // The records before `oldest` are gone: a new sink starts at the oldest one still on disk.
      const fresh = this.#fresh && this.#deliveredBatches === 0
      this.#logger[fresh ? 'info' : 'error'](
        { sink: this.#sink.name, cursor: this.#cursor, oldest },
        fresh ? 'DeliveryCursorStartedAtOldest' : 'DeliveryEventsSkipped',
      )
      await this.#advance(oldest)
    }
    this.#reader = this.#openReader(this.#cursor)
    return this.#reader
  }

  async #closeReader(): Promise<void> {
    const reader = this.#reader
    this.#reader = undefined
    try {
      await reader?.close()
    } catch (error) {
      this.#logger.warn({ sink: this.#sink.name, err: error }, 'WalReaderCloseFailed')
    }
  }

  /** Waits for the head to pass `position`, at most `timeoutMs`, or until stop() nudges. */
  async #waitForHead(position: number, timeoutMs: number): Promise<void> {
    await Promise.race([this.#state.waitForHeadBeyond(position, timeoutMs), this.#nudge.promise])
  }

  #wake(): void {
    this.#nudge.resolve()
    this.#nudge = Promise.withResolvers<void>()
  }

  #fail(error: Error): void {
    this.#lastError = error.message
    this.#lastErrorAt = Date.now()
  }
}

/** Waits for a read-ahead to end, whatever its outcome (it is being discarded). */
async function settled(ahead: Promise<unknown> | undefined): Promise<void> {
  await ahead?.catch(() => {})
}

/** See the header: the position up to which events [0, j) of the batch cover whole records. */
function safeBoundary(batch: EventBatch, j: number): number {
  return j >= batch.events.length ? batch.to : batch.recordStart[j]
}

/** Events in an NDJSON payload: one per newline (the intake ends every line with one). */
function countLines(payload: Buffer): number {
  let n = 0
  for (let i = payload.indexOf(10); i !== -1; i = payload.indexOf(10, i + 1)) n++
  return n
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}

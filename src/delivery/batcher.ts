/**
 * The first part of delivery: read whole WAL records from a position and close a batch at
 * `batchRows` events, `batchBytes` bytes, or `lingerMs` after its first record. The linger is only
 * spent when the log has nothing more to give: under load the records are durable before the loop
 * asks, so batches fill at once. Records are indivisible (one request is one record, a cursor is a
 * record boundary); `recordPieces` cuts a batch into the pieces the sink gets, and a piece carries
 * its records' NDJSON as it is, decoded only for a sink that reads events.
 */
import type { DedupRecord, PreparedCheck } from '../dedup/delivery-check.ts'
import type { NormalizedEvent } from '../intake/types.ts'
import { sleep } from '../shared/timeout.ts'
import type { SinkBatch } from '../sinks/sink.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { WalSharedState } from '../wal/shared-state.ts'
import type { WalRecord } from '../wal/types.ts'

/** What the batcher needs from a WAL reader (WalReader, or a fake in tests). */
export interface RecordSource {
  /** Whole records from the current position, about `maxBytes` of them (at least one if any), up to `limit`. */
  read(maxBytes: number, limit?: number): Promise<WalRecord[]>
  /** Where the next read starts: past the last record returned (or corrupt bytes skipped). */
  readonly position: number
  close(): void | Promise<void>
}

/**
 * A WAL record in a batch; `count` is its number of events (NDJSON lines). The dedup check
 * (DeliveryCheck) may cut duplicates out of `payload` and sets `keys`: the keys of what is left.
 */
export interface RecordRef extends DedupRecord {
  readonly start: number
  readonly end: number
}

/** What one read collected: whole records, not decoded yet. */
export interface Batch {
  readonly from: number
  to: number
  bytes: number
  rows: number
  readonly records: RecordRef[]
  /** The dedup check's first half, started when the batch was read ahead. */
  prepared?: Promise<PreparedCheck>
}

export interface BatcherOptions {
  readonly state: WalSharedState
  readonly openReader: (from: number) => RecordSource
  readonly batchRows: number
  readonly batchBytes: number
  readonly lingerMs: number
  /** Aborted by stop without drain: a read in progress throws the signal's reason. */
  readonly signal: AbortSignal
  readonly logger: Logger
  readonly sinkName: string
  /** Where a new reader for `from` starts (the loop moves a cursor below the oldest segment up). */
  readonly startAt: (from: number) => Promise<number>
}

/** While idle the batcher re-checks the head this often even without a wake-up. */
const IDLE_WAIT_MS = 1000
/**
 * Pause after a read that returned nothing although the head said there was more: the reader
 * waits at corruption in the tail segment until the writer rotates (see reader.ts).
 */
const EMPTY_READ_PAUSE_MS = 50

export class Batcher {
  readonly #options: BatcherOptions
  readonly #batchRows: number
  readonly #batchBytes: number
  readonly #lingerMs: number
  #reader: RecordSource | undefined
  /** Set by drain(): read up to here and no further, without lingering. */
  #drainTarget: number | null = null
  /** Resolves the wait in progress, if any (wake()). One per wait, so nothing piles up on it. */
  #nudge: (() => void) | undefined

  constructor(options: BatcherOptions) {
    this.#options = options
    this.#batchRows = Math.max(1, options.batchRows)
    this.#batchBytes = Math.max(1, options.batchBytes)
    this.#lingerMs = Math.max(0, options.lingerMs)
  }

  get batchRows(): number {
    return this.#batchRows
  }

  get drainTarget(): number | null {
    return this.#drainTarget
  }

  /** From now on read only up to `target` (the head when the drain began). */
  drain(target: number): void {
    this.#drainTarget ??= target
  }

  /** Ends a wait for the head at once (stop). */
  wake(): void {
    this.#nudge?.()
  }

  /** Reads the batch at `from`; null when there was nothing to read (after waiting a while). */
  async collect(from: number): Promise<Batch | null> {
    const state = this.#options.state
    const limit = this.#drainTarget ?? undefined
    const head = this.#drainTarget ?? state.durableHead
    if (head <= from) {
      if (this.#drainTarget === null) await this.#waitForHead(from, IDLE_WAIT_MS)
      return null
    }
    let start = from
    if (this.#reader?.position !== from) {
      await this.close()
      start = await this.#options.startAt(from)
      this.#reader = this.#options.openReader(start)
    }
    const reader = this.#reader as RecordSource
    const batch: Batch = { from: start, to: start, bytes: 0, rows: 0, records: [] }
    const lingerUntil = Date.now() + this.#lingerMs
    for (;;) {
      this.#options.signal.throwIfAborted()
      const records = await reader.read(Math.max(1, this.#batchBytes - batch.bytes), limit)
      for (const record of records) add(batch, record)
      batch.to = Math.max(batch.to, reader.position)
      if (batch.rows >= this.#batchRows || batch.bytes >= this.#batchBytes) break
      const available = (this.#drainTarget ?? state.durableHead) > reader.position
      if (records.length === 0) {
        if (batch.to > batch.from) break
        // The head says there is more, the reader found none (yet): do not spin.
        await sleep(EMPTY_READ_PAUSE_MS, this.#options.signal)
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

  /** Closes the reader; the next collect opens one where it is asked to read. */
  async close(): Promise<void> {
    const reader = this.#reader
    this.#reader = undefined
    try {
      await reader?.close()
    } catch (error) {
      this.#options.logger.warn({ sink: this.#options.sinkName, err: error }, 'WalReaderCloseFailed')
    }
  }

  /** Waits for the head to pass `position`, at most `timeoutMs`, or until wake(). */
  async #waitForHead(position: number, timeoutMs: number): Promise<void> {
    const nudged = new Promise<void>((resolve) => {
      this.#nudge = resolve
    })
    try {
      await Promise.race([this.#options.state.waitForHeadBeyond(position, timeoutMs), nudged])
    } finally {
      this.#nudge = undefined
    }
  }
}

/** Cuts a batch's records into pieces of whole records, at most `batchRows` events each (a bigger record alone). */
export function* recordPieces(records: readonly RecordRef[], batchRows: number): Generator<RecordRef[]> {
  for (let k = 0; k < records.length; ) {
    let rows = records[k].count
    let m = k + 1
    while (m < records.length && rows + records[m].count <= batchRows) rows += records[m++].count
    yield records.slice(k, m)
    k = m
  }
}

/**
 * A piece of whole records. Its NDJSON is the records' payloads as they are; `events` is decoded
 * on first access only, so a sink that loads NDJSON never pays for JSON.parse in JavaScript.
 */
export class RecordPiece implements SinkBatch {
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

function add(batch: Batch, record: WalRecord): void {
  const count = countLines(record.payload)
  batch.bytes += record.end - record.start
  batch.rows += count
  batch.records.push({ start: record.start, end: record.end, payload: record.payload, count })
}

/** Events in an NDJSON payload: one per newline (the intake ends every line with one). */
function countLines(payload: Buffer): number {
  let n = 0
  for (let i = payload.indexOf(10); i !== -1; i = payload.indexOf(10, i + 1)) n++
  return n
}

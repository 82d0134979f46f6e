/**
 * Poison isolation: records whose piece the sink refused permanently are decoded and delivered by
 * halving, until each refused event stands alone; lone refused events go to the dead-letter store
 * (fsync'd) with the sink's reason, every other event is delivered. A record that does not decode
 * is dead-lettered whole.
 *
 * Pieces go in log order, so once events [0, j) are resolved everything before the record holding
 * event j is resolved: that record's start (or the end when j is the last event) is the piece's
 * `to`, its "safe boundary". A transactional sink so never commits past an event still to come,
 * and a crash mid-split redelivers at most the rest of one record (sinks are idempotent on
 * `event_id`).
 */
import type { DeliveryCheck } from '../dedup/delivery-check.ts'
import { dedupKeyOf } from '../intake/event-id.ts'
import type { NormalizedEvent } from '../intake/types.ts'
import type { DeadLetterEntry } from '../shared/dead-letter.ts'
import type { SinkBatch } from '../sinks/sink.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { RecordRef } from './batcher.ts'
import type { CursorCommitter } from './committer.ts'
import type { DeliveryCounters } from './counters.ts'
import type { Sender } from './sender.ts'

export interface IsolatorOptions {
  readonly sinkName: string
  readonly sender: Sender
  readonly committer: CursorCommitter
  readonly counters: DeliveryCounters
  readonly deadLetter: { append(entries: readonly DeadLetterEntry[]): Promise<void> }
  readonly decode: (payload: Buffer) => NormalizedEvent[]
  readonly dedup: DeliveryCheck | undefined
  readonly logger: Logger
  /** Bookkeeping of a confirmed piece (counters, the committer, the log line), shared with the loop. */
  readonly delivered: (piece: SinkBatch, rows: number, started: number) => void
}

/** Records decoded into events, for pieces cut inside records. */
interface EventBatch {
  readonly to: number
  readonly events: NormalizedEvent[]
  /** For each event: start of its WAL record, and its index in that record. */
  readonly recordStart: number[]
  readonly indexInRecord: number[]
}

export class PoisonIsolator {
  readonly #o: IsolatorOptions

  constructor(options: IsolatorOptions) {
    this.#o = options
  }

  /** Event-level delivery of whole records; records that do not decode are dead-lettered whole. */
  async isolate(records: readonly RecordRef[]): Promise<void> {
    const batch: EventBatch = {
      to: records[records.length - 1].end,
      events: [],
      recordStart: [],
      indexInRecord: [],
    }
    for (const record of records) {
      let events: NormalizedEvent[]
      try {
        events = this.#o.decode(record.payload)
      } catch (error) {
        await this.#deadLetter({
          at: Date.now(),
          sink: this.#o.sinkName,
          reason: `WAL record does not decode: ${(error as Error).message}`,
          position: record.start,
          event: record.payload.toString('utf8'),
        })
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

  /** Delivers events [i, j) of the batch, halving what the sink refuses. */
  async #deliverRange(batch: EventBatch, i: number, j: number): Promise<void> {
    const { sender, committer, counters, logger, sinkName } = this.#o
    const piece: SinkBatch = {
      events: batch.events.slice(i, j),
      from: batch.recordStart[i],
      to: safeBoundary(batch, j),
    }
    const started = performance.now()
    const verdict = await sender.send(piece)
    if (verdict.kind === 'delivered') {
      this.#o.delivered(piece, j - i, started)
      this.#o.dedup?.delivered(piece.events.map(dedupKeyOf))
      await committer.advance(piece.to)
      return
    }
    counters.refusedBatches++
    counters.fail(verdict.error)
    if (j - i === 1) {
      await this.#deadLetter({
        at: Date.now(),
        sink: sinkName,
        reason: verdict.error.message,
        index: batch.indexInRecord[i],
        position: batch.recordStart[i],
        event: batch.events[i],
      })
      logger.warn(
        {
          sink: sinkName,
          eventId: batch.events[i].event_id,
          position: batch.recordStart[i],
          err: verdict.error,
        },
        'SinkEventDeadLettered',
      )
      // Not stored: its L2 claim goes back, so another copy of it may still be stored.
      await this.#o.dedup
        ?.deadLettered([{ key: dedupKeyOf(batch.events[i]), recordStart: batch.recordStart[i] }])
        .catch((error) => logger.warn({ sink: sinkName, err: error }, 'DedupReleaseFailed'))
      await committer.advance(safeBoundary(batch, j))
      return
    }
    logger.warn({ sink: sinkName, rows: j - i, err: verdict.error }, 'SinkBatchRefused')
    const mid = (i + j) >>> 1
    await this.#deliverRange(batch, i, mid)
    await this.#deliverRange(batch, mid, j)
  }

  async #deadLetter(entry: DeadLetterEntry): Promise<void> {
    await this.#o.deadLetter.append([entry])
    this.#o.counters.deadLettered++
  }
}

/** The position up to which events [0, j) of the batch cover whole records (the header). */
function safeBoundary(batch: EventBatch, j: number): number {
  return j >= batch.events.length ? batch.to : batch.recordStart[j]
}

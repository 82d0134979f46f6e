/**
 * Moves one worker's WAL shard into the node's WAL, which delivery reads (`serve --workers N`).
 *
 * A worker answers 202 once its events are fdatasync'd in its own shard: G1 (docs/ARCHITECTURE.md
 * "Guarantees") holds per shard. The
 * primary's merger then reads the shard — never past the durable head the worker reported — and
 * appends each of its records to the node's WAL as a record of its own (a shard record is one
 * request): one damaged byte in the node's WAL then costs one request, as in a shard, not a pack
 * of a thousand (the node WAL's group commit still writes a round's records in one write). A round
 * that found little waits MERGE_LINGER_MS before the next, so the node's WAL is fsync'd tens of
 * times a second, not once per worker commit: on one disk the fsyncs of the shards and of the
 * node's WAL queue behind each other, and every one the merger saves is one the workers' 202s do
 * not wait behind.
 *
 * The cursor moves once the appends are durable; it is saved (`<shard>/merged.json`, replaced
 * atomically) at most every CURSOR_SAVE_MS and on stop, and only the saved cursor is reported to
 * the worker, which then deletes the segments below it — so a shard segment is never deleted
 * before the cursor that passed it is on disk. A crash merges again what was merged since the
 * last save: the node's WAL then holds those records twice, and the delivery-time dedup check
 * drops the second copy (the events keep their `event_id`). So: at least once into the node's
 * WAL, once into the store.
 *
 * Order: a shard's records keep their order; records of different shards interleave.
 */

import { join } from 'node:path'
import { CursorFile } from '../delivery/cursor-file.ts'
import { sleep } from '../shared/timeout.ts'
import type { Logger } from '../telemetry/logger.ts'
import { WalReader } from '../wal/reader.ts'
import type { WalSharedState } from '../wal/shared-state.ts'
import type { WalRecord } from '../wal/types.ts'
import type { WalWriter } from '../wal/writer.ts'

/** Bytes read from a shard per round (one cursor save per round). */
const READ_BYTES = 4 << 20
const IDLE_WAIT_MS = 1000
const RETRY_PAUSE_MS = 500
/** Pause after a round that read less than READ_BYTES. */
export const MERGE_LINGER_MS = 20
/** The cursor file is replaced at most this often (and on stop). */
export const CURSOR_SAVE_MS = 500

export interface ShardMergerOptions {
  readonly shard: number
  /** The shard's directory (`<dataDir>/shards/<n>`): its WAL is `wal/`, the cursor `merged.json`. */
  readonly dir: string
  /** The shard's head as its worker reports it (`durableHead`); the merger sets cursor slot 0. */
  readonly state: WalSharedState
  /** The node's WAL. */
  readonly target: WalWriter
  readonly maxRecordBytes: number
  readonly logger: Logger
}

export class ShardMerger {
  readonly shard: number
  readonly #options: ShardMergerOptions
  readonly #cursorFile: CursorFile
  #cursor = 0
  /** The cursor as last saved: what the worker may delete below. */
  #saved = 0
  #savedAt = 0
  #reader: WalReader | undefined
  #run: Promise<void> = Promise.resolve()
  #stopping = false
  /** Draining: stop once the cursor reaches this head. */
  #drainTo: number | null = null
  #mergedRecords = 0

  constructor(options: ShardMergerOptions) {
    this.shard = options.shard
    this.#options = options
    this.#cursorFile = new CursorFile(options.dir, 'merged')
  }

  /** The shard position up to which every record is durable in the node's WAL. */
  get cursor(): number {
    return this.#cursor
  }

  /** The cursor as saved in `merged.json`: segments below it may be deleted. */
  get savedCursor(): number {
    return this.#saved
  }

  /** Shard bytes durable but not merged yet. */
  get backlogBytes(): number {
    return Math.max(0, this.#options.state.durableHead - this.#cursor)
  }

  get mergedRecords(): number {
    return this.#mergedRecords
  }

  /** Loads the cursor and publishes it (slot 0 of the shard's state), then merges in the background. */
  async start(): Promise<void> {
    this.#cursor = (await loadMergeCursor(this.#options.dir)) ?? 0
    this.#saved = this.#cursor
    this.#options.state.setCursor(0, this.#cursor)
    this.#run = this.#loop()
  }

  /**
   * Stops merging; with `drain`, first merges everything up to the shard's head as it is now
   * (call it once the worker has closed its shard and reported its last head).
   */
  async stop(options: { drain: boolean }): Promise<void> {
    if (options.drain) this.#drainTo ??= this.#options.state.durableHead
    else this.#stopping = true
    this.#options.state.wake()
    await this.#run
  }

  async #loop(): Promise<void> {
    const { state, logger } = this.#options
    while (!this.#stopping) {
      if (this.#drainTo !== null && this.#cursor >= this.#drainTo) break
      try {
        const reader = this.#readerAt()
        const limit = this.#drainTo ?? state.durableHead
        if (reader.position >= limit) {
          if (this.#drainTo !== null) break
          await state.waitForHeadBeyond(reader.position, IDLE_WAIT_MS)
          continue
        }
        const records = await reader.read(READ_BYTES, limit)
        if (records.length > 0) await this.#append(records)
        if (reader.position > this.#cursor) this.#advance(reader.position)
        else if (records.length === 0) await sleep(50) // corrupt bytes at the tail: wait for a rotation
        if (Date.now() - this.#savedAt >= CURSOR_SAVE_MS) await this.#save()
        const bytes = records.reduce((sum, r) => sum + r.end - r.start, 0)
        if (bytes < READ_BYTES && this.#drainTo === null) await sleep(MERGE_LINGER_MS)
      } catch (error) {
        // The node's WAL refused (disk full, closed) or the shard could not be read: nothing past
        // the saved cursor counts as merged; read again from it after a pause.
        logger.warn({ err: error, shard: this.shard, cursor: this.#cursor }, 'ShardMergeFailed')
        await this.#closeReader()
        await sleep(RETRY_PAUSE_MS)
      }
    }
    await this.#closeReader()
    await this.#save().catch((error) =>
      logger.warn({ err: error, shard: this.shard, cursor: this.#cursor }, 'ShardMergeCursorSaveFailed'),
    )
  }

  /**
   * Appends `records` to the node's WAL, one node record each, and moves the cursor past every
   * record that is durable there, in order, even when a later one fails: a node WAL that refuses (a
   * full disk) must not get the same records again on every retry, or the merger would fill the
   * disk itself.
   */
  async #append(records: readonly WalRecord[]): Promise<void> {
    const { target } = this.#options
    const results = await Promise.allSettled(records.map((record) => target.append(record.payload)))
    for (let i = 0; i < results.length; i++) {
      const result = results[i]
      if (result.status === 'rejected') throw result.reason
      this.#advance(records[i].end)
    }
    this.#mergedRecords += records.length
  }

  #advance(position: number): void {
    if (position <= this.#cursor) return
    this.#cursor = position
    this.#options.state.setCursor(0, position)
  }

  async #save(): Promise<void> {
    const cursor = this.#cursor
    this.#savedAt = Date.now()
    if (cursor === this.#saved) return
    await this.#cursorFile.save(cursor)
    this.#saved = cursor
  }

  #readerAt(): WalReader {
    if (this.#reader && this.#reader.position === this.#cursor) return this.#reader
    if (this.#reader) throw new Error('shard reader ahead of its cursor') // never: #advance follows every read
    this.#reader = new WalReader(join(this.#options.dir, 'wal'), this.#options.state, {
      from: this.#cursor,
      maxRecordBytes: this.#options.maxRecordBytes,
      logger: this.#options.logger,
      onCorruption: (info) => this.#options.logger.error({ shard: this.shard, ...info }, 'ShardWalCorrupt'),
    })
    return this.#reader
  }

  async #closeReader(): Promise<void> {
    const reader = this.#reader
    this.#reader = undefined
    await reader?.close().catch(() => {})
  }
}

/** The saved merge cursor of the shard in `dir`, or null when none was saved. */
export function loadMergeCursor(dir: string): Promise<number | null> {
  return new CursorFile(dir, 'merged').load()
}

/**
 * Reads the WAL for one sink, on the delivery thread. It shares nothing with the writer but the
 * directory and the durable head in the SharedArrayBuffer, and it never reads past that head, so
 * it only ever sees bytes that are fdatasync'd and will survive a crash.
 *
 * Segments are found by name (start position) and listed again only when the reader needs a
 * segment it does not know yet — at the end of the one it reads, or when the head is past it.
 * A segment that has a successor is sealed: the writer never writes it again (rotation happens
 * between groups), so its size is final and the reader moves to the successor at its end. The
 * next segment may start later than the previous one ends (a `minHead` jump); the reader jumps
 * the gap.
 *
 * Damage (bit rot, a bad sector) cannot be repaired by reading again, but it costs only what is
 * damaged: at bytes that are not a valid record the reader searches for the next record
 * (`findNextRecord`, scan.ts), keeps the bytes in between aside (damage.ts) — before it moves past
 * them, so before the segment can ever be deleted — counts them in the shared state the first
 * time they are kept, reports them (`onCorruption`, the `WalRecordDamaged` log line), and reads on
 * from that record. In a sealed segment with no record after the damage, the damage runs to the
 * segment's end. In the tail no record may follow below the head yet: the damage is reported
 * once and the reader waits there until one does or the writer rotates.
 */
import { type FileHandle, open } from 'node:fs/promises'
import type { Logger } from '../telemetry/logger.ts'
import { keepDamaged } from './damage.ts'
import { decodeRecord, HEADER_BYTES } from './record.ts'
import { findNextRecord, readFully } from './scan.ts'
import { listSegments, type SegmentFile, segmentIndexAt } from './segment.ts'
import type { WalSharedState } from './shared-state.ts'
import type { WalRecord } from './types.ts'

export interface WalCorruption {
  /** Segment file name. */
  readonly segment: string
  /** Log position of the first bad byte. */
  readonly position: number
  readonly reason: string
  /** Bytes skipped because of it (0 while the reader waits at the tail). */
  readonly skippedBytes: number
  /** Where reading resumed: the next valid record, or the segment's end (absent while waiting). */
  readonly resumedAt?: number
  /** The copy of the skipped bytes (absent while waiting). */
  readonly keptAs?: string
}

export interface WalReaderOptions {
  /** Log position to start at: a sink's cursor (the end of the last record it has). */
  readonly from: number
  readonly maxRecordBytes: number
  /** Bytes per read() system call; default 1 MiB. */
  readonly readChunkBytes?: number
  readonly onCorruption?: (info: WalCorruption) => void
  readonly logger?: Logger
}

interface OpenSegment {
  readonly segment: SegmentFile
  readonly file: FileHandle
  /** Final size once the segment is known to be sealed; undefined while it is the tail. */
  sealedSize: number | undefined
}

const DEFAULT_CHUNK_BYTES = 1 << 20

export class WalReader {
  readonly #dir: string
  readonly #state: WalSharedState
  readonly #maxRecordBytes: number
  readonly #chunkBytes: number
  readonly #onCorruption: ((info: WalCorruption) => void) | undefined
  readonly #logger: Logger | undefined

  #position: number
  #segments: SegmentFile[] = []
  #current: OpenSegment | undefined
  /** A record longer than a chunk: read this many bytes next time. */
  #need = 0
  /** Position of a corruption already reported at the tail (not reported again). */
  #reportedAt = -1
  #reading = false
  #closed = false
  #warnings = 0
  #skippedBytes = 0

  constructor(dir: string, state: WalSharedState, options: WalReaderOptions) {
    if (!Number.isSafeInteger(options.from) || options.from < 0) {
      throw new RangeError(`WalReader: from must be a position ≥ 0, got ${options.from}`)
    }
    this.#dir = dir
    this.#state = state
    this.#position = options.from
    this.#maxRecordBytes = options.maxRecordBytes
    this.#chunkBytes = Math.max(HEADER_BYTES, options.readChunkBytes ?? DEFAULT_CHUNK_BYTES)
    this.#onCorruption = options.onCorruption
    this.#logger = options.logger
  }

  /** Where the next read starts: past the last record returned, or past bytes skipped. */
  get position(): number {
    return this.#position
  }

  /** Times the reader had to skip data: missing (deleted) segments or corruption. */
  get warnings(): number {
    return this.#warnings
  }

  /** Log bytes skipped because they were not on disk or not readable. Gaps between segments left by a `minHead` jump are not counted: they hold no records. */
  get skippedBytes(): number {
    return this.#skippedBytes
  }

  /**
   * Whole records from the current position, about `maxBytes` of them (at least one when any is
   * readable, even if it alone is larger), never past `limit`. An empty array: nothing more yet.
   * Payloads are views into a buffer of this read; they stay valid, nothing reuses it.
   */
  async read(maxBytes: number, limit: number = this.#state.durableHead): Promise<WalRecord[]> {
    if (this.#closed) throw new Error('WalReader is closed')
    if (this.#reading) throw new Error('WalReader.read() is already running')
    this.#reading = true
    try {
      const records: WalRecord[] = []
      let bytes = 0
      while (this.#position < limit && (records.length === 0 || bytes < maxBytes)) {
        const current = await this.#locate(limit)
        if (!current || this.#position >= limit) break
        const before = records.length
        const more = await this.#readChunk(current, records, maxBytes - bytes, limit)
        for (let k = before; k < records.length; k++) bytes += records[k].end - records[k].start
        if (!more) break
      }
      return records
    } finally {
      this.#reading = false
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    await this.#closeCurrent()
  }

  /**
   * The open segment holding the position, after moving past sealed ends, gaps and deleted
   * segments. Undefined when the position is not on disk yet.
   */
  async #locate(limit: number): Promise<OpenSegment | undefined> {
    for (let attempt = 0; attempt < 1000; attempt++) {
      const current = this.#current
      if (current && this.#position >= current.segment.start) {
        const end = current.sealedSize === undefined ? undefined : current.segment.start + current.sealedSize
        if (end === undefined || this.#position < end) return current
      }
      await this.#closeCurrent()

      let index = segmentIndexAt(this.#segments, this.#position)
      const known = this.#segments[index]
      if (index < 0 || index === this.#segments.length - 1 || known === undefined) {
        // The position is in (or past) the newest segment we know of, or before them all: the
        // listing may be stale.
        this.#segments = await listSegments(this.#dir)
        index = segmentIndexAt(this.#segments, this.#position)
      }
      if (this.#segments.length === 0) return undefined
      if (index < 0) {
        const oldest = this.#segments[0].start
        if (oldest >= limit) return undefined
        this.#skip(oldest, 'the position is older than the oldest segment on disk (deleted)')
        continue
      }
      const segment = this.#segments[index]
      const next = this.#segments[index + 1]
      let file: FileHandle
      try {
        file = await open(segment.path, 'r')
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
        this.#segments = [] // deleted under us: list again
        continue
      }
      const opened: OpenSegment = { segment, file, sealedSize: undefined }
      this.#current = opened
      if (next) {
        opened.sealedSize = (await file.stat()).size
        const end = segment.start + opened.sealedSize
        if (this.#position >= end) this.#position = Math.max(this.#position, next.start) // a gap: no records there
      }
    }
    throw new Error(`WalReader could not find the segment holding position ${this.#position}`)
  }

  /**
   * One read() system call at the position, decoded into `records` (at most `budget` bytes of
   * them, but at least one). Returns false when this read() call should stop: the budget is
   * spent, or nothing more can be read now.
   */
  async #readChunk(
    current: OpenSegment,
    records: WalRecord[],
    budget: number,
    limit: number,
  ): Promise<boolean> {
    const { segment, file } = current
    const offset = this.#position - segment.start
    let available = limit - this.#position
    if (current.sealedSize !== undefined) available = Math.min(available, current.sealedSize - offset)
    let want = Math.min(available, this.#chunkBytes, Math.max(budget, HEADER_BYTES))
    if (this.#need > want) want = Math.min(available, this.#need)
    const buf = Buffer.allocUnsafe(want)
    const got = await readFully(file, buf, want, offset)
    if (got < want) {
      // The tail ends before the head: the writer rotated and the head is in a newer segment.
      if (current.sealedSize === undefined) return this.#sealIfSuccessor(current)
      // A sealed file shorter than it was: someone cut it. What is left is all there is.
      current.sealedSize = offset + got
      available = got
    }
    let i = 0
    while (i < got) {
      const result = decodeRecord(buf, i, this.#maxRecordBytes, got)
      if (result.status === 'ok') {
        if (records.length > 0 && i + result.size > budget) return false
        const start = this.#position
        records.push({ start, end: start + result.size, payload: result.payload })
        this.#position += result.size
        this.#need = 0
        i += result.size
        continue
      }
      if (result.status === 'incomplete') {
        if (i > 0) break
        if (result.needed <= available) {
          this.#need = result.needed
          return true
        }
        const sealedEnd = current.sealedSize
        if (
          sealedEnd !== undefined &&
          offset + result.needed > sealedEnd &&
          limit >= segment.start + sealedEnd
        ) {
          return this.#damaged(current, 'the segment ends inside a record', limit)
        }
        return false // cut by `limit`: wait for more
      }
      return this.#damaged(current, result.reason, limit)
    }
    return true
  }

  /**
   * Bad bytes at the position: skips them up to the next valid record (or the end of a sealed
   * segment), keeping them aside first. Returns false when the reader must wait instead (the
   * tail, with no record after the damage below `limit` yet).
   */
  async #damaged(current: OpenSegment, reason: string, limit: number): Promise<boolean> {
    const { segment, file } = current
    const from = this.#position - segment.start
    const max = this.#maxRecordBytes
    // A sealed segment is searched to its end whatever the limit: what follows the damage there
    // is final, and stopping short would skip good records.
    let next = await findNextRecord(file, from + 1, current.sealedSize ?? limit - segment.start, max)
    if (next === undefined && current.sealedSize === undefined) {
      if (!(await this.#sealIfSuccessor(current))) {
        this.#report(current, reason)
        return false
      }
      next = await findNextRecord(file, from + 1, current.sealedSize!, max)
    }
    const to = next ?? current.sealedSize!
    const kept = await keepDamaged(this.#dir, file, segment.name, from, to)
    if (kept.created) this.#state.addDamage(to - from)
    const info: WalCorruption = {
      segment: segment.name,
      position: this.#position,
      reason,
      skippedBytes: to - from,
      resumedAt: segment.start + to,
      keptAs: kept.path,
    }
    this.#warnings++
    this.#skippedBytes += to - from
    this.#position = segment.start + to
    this.#need = 0
    this.#onCorruption?.(info)
    this.#logger?.error({ ...info, firstSeen: kept.created }, 'WalRecordDamaged')
    return true
  }

  /** Damage in the tail with no record after it yet: reported once; the reader waits there. */
  #report(current: OpenSegment, reason: string): void {
    if (this.#reportedAt === this.#position) return
    this.#reportedAt = this.#position
    this.#warnings++
    this.#onCorruption?.({ segment: current.segment.name, position: this.#position, reason, skippedBytes: 0 })
    this.#logger?.error(
      { segment: current.segment.name, position: this.#position, reason },
      'WalCorruptionFound',
    )
  }

  #skip(to: number, reason: string): void {
    this.#logger?.warn({ from: this.#position, to, reason }, 'WalReaderSkipped')
    this.#warnings++
    this.#skippedBytes += to - this.#position
    this.#position = to
    this.#need = 0
  }

  /** Lists the directory again; if the tail now has a successor, records its final size. */
  async #sealIfSuccessor(current: OpenSegment): Promise<boolean> {
    this.#segments = await listSegments(this.#dir)
    const index = this.#segments.findIndex((s) => s.start === current.segment.start)
    if (index < 0 || index === this.#segments.length - 1) return false
    current.sealedSize = (await current.file.stat()).size
    return true
  }

  async #closeCurrent(): Promise<void> {
    const current = this.#current
    this.#current = undefined
    await current?.file.close()
  }
}

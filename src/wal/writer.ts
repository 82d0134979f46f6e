/**
 * The WAL writer: the only code that writes the log, on the HTTP thread.
 *
 * Group commit. An fdatasync costs about as much for 300 bytes as for 300 KB, so appends are not
 * written one by one: they queue in memory (see group.ts) and, whenever no write is in flight,
 * everything queued becomes one group — one positional writev, one fdatasync — after which every
 * append of the group answers and the durable head is published to the delivery thread. Appends
 * that arrive while a group is on its way to the disk form the next group, which starts the
 * moment the previous one is done; so the busier the writer, the larger its groups, and the
 * fsync rate stays bounded by the disk, not by the request rate.
 *
 * Ordering: write → fdatasync → resolve the group's appends → `state.durableHead = end`.
 * A `durable: false` append answers right after the write (its bytes are in the page cache, not
 * yet on the platter); the head still moves only after the fsync, so a reader never sees bytes a
 * crash could take back.
 *
 * Failure: if the write or the fsync fails (ENOSPC, EIO…), every unanswered append of the group is
 * rejected with SPW_ERR_WAL_IO (retryable) and the segment is cut back to the last durable end, so
 * a partial group never stays in the log. The writer stays usable: the next group retries,
 * starting with the repair if that failed too. Until a write succeeds again, `writeFailure()` says
 * why (for /ready, so a load balancer stops sending to a node whose disk is full).
 */
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { getSystemErrorMessage } from 'node:util'
import { type ErrorCode, spillwayError } from '../errors.ts'
import type { Logger } from '../telemetry/logger.ts'
import { Group, SlabPool } from './group.ts'
import { nodeWalIo, type WalIo } from './io.ts'
import { MAX_PAYLOAD_LIMIT } from './record.ts'
import { recoverLog, type SegmentRange } from './recovery.ts'
import { type SegmentFile, segmentName } from './segment.ts'
import type { WalSharedState } from './shared-state.ts'
import type { AppendOptions, RecoveryReport, WalOptions } from './types.ts'

export interface WalOpenOptions {
  /**
   * The highest cursor any sink has committed. If it is beyond the recovered head (the storage
   * lost acknowledged bytes in a power loss, or the WAL directory was replaced), the log restarts
   * at this position in a new segment, so no new record gets a position a sink counts as done.
   */
  readonly minHead?: number
}

export interface WalWriterStats {
  readonly groups: number
  readonly records: number
  readonly bytes: number
  readonly fsyncs: number
  readonly failedGroups: number
  readonly rotations: number
  /** Records in the most recent committed group. */
  readonly lastGroupRecords: number
}

/** Why WAL writes fail: the last failed group's error, while none has succeeded since. */
export interface WalWriteFailure {
  /** e.g. "no space left on device (ENOSPC)" */
  readonly reason: string
  readonly code: string | undefined
  readonly phase: 'write' | 'fdatasync'
  /** Date.now() of the failure. */
  readonly at: number
}

const DURABLE: AppendOptions = { durable: true }
/** While writes fail, a probe write (see writeFailure) runs at most this often. */
const PROBE_INTERVAL_MS = 1000
const PROBE_FILE = '.write-probe'

export class WalWriter {
  readonly #options: WalOptions
  readonly #state: WalSharedState
  readonly #logger: Logger | undefined
  readonly #io: WalIo
  readonly #pool = new SlabPool()

  #file: FileHandle | undefined
  #active: SegmentFile | undefined
  /** Durable bytes in the active segment; the file is this long between groups. */
  #activeSize = 0
  /** Segments before the active one, oldest first. */
  readonly #sealed: SegmentRange[] = []

  #pending: Group
  #inFlightBytes = 0
  #inFlightRecords = 0
  /** The drain loop, while a group is being written or fsync'd. */
  #running: Promise<void> | undefined
  #timer: NodeJS.Timeout | undefined
  #immediate: NodeJS.Immediate | undefined
  /** A failed group left bytes past the durable end that could not be cut yet. */
  #needsRepair = false
  #opened = false
  #closed = false
  #closing: Promise<void> | undefined
  /** Deletions run one at a time; they touch #sealed across awaits. */
  #deleting: Promise<unknown> = Promise.resolve()

  /** Ends the drain loop's spacing wait early (groupCommitBytes reached, or closing). */
  #wake: (() => void) | undefined
  /** performance.now() when the last group started (groupCommitDelayMs spacing). */
  #lastGroupStart = Number.NEGATIVE_INFINITY
  #groups = 0
  #records = 0
  #bytes = 0
  #fsyncs = 0
  #failedGroups = 0
  #rotations = 0
  #lastGroupRecords = 0
  #failure: WalWriteFailure | undefined
  #failedBytes = 0
  #probing: Promise<void> | undefined
  #probedAt = 0

  /** `io` is a seam for tests (fault injection, fsync counting); production uses the default. */
  constructor(options: WalOptions, state: WalSharedState, logger?: Logger, io: WalIo = nodeWalIo) {
    checkOptions(options)
    this.#options = options
    this.#state = state
    this.#logger = logger
    this.#io = io
    this.#pending = new Group(this.#pool)
  }

  /** Recovers the log (see recovery.ts) and makes the writer ready; call once. */
  async open(options: WalOpenOptions = {}): Promise<RecoveryReport> {
    if (this.#opened || this.#closed) throw new Error('WalWriter.open() may be called once')
    const { dir, maxRecordBytes } = this.#options
    const recovered = await recoverLog(dir, maxRecordBytes, this.#io)
    this.#sealed.push(...recovered.sealed)
    if (recovered.truncatedBytes > 0) {
      this.#logger?.warn(
        {
          segment: recovered.tail?.segment.name,
          truncatedBytes: recovered.truncatedBytes,
          at: recovered.stop?.offset,
          reason: recovered.stop?.reason,
        },
        'WalTailTruncated',
      )
    }

    const minHead = options.minHead
    const wanted = minHead !== undefined && Number.isSafeInteger(minHead) && minHead > 0 ? minHead : 0
    let skippedBytes = 0
    if (recovered.tail) {
      this.#active = recovered.tail.segment
      this.#file = recovered.tail.file
      this.#activeSize = recovered.tail.size
      if (wanted > this.head) {
        skippedBytes = wanted - this.head
        await this.#jumpTo(wanted)
      }
    } else {
      skippedBytes = wanted
      await this.#startFirstSegment(wanted)
    }
    if (skippedBytes > 0) {
      this.#logger?.warn({ from: this.head - skippedBytes, to: this.head, minHead: wanted }, 'WalHeadJumped')
    }

    this.#opened = true
    this.#state.oldest = this.oldest
    this.#state.durableHead = this.head
    return {
      segments: this.#sealed.length + 1,
      oldest: this.oldest,
      head: this.head,
      truncatedBytes: recovered.truncatedBytes,
      skippedBytes,
    }
  }

  /** End of the durable log: every record before it is fdatasync'd. */
  get head(): number {
    return (this.#active?.start ?? 0) + this.#activeSize
  }

  /** Start of the oldest segment on disk. */
  get oldest(): number {
    return this.#sealed[0]?.start ?? this.#active?.start ?? 0
  }

  /** Bytes appended but not yet durable (queued plus the group in flight). */
  get pendingBytes(): number {
    return this.#pending.bytes + this.#inFlightBytes
  }

  /** Appends not yet durable (queued plus the group in flight). */
  get pendingRecords(): number {
    return this.#pending.records + this.#inFlightRecords
  }

  get stats(): WalWriterStats {
    return {
      groups: this.#groups,
      records: this.#records,
      bytes: this.#bytes,
      fsyncs: this.#fsyncs,
      failedGroups: this.#failedGroups,
      rotations: this.#rotations,
      lastGroupRecords: this.#lastGroupRecords,
    }
  }

  /**
   * Appends one record; resolves with its END position (the cursor value once it is delivered)
   * when it is durable (or, with `durable: false`, written). Payloads under 16 KiB are copied at
   * once; a larger one is written from the caller's buffer, which must not change until then.
   */
  append(payload: Buffer, options: AppendOptions = DURABLE): Promise<number> {
    if (this.#closed) return Promise.reject(walError('SPW_ERR_WAL_CLOSED', 'the WAL is closed'))
    if (!this.#opened) return Promise.reject(walError('SPW_ERR_WAL_CLOSED', 'the WAL is not open yet'))
    if (payload.length === 0) return Promise.reject(new RangeError('a WAL record cannot be empty'))
    if (payload.length > this.#options.maxRecordBytes) {
      return Promise.reject(
        walError(
          'SPW_ERR_WAL_RECORD_TOO_LARGE',
          `record of ${payload.length} bytes exceeds the WAL maximum of ${this.#options.maxRecordBytes}`,
        ),
      )
    }
    const done = this.#pending.add(payload, options.durable)
    this.#schedule()
    return done
  }

  /**
   * Deletes every sealed segment that lies wholly below `minCursor` (the slowest sink's cursor);
   * the active segment is never deleted. Resolves with the number deleted.
   */
  deleteDelivered(minCursor: number): Promise<number> {
    const run = this.#deleting.then(() => this.#deleteBelow(minCursor))
    this.#deleting = run.catch(() => {})
    return run
  }

  /**
   * Undefined while writes work; else why the last group failed, until a group succeeds. A node
   * that /ready takes out of rotation gets no appends that could show the disk is back, so while
   * failing this probes (at most once a second): a file as large as the failed group (4 KiB to
   * 1 MiB) is written and fdatasync'd beside the segments, then deleted; if that works the failure
   * is cleared (a later failing group sets it again).
   */
  async writeFailure(): Promise<WalWriteFailure | undefined> {
    const failure = this.#failure
    if (!failure || this.#closed) return failure
    if (!this.#probing && Date.now() - this.#probedAt >= PROBE_INTERVAL_MS) {
      this.#probing = this.#probe(failure).finally(() => {
        this.#probedAt = Date.now()
        this.#probing = undefined
      })
    }
    await this.#probing
    return this.#failure
  }

  async #probe(failure: WalWriteFailure): Promise<void> {
    const path = join(this.#options.dir, PROBE_FILE)
    const size = Math.min(1024 * 1024, Math.max(4096, this.#failedBytes))
    let file: FileHandle | undefined
    try {
      file = await this.#io.open(path, 'w')
      if ((await this.#io.writev(file, [Buffer.alloc(size)], 0)) < size) return
      await this.#io.datasync(file)
      if (this.#failure === failure) this.#failure = undefined
    } catch {
      // Still failing: the failure stays as the last group left it.
    } finally {
      await file?.close().catch(() => {})
      await this.#io.unlink(path).catch(() => {})
    }
  }

  /** Writes and fsyncs what is queued, then closes the segment; later appends reject. */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    this.#closed = true
    this.#clearTimers()
    this.#wake?.()
    if (this.#opened && !this.#running && this.#pending.records > 0) this.#start()
    while (this.#running) await this.#running
    await this.#deleting
    const file = this.#file
    this.#file = undefined
    if (file) {
      try {
        if (!this.#needsRepair) await this.#io.datasync(file)
      } finally {
        await file.close()
      }
    }
    this.#state.wake()
  }

  #schedule(): void {
    if (this.#running) {
      // The drain loop takes this group when the current one is done, or now if it is spacing.
      if (this.#wake && this.#pending.bytes >= this.#options.groupCommitBytes) this.#wake()
      return
    }
    if (this.#pending.bytes >= this.#options.groupCommitBytes) {
      this.#start()
    } else if (!this.#timer && !this.#immediate) {
      // Groups start at most once per groupCommitDelayMs: an append to a WAL idle for longer is
      // written at the end of this turn of the event loop (so the requests parsed in the same turn
      // share one fsync); one that follows a group closely waits for the rest of the spacing.
      const wait = this.#spacing()
      if (wait > 0) {
        this.#timer = setTimeout(() => this.#start(), wait)
      } else {
        this.#immediate = setImmediate(() => this.#start())
      }
    }
  }

  /** Milliseconds before the next group may start (groupCommitDelayMs after the last one started). */
  #spacing(): number {
    const delay = this.#options.groupCommitDelayMs
    return delay > 0 ? Math.ceil(this.#lastGroupStart + delay - performance.now()) : 0
  }

  #start(): void {
    this.#clearTimers()
    if (this.#running || this.#pending.records === 0) return
    this.#running = this.#drain()
  }

  async #drain(): Promise<void> {
    while (this.#pending.records > 0) {
      // An fdatasync costs the kernel about as much CPU for 300 bytes as for 300 KB: under load,
      // spacing the groups makes them larger and the fsyncs fewer (groupCommitDelayMs).
      const wait = !this.#closed && this.#pending.bytes < this.#options.groupCommitBytes ? this.#spacing() : 0
      if (wait > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => this.#wake!(), wait)
          this.#wake = () => {
            clearTimeout(timer)
            this.#wake = undefined
            resolve()
          }
        })
      }
      this.#lastGroupStart = performance.now()
      const group = this.#pending
      this.#pending = new Group(this.#pool)
      await this.#commit(group)
    }
    // Cleared in the same synchronous step as the emptiness check, so an append cannot slip in
    // between and find the loop "running" after it has ended.
    this.#running = undefined
  }

  /** Writes one group; never throws (failures reject the group's appends). */
  async #commit(group: Group): Promise<void> {
    const bytes = group.bytes
    this.#inFlightBytes = bytes
    this.#inFlightRecords = group.records
    try {
      let start: number
      try {
        if (this.#needsRepair) await this.#repair()
        if (this.#activeSize >= this.#options.segmentBytes) await this.#rotate()
        start = this.head
        await this.#writeAll(group.buffers(), bytes, this.#activeSize)
      } catch (error) {
        await this.#fail(group, error, 'write')
        return
      }
      // The kernel holds a copy now: slabs can serve the next group, buffered appends can answer.
      group.release()
      group.resolveBuffered(start)
      try {
        this.#fsyncs++
        await this.#io.datasync(this.#file!)
      } catch (error) {
        await this.#fail(group, error, 'fdatasync')
        return
      }
      this.#activeSize += bytes
      this.#groups++
      this.#records += group.records
      this.#bytes += bytes
      this.#lastGroupRecords = group.records
      group.resolveDurable(start)
      this.#state.durableHead = this.head
      this.#failure = undefined
    } finally {
      this.#inFlightBytes = 0
      this.#inFlightRecords = 0
    }
  }

  /** One positional writev, continued if the kernel took only part of it. */
  async #writeAll(buffers: Buffer[], total: number, position: number): Promise<void> {
    const file = this.#file!
    let rest = buffers
    let left = total
    let at = position
    for (;;) {
      const written = await this.#io.writev(file, rest, at)
      if (written >= left) return
      if (written <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' })
      left -= written
      at += written
      let skip = written
      let i = 0
      while (skip >= rest[i].length) skip -= rest[i++].length
      rest = [rest[i].subarray(skip), ...rest.slice(i + 1)]
    }
  }

  async #fail(group: Group, cause: unknown, phase: 'write' | 'fdatasync'): Promise<void> {
    const code = (cause as NodeJS.ErrnoException)?.code
    const detail = cause instanceof Error ? cause.message : String(cause)
    const error = walError(
      'SPW_ERR_WAL_IO',
      `WAL ${phase} failed${code ? ` (${code})` : ''}: ${detail}`,
      cause,
    )
    this.#failedGroups++
    const errno = (cause as NodeJS.ErrnoException)?.errno
    const described = typeof errno === 'number' && errno < 0 ? describeErrno(errno) : undefined
    this.#failure = {
      reason: described ? `${described}${code ? ` (${code})` : ''}` : detail,
      code,
      phase,
      at: Date.now(),
    }
    this.#failedBytes = group.bytes
    try {
      await this.#repair()
    } catch (repairError) {
      this.#needsRepair = true
      this.#logger?.error({ err: repairError, durableSize: this.#activeSize }, 'WalRepairFailed')
    }
    // Answered after the repair: whoever sees the failure finds the log already cut back (a test
    // that looked at once raced the truncate on a slow machine).
    group.reject(error)
    group.release()
    this.#logger?.error({ err: cause, phase, records: group.records, bytes: group.bytes }, 'WalGroupFailed')
  }

  /** Cuts the active segment back to its durable end: no partial group may stay in the log. */
  async #repair(): Promise<void> {
    await this.#io.truncate(this.#file!, this.#activeSize)
    await this.#io.datasync(this.#file!)
    this.#needsRepair = false
  }

  /**
   * Seals the active segment and starts the next one, named by the head. The new file and its
   * directory entry are made durable before the old one is let go; if any step fails the old
   * segment stays active and the next group retries (opening with 'w+' reuses a leftover empty
   * file of the same name).
   */
  async #rotate(): Promise<void> {
    const previous = this.#active!
    const previousFile = this.#file!
    const next = await this.#createSegment(this.head)
    this.#sealed.push({ ...previous, end: this.head })
    this.#active = next.segment
    this.#file = next.file
    this.#activeSize = 0
    this.#rotations++
    await this.#release(previous, previousFile)
    this.#logger?.info(
      { sealed: previous.name, segment: next.segment.name, start: next.segment.start },
      'WalSegmentRotated',
    )
  }

  /** Restarts the log at `position` > head (see WalOpenOptions.minHead). */
  async #jumpTo(position: number): Promise<void> {
    const previous = this.#active!
    const previousFile = this.#file!
    const previousSize = this.#activeSize
    const next = await this.#createSegment(position)
    this.#active = next.segment
    this.#file = next.file
    this.#activeSize = 0
    await this.#release(previous, previousFile)
    if (previousSize === 0) {
      // Nothing in it: an empty segment would only be a confusing link in the chain.
      await this.#io.unlink(previous.path)
    } else {
      this.#sealed.push({ ...previous, end: previous.start + previousSize })
    }
  }

  async #startFirstSegment(start: number): Promise<void> {
    const first = await this.#createSegment(start)
    this.#active = first.segment
    this.#file = first.file
    this.#activeSize = 0
  }

  async #createSegment(start: number): Promise<{ segment: SegmentFile; file: FileHandle }> {
    const name = segmentName(start)
    const segment = { name, path: join(this.#options.dir, name), start }
    const file = await this.#io.open(segment.path, 'w+')
    try {
      await this.#io.syncDir(this.#options.dir)
    } catch (error) {
      await file.close().catch(() => {})
      throw error
    }
    return { segment, file }
  }

  /** Closes a segment the writer no longer writes; its groups were all fdatasync'd already. */
  async #release(segment: SegmentFile, file: FileHandle): Promise<void> {
    try {
      await this.#io.datasync(file)
      await file.close()
    } catch (error) {
      this.#logger?.error({ err: error, segment: segment.name }, 'WalSegmentCloseFailed')
    }
  }

  async #deleteBelow(minCursor: number): Promise<number> {
    let deleted = 0
    while (this.#sealed.length > 0 && this.#sealed[0].end <= minCursor) {
      const segment = this.#sealed[0]
      try {
        await this.#io.unlink(segment.path)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
      }
      // Rotation only pushes at the end and deletions are serialised, so [0] is still `segment`.
      this.#sealed.shift()
      deleted++
      this.#logger?.info(
        { segment: segment.name, start: segment.start, end: segment.end },
        'WalSegmentDeleted',
      )
    }
    // No directory fsync: a deletion lost in a crash brings back a segment every cursor has
    // passed, which the next sweep deletes again.
    if (deleted > 0) this.#state.oldest = this.oldest
    return deleted
  }

  #clearTimers(): void {
    if (this.#timer) clearTimeout(this.#timer)
    if (this.#immediate) clearImmediate(this.#immediate)
    this.#timer = undefined
    this.#immediate = undefined
  }
}

function describeErrno(errno: number): string | undefined {
  try {
    return getSystemErrorMessage(errno)
  } catch {
    return undefined
  }
}

function walError(code: ErrorCode, message: string, cause?: unknown) {
  return spillwayError(code, message, cause === undefined ? undefined : { cause })
}

function checkOptions(options: WalOptions): void {
  const positive = (name: keyof WalOptions, max = Number.MAX_SAFE_INTEGER) => {
    const value = options[name]
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
      throw new RangeError(`WAL option ${name} must be an integer between 1 and ${max}, got ${String(value)}`)
    }
  }
  positive('segmentBytes')
  positive('groupCommitBytes')
  positive('maxRecordBytes', MAX_PAYLOAD_LIMIT)
  const delay = options.groupCommitDelayMs
  if (!Number.isFinite(delay) || delay < 0) {
    throw new RangeError(`WAL option groupCommitDelayMs must be ≥ 0, got ${String(delay)}`)
  }
  if (typeof options.dir !== 'string' || options.dir === '')
    throw new RangeError('WAL option dir is required')
}

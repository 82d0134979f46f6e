/**
 * The dead-letter store: events Spillway accepted responsibility for but could not deliver or
 * accept — invalid events of a batch request (intake) and events a sink refused permanently
 * (delivery). Append-only JSONL files under `<dataDir>/deadletter/`, one line per event:
 *   {"at":1723475612000,"sink":"duckdb","reason":"…","index":3,"position":4096,"event":{…}}
 * `append` resolves only after the lines are fdatasync'd, so delivery can move a cursor past a
 * dead-lettered event without losing it (never silently dropped: G2, docs/ARCHITECTURE.md
 * "Guarantees").
 *
 * Each store instance writes its own file (`<source>-<time>-<pid>-<thread>.jsonl`): the HTTP
 * thread and the delivery thread both append, and separate files keep their lines from
 * interleaving. `list()` reads every file of the directory.
 *
 * Bounds (G4, docs/ARCHITECTURE.md "Guarantees"). The directory holds at most
 * `maxDeadLetterBytes` and `maxDeadLetterEntries`,
 * counted over every file, whoever wrote it. An append that would pass either bound is refused
 * whole, before a byte is written, with SPW_ERR_DEADLETTER_FULL (503, retryable, Retry-After
 * 60 s): nothing of its request is accepted, so no invalid event is ever answered as kept and then
 * lost, and delivery does not move its cursor past an event it could not keep. Only an operator
 * frees room (`spillway dlq purge`). Like admission, an empty store always takes one append, so a
 * bound below one batch cannot refuse it for ever.
 *
 * Writers and `dlq purge`. Every append and every rewrite of a file by `dropDeadLetters` happens
 * under one exclusive kernel lock on `append.lock` (an open-file-description lock, released by
 * the kernel if its holder dies), so the bounds hold across threads and processes and a purge
 * never races an append. A purge blanks the dropped lines (an empty line is no entry), writes the
 * file anew beside it and renames it over; a file left without entries is removed. Under the
 * lock, a writer whose file was replaced reopens it, and one whose file was removed starts a new
 * file: a name is never reused, so a line id never names two entries.
 *
 * A failed append (ENOSPC, EIO) rejects with SPW_ERR_DEADLETTER_IO (503, retryable) and cuts the
 * file back to its last complete line, so a half-written line never glues itself to the next
 * entry; if even that fails, the file is abandoned (its torn tail is skipped by readers, as after
 * a crash) and the next append starts a new file.
 *
 * Each line is identified by `<file>#<line number>` (see `scanDeadLetters`): lines are appended,
 * or blanked by a purge, never moved, so the identity of a line never changes; `spillway dlq
 * replay` records what it did to a line under that name in `replayed/` (see dlq-replay.ts).
 *
 * Here: the store (append under the bounds). The lock, usage and reading of the directory are in
 * dead-letter-files.ts, purging in dead-letter-purge.ts; this module exports all of it.
 */

import { randomBytes } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import { mkdir, open } from 'node:fs/promises'
import { join } from 'node:path'
import { threadId } from 'node:worker_threads'
import type { Config } from '../config/schema.ts'
import { type SpillwayError, spillwayError } from '../errors.ts'
import { formatBytes } from '../format.ts'
import {
  DEFAULT_LOCK_TIMEOUT_MS,
  type DeadLetterEntry,
  type DeadLetterUsage,
  exists,
  ioError,
  StoreLock,
  sameFile,
  scanDeadLetters,
  UsageCounter,
} from './dead-letter-files.ts'
import { syncDir } from './durable-file.ts'

export {
  type DeadLetterEntry,
  type DeadLetterUsage,
  deadLetterUsage,
  deadLetterUsageReader,
  type StoredDeadLetter,
  scanDeadLetters,
} from './dead-letter-files.ts'
export { type DropOptions, type DropReport, dropDeadLetters } from './dead-letter-purge.ts'

/** The store's bounds (`maxDeadLetterBytes`, `maxDeadLetterEntries`). */
export interface DeadLetterLimits {
  readonly maxBytes: number
  readonly maxEntries: number
}

export interface DeadLetterStoreOptions {
  /** Prefix of this instance's file name, e.g. `intake` or `delivery`. */
  readonly source?: string
  /** Without limits the store is unbounded (tests, tools). */
  readonly limits?: DeadLetterLimits
  /** How long an append waits for a running purge to let go of the lock. */
  readonly lockTimeoutMs?: number
}

/** The store's bounds as configured. */
export function deadLetterLimits(
  config: Pick<Config, 'maxDeadLetterBytes' | 'maxDeadLetterEntries'>,
): DeadLetterLimits {
  return { maxBytes: config.maxDeadLetterBytes, maxEntries: config.maxDeadLetterEntries }
}

/** Retry-After of a refusal by a full store: only an operator frees room, so not every second. */
export const FULL_RETRY_AFTER_SECONDS = 60

export class DeadLetterStore {
  readonly dir: string
  readonly #source: string
  readonly #limits: DeadLetterLimits | undefined
  readonly #lock: StoreLock
  readonly #usage: UsageCounter
  #file: FileHandle | undefined
  #path: string | undefined
  /** Bytes of complete, fsync'd lines in the current file: where a failed append is cut back to. */
  #size = 0
  /** Appends run one after another so each call's lines are contiguous and fsync'd in order. */
  #tail: Promise<void> = Promise.resolve()
  #count = 0

  constructor(dir: string, options: DeadLetterStoreOptions = {}) {
    this.dir = dir
    this.#source = options.source ?? 'spillway'
    this.#limits = options.limits
    this.#lock = new StoreLock(dir, options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS)
    this.#usage = new UsageCounter(dir)
  }

  /** Entries appended through this instance since it was created. */
  get count(): number {
    return this.#count
  }

  /**
   * Resolves once every entry is on disk (written and fdatasync'd). Rejects with
   * SPW_ERR_DEADLETTER_FULL, writing nothing, when the entries would pass a bound.
   */
  append(entries: readonly DeadLetterEntry[]): Promise<void> {
    if (entries.length === 0) return this.#tail
    const text = entries.map((entry) => `${stringify(entry)}\n`).join('')
    const bytes = Buffer.byteLength(text)
    const run = this.#tail.then(async () => {
      const unlock = await this.#lock.take(entries.length)
      try {
        if (this.#limits) await this.#checkRoom(this.#limits, entries.length, bytes)
        try {
          const file = await this.#open()
          await file.appendFile(text)
          await file.datasync()
        } catch (error) {
          await this.#cutBack()
          throw ioError(error, entries.length)
        }
      } finally {
        unlock()
      }
      this.#size += bytes
      this.#count += entries.length
    })
    // A failed append fails its caller; the next one goes on from a clean end.
    this.#tail = run.catch(() => {})
    return run
  }

  /** Every entry of every file in the directory, oldest file first. */
  async list(): Promise<DeadLetterEntry[]> {
    await this.#tail
    return (await scanDeadLetters(this.dir)).map((stored) => stored.entry)
  }

  /** Bytes and entries of the whole directory (every writer's files). */
  async usage(): Promise<DeadLetterUsage> {
    await this.#tail
    return this.#usage.read()
  }

  async close(): Promise<void> {
    await this.#tail
    await this.#file?.close()
    this.#file = undefined
    await this.#lock.close()
  }

  async #checkRoom(limits: DeadLetterLimits, entries: number, bytes: number): Promise<void> {
    let usage: DeadLetterUsage
    try {
      usage = await this.#usage.read()
    } catch (error) {
      throw ioError(error, entries)
    }
    // An empty store takes any one append: a bound below one batch must not refuse it for ever.
    if (usage.entries === 0) return
    const overBytes = usage.bytes + bytes > limits.maxBytes
    const overEntries = usage.entries + entries > limits.maxEntries
    if (!overBytes && !overEntries) return
    const bound = overBytes
      ? `${formatBytes(usage.bytes)} + ${formatBytes(bytes)} would pass maxDeadLetterBytes (${formatBytes(limits.maxBytes)})`
      : `${usage.entries} + ${entries} entries would pass maxDeadLetterEntries (${limits.maxEntries})`
    throw fullError(
      `the dead-letter store is full: keeping ${entries} rejected event${entries === 1 ? '' : 's'} there ` +
        `(${bound}); nothing of the request was accepted, retry after ${FULL_RETRY_AFTER_SECONDS} s ` +
        '(an operator frees room with `spillway dlq purge`)',
    )
  }

  async #open(): Promise<FileHandle> {
    if (this.#file) {
      // A purge may have replaced this file (reopen it: its lines kept their numbers) or removed
      // it (start a new one: the old name, and so the ids of its lines, must not come back).
      if (await sameFile(this.#file, this.#path!)) return this.#file
      const replaced = await exists(this.#path!)
      await this.#file.close().catch(() => {})
      this.#file = undefined
      if (!replaced) this.#path = undefined
    }
    await mkdir(this.dir, { recursive: true })
    this.#path ??= join(
      this.dir,
      `${this.#source}-${stamp()}-${process.pid}-${threadId}-${randomBytes(3).toString('hex')}.jsonl`,
    )
    const file = await open(this.#path, 'a')
    try {
      this.#size = (await file.stat()).size
      // The file's directory entry must be durable too, or an fsync'd line could vanish with it.
      await syncDir(this.dir)
    } catch (error) {
      await file.close().catch(() => {})
      throw error
    }
    this.#file = file
    return file
  }

  /** After a failed append: drop the partial line, or give up on this file. */
  async #cutBack(): Promise<void> {
    const file = this.#file
    if (!file) return
    try {
      await file.truncate(this.#size)
      await file.datasync()
    } catch {
      // The torn tail stays at the end of a file nobody appends to again: readers skip it.
      await file.close().catch(() => {})
      this.#file = undefined
      this.#path = undefined
    }
  }
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-')
}

function fullError(message: string): SpillwayError {
  return Object.assign(spillwayError('SPW_ERR_DEADLETTER_FULL', message), {
    retryAfterSeconds: FULL_RETRY_AFTER_SECONDS,
  })
}

/** Containers deeper than this are cut when an event cannot be serialised whole. */
const MAX_STORED_DEPTH = 64

/**
 * JSON.stringify that never throws: a BigInt, a cycle, or a value nested deeper than the stack
 * allows (JSON.parse accepts millions of levels, JSON.stringify does not) must not lose the entry
 * or fail the request. Such an event is stored cut at MAX_STORED_DEPTH levels.
 */
function stringify(entry: DeadLetterEntry): string {
  try {
    return JSON.stringify(entry)
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error)
    try {
      return JSON.stringify({
        ...entry,
        event: cut(entry.event, 0, new Set()),
        eventTruncated: `the event could not be stored whole (${why}); shown cut at ${MAX_STORED_DEPTH} levels`,
      })
    } catch {
      return JSON.stringify({
        ...entry,
        event: null,
        eventTruncated: `the event could not be stored (${why})`,
      })
    }
  }
}

function cut(value: unknown, depth: number, seen: Set<object>): unknown {
  switch (typeof value) {
    case 'bigint':
      return `${value}n`
    case 'function':
    case 'symbol':
    case 'undefined':
      return null
    case 'object':
      break
    default:
      return value
  }
  if (value === null) return null
  if (depth >= MAX_STORED_DEPTH) return '[nested too deep]'
  if (seen.has(value)) return '[cycle]'
  seen.add(value)
  let out: unknown
  if (Array.isArray(value)) {
    out = value.map((item) => cut(item, depth + 1, seen))
  } else {
    const copy: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) {
      Object.defineProperty(copy, key, {
        value: cut(item, depth + 1, seen),
        enumerable: true,
        writable: true,
        configurable: true,
      })
    }
    out = copy
  }
  seen.delete(value)
  return out
}

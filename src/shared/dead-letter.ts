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
 */

import { randomBytes } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { threadId } from 'node:worker_threads'
import type { Config } from '../config/schema.ts'
import { isSpillwayError, type SpillwayError, spillwayError } from '../errors.ts'
import { formatBytes } from '../format.ts'
import { Backoff } from './backoff.ts'
import { syncDir } from './durable-file.ts'
import { sleep } from './timeout.ts'

export interface DeadLetterEntry {
  /** Unix milliseconds: when the event was received (intake) or refused (delivery). */
  readonly at: number
  /** The sink that refused it; absent for events refused at intake. */
  readonly sink?: string
  readonly reason: string
  /** Index in the request's batch (intake) or in its WAL record (delivery). */
  readonly index?: number
  /** WAL position of the record that held the event (delivery only). */
  readonly position?: number
  /**
   * The event as received (intake: any JSON value, or the raw text of an NDJSON line that was not
   * JSON) or as stored in the WAL (delivery: a NormalizedEvent, or the text of a record that did
   * not decode).
   */
  readonly event: unknown
  /** Set when `event` could not be stored whole (e.g. nested too deep to serialise). */
  readonly eventTruncated?: string
}

/** One line of the store, with the name it keeps for its whole life. */
export interface StoredDeadLetter {
  /** `<file>#<line>`, e.g. `intake-2026-…-1234-0-a1b2c3.jsonl#17`. */
  readonly id: string
  readonly file: string
  /** 1-based line number in `file`. */
  readonly line: number
  readonly entry: DeadLetterEntry
}

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

/** What the directory holds now, every writer's files together. */
export interface DeadLetterUsage {
  readonly bytes: number
  readonly entries: number
  readonly files: number
}

/** The store's bounds as configured. */
export function deadLetterLimits(
  config: Pick<Config, 'maxDeadLetterBytes' | 'maxDeadLetterEntries'>,
): DeadLetterLimits {
  return { maxBytes: config.maxDeadLetterBytes, maxEntries: config.maxDeadLetterEntries }
}

/** Retry-After of a refusal by a full store: only an operator frees room, so not every second. */
export const FULL_RETRY_AFTER_SECONDS = 60
const LOCK_FILE = 'append.lock'
const DEFAULT_LOCK_TIMEOUT_MS = 30_000

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

interface NativeLocks {
  tryLock(fd: number): boolean
  unlock(fd: number): void
}

const native = createRequire(import.meta.url)('fs-native-extensions') as NativeLocks

/**
 * The exclusive lock every append and every purge rewrite holds (see the header). Polled rather
 * than waited for in the thread pool, so a stopped purge cannot hold a libuv thread, and an
 * append gives up (503) instead of hanging.
 */
class StoreLock {
  readonly #dir: string
  readonly #timeoutMs: number
  #handle: FileHandle | undefined

  constructor(dir: string, timeoutMs: number) {
    this.#dir = dir
    this.#timeoutMs = timeoutMs
  }

  /** Resolves with the function that lets go. */
  async take(entries: number): Promise<() => void> {
    try {
      if (!this.#handle) {
        await mkdir(this.#dir, { recursive: true })
        this.#handle = await open(join(this.#dir, LOCK_FILE), 'a')
      }
    } catch (error) {
      throw ioError(error, entries)
    }
    const fd = this.#handle.fd
    const deadline = Date.now() + this.#timeoutMs
    // Made only when the lock is busy (a purge, another writer): the common append allocates nothing.
    let pause: Backoff | undefined
    while (!native.tryLock(fd)) {
      if (Date.now() > deadline) {
        throw ioError(
          new Error(`${join(this.#dir, LOCK_FILE)} stayed locked for ${this.#timeoutMs} ms (a dlq purge?)`),
          entries,
        )
      }
      pause ??= new Backoff({ initialMs: 1, maxMs: 50, jitter: 'none' })
      await sleep(pause.next())
    }
    return () => native.unlock(fd)
  }

  async close(): Promise<void> {
    await this.#handle?.close()
    this.#handle = undefined
  }
}

interface FileCount {
  readonly ino: number
  /** Where the next unread line starts (after the last newline counted). */
  scanned: number
  size: number
  entries: number
}

/**
 * Bytes and entries (non-empty lines) of the directory, read incrementally: a file is read only
 * from where the last reading stopped, and read again whole when a purge replaced it.
 */
class UsageCounter {
  readonly #dir: string
  #files = new Map<string, FileCount>()

  constructor(dir: string) {
    this.#dir = dir
  }

  async read(): Promise<DeadLetterUsage> {
    const next = new Map<string, FileCount>()
    let bytes = 0
    let entries = 0
    for (const name of await jsonlFiles(this.#dir)) {
      let info: Awaited<ReturnType<typeof stat>>
      try {
        info = await stat(join(this.#dir, name))
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue
        throw error
      }
      let count = this.#files.get(name)
      if (!count || count.ino !== info.ino || info.size < count.scanned) {
        count = { ino: info.ino, scanned: 0, size: 0, entries: 0 }
      }
      if (info.size > count.scanned) await countLines(join(this.#dir, name), count, info.size)
      count.size = info.size
      next.set(name, count)
      bytes += info.size
      entries += count.entries
    }
    this.#files = next
    return { bytes, entries, files: next.size }
  }
}

/** Reads `path` from `count.scanned` up to `end`, counting the non-empty complete lines. */
async function countLines(path: string, count: FileCount, end: number): Promise<void> {
  let file: FileHandle
  try {
    file = await open(path, 'r')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
    throw error
  }
  try {
    const buffer = Buffer.allocUnsafe(1024 * 1024)
    let position = count.scanned
    let lineStart = count.scanned
    while (position < end) {
      const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, end - position), position)
      if (bytesRead === 0) break
      let at = buffer.indexOf(10)
      while (at !== -1 && at < bytesRead) {
        const absolute = position + at
        if (absolute > lineStart) count.entries++
        lineStart = absolute + 1
        at = buffer.indexOf(10, at + 1)
      }
      position += bytesRead
    }
    count.scanned = lineStart
  } finally {
    await file.close()
  }
}

/** Bytes and entries of a dead-letter directory now (for metrics and the dlq commands). */
export async function deadLetterUsage(dir: string): Promise<DeadLetterUsage> {
  return new UsageCounter(dir).read()
}

/** A reader of a directory's usage that keeps its counts between calls (a metrics source). */
export function deadLetterUsageReader(dir: string): () => Promise<DeadLetterUsage> {
  const counter = new UsageCounter(dir)
  let reading: Promise<DeadLetterUsage> | undefined
  return () => {
    // Scrapes that overlap share one reading.
    reading ??= counter.read().finally(() => {
      reading = undefined
    })
    return reading
  }
}

export interface DropOptions {
  /** Count what would be dropped; change nothing. */
  readonly dryRun?: boolean
  readonly lockTimeoutMs?: number
}

export interface DropReport {
  readonly dryRun: boolean
  /** Entries removed (or that would be). */
  readonly entries: number
  /** Bytes freed (or that would be), torn tails of crashed appends included. */
  readonly bytes: number
  /** Files removed because no entry was left in them. */
  readonly filesRemoved: number
}

/**
 * Removes the entries `select` picks, safely while servers append (see the header): file by file,
 * under the store's lock, the dropped lines are blanked and the file replaced; a file left with
 * no entry is removed. `select` sees every entry as it is under the lock, so an entry appended
 * after the caller looked is judged too, never lost unseen.
 */
export async function dropDeadLetters(
  dir: string,
  select: (stored: StoredDeadLetter) => boolean,
  options: DropOptions = {},
): Promise<DropReport> {
  const dryRun = options.dryRun ?? false
  const lock = new StoreLock(dir, options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS)
  let entries = 0
  let bytes = 0
  let filesRemoved = 0
  try {
    await removeLeftovers(dir, dryRun)
    for (const name of await jsonlFiles(dir)) {
      const unlock = await lock.take(0)
      try {
        const path = join(dir, name)
        let text: string
        try {
          text = await readFile(path, 'utf8')
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue
          throw error
        }
        const lines = text.split('\n')
        // Text after the last newline is the torn tail of an append that never returned.
        const torn = lines.pop() ?? ''
        let dropped = 0
        let left = 0
        for (let i = 0; i < lines.length; i++) {
          if (lines[i].length === 0) continue
          const entry = parseEntry(lines[i])
          if (entry && select({ id: `${name}#${i + 1}`, file: name, line: i + 1, entry })) {
            lines[i] = ''
            dropped++
          } else {
            left++
          }
        }
        if (dropped === 0 && torn.length === 0) continue
        const kept = left === 0 ? '' : lines.map((line) => `${line}\n`).join('')
        entries += dropped
        bytes += Buffer.byteLength(text) - Buffer.byteLength(kept)
        if (dryRun) {
          if (left === 0) filesRemoved++
          continue
        }
        if (left === 0) {
          await unlink(path)
          filesRemoved++
        } else {
          const temporary = `${path}.purging`
          const file = await open(temporary, 'w')
          try {
            await file.writeFile(kept)
            await file.datasync()
          } finally {
            await file.close()
          }
          await rename(temporary, path)
        }
        await syncDir(dir)
      } finally {
        unlock()
      }
    }
  } finally {
    await lock.close()
  }
  return { dryRun, entries, bytes, filesRemoved }
}

/** A purge that died between writing its new file and renaming it leaves the new file behind. */
async function removeLeftovers(dir: string, dryRun: boolean): Promise<void> {
  if (dryRun) return
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
    throw error
  }
  for (const name of names) {
    if (name.endsWith('.jsonl.purging')) await unlink(join(dir, name)).catch(() => {})
  }
}

async function sameFile(file: FileHandle, path: string): Promise<boolean> {
  try {
    const [open, named] = await Promise.all([file.stat(), stat(path)])
    return open.ino === named.ino && open.dev === named.dev
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw error
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}

/** The `.jsonl` files of `dir`, oldest first (names start with a timestamp); none when it is missing. */
async function jsonlFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true }))
      .filter((dirent) => dirent.isFile() && dirent.name.endsWith('.jsonl'))
      .map((dirent) => dirent.name)
      .sort(byTimeInName)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
}

function parseEntry(line: string): DeadLetterEntry | undefined {
  let entry: unknown
  try {
    entry = JSON.parse(line)
  } catch {
    return undefined
  }
  return typeof entry === 'object' && entry !== null && 'reason' in entry
    ? (entry as DeadLetterEntry)
    : undefined
}

/**
 * Every line of every `.jsonl` file of `dir`, oldest file first (names start with a timestamp),
 * in file order. An empty line (dropped by a purge) is no entry; a line that does not parse — the
 * torn tail of a crash mid-append — is skipped: its append never returned, so nobody was told it
 * was stored.
 */
export async function scanDeadLetters(dir: string): Promise<StoredDeadLetter[]> {
  const stored: StoredDeadLetter[] = []
  for (const file of await jsonlFiles(dir)) {
    let text: string
    try {
      text = await readFile(join(dir, file), 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw error
    }
    let line = 0
    for (const content of text.split('\n')) {
      line++
      if (content.length === 0) continue
      const entry = parseEntry(content)
      if (entry) stored.push({ id: `${file}#${line}`, file, line, entry })
    }
  }
  return stored
}

/** `intake-2026-…` and `delivery-2026-…` sort by their timestamp, then by the whole name. */
function byTimeInName(a: string, b: string): number {
  const ta = a.slice(a.indexOf('-') + 1)
  const tb = b.slice(b.indexOf('-') + 1)
  return ta < tb ? -1 : ta > tb ? 1 : a < b ? -1 : a > b ? 1 : 0
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-')
}

function ioError(cause: unknown, entries: number) {
  if (isSpillwayError(cause)) return cause
  const code = (cause as NodeJS.ErrnoException)?.code
  const detail = code ?? (cause instanceof Error ? cause.message : String(cause))
  return spillwayError(
    'SPW_ERR_DEADLETTER_IO',
    `could not record ${entries} rejected event${entries === 1 ? '' : 's'} in the dead-letter store (${detail}); ` +
      'nothing of the request was accepted, retry later',
    { cause },
  )
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

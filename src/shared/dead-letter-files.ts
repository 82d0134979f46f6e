/**
 * The dead-letter directory as files (dead-letter.ts has the whole story): the lock every append
 * and purge holds, what the directory holds (bytes, entries), and reading its lines back.
 */
import type { FileHandle } from 'node:fs/promises'
import { mkdir, open, readdir, readFile, stat } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { isSpillwayError, spillwayError } from '../errors.ts'
import { Backoff } from './backoff.ts'
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

/** What the directory holds now, every writer's files together. */
export interface DeadLetterUsage {
  readonly bytes: number
  readonly entries: number
  readonly files: number
}

/** The file whose kernel lock every append and purge rewrite holds. */
const LOCK_FILE = 'append.lock'
/** How long an append or a purge waits for the lock before it gives up. */
export const DEFAULT_LOCK_TIMEOUT_MS = 30_000

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
export class StoreLock {
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
export class UsageCounter {
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

export async function sameFile(file: FileHandle, path: string): Promise<boolean> {
  try {
    const [open, named] = await Promise.all([file.stat(), stat(path)])
    return open.ino === named.ino && open.dev === named.dev
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw error
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}

/** The `.jsonl` files of `dir`, oldest first (names start with a timestamp); none when it is missing. */
export async function jsonlFiles(dir: string): Promise<string[]> {
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

export function parseEntry(line: string): DeadLetterEntry | undefined {
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

export function ioError(cause: unknown, entries: number) {
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

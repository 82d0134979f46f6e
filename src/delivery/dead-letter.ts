/**
 * The dead-letter store: events Spillway accepted responsibility for but could not deliver or
 * accept — invalid events of a batch request (intake) and events a sink refused permanently
 * (delivery). Append-only JSONL files under `<dataDir>/deadletter/`, one line per event:
 *   {"at":1723475612000,"sink":"duckdb","reason":"…","index":3,"position":4096,"event":{…}}
 * `append` resolves only after the lines are fdatasync'd, so delivery can move a cursor past a
 * dead-lettered event without losing it (G2: never silently dropped).
 *
 * Each store instance writes its own file (`<source>-<time>-<pid>-<thread>.jsonl`): the HTTP
 * thread and the delivery thread both append, and separate files keep their lines from
 * interleaving without any locking. `list()` reads every file of the directory.
 *
 * A failed append (ENOSPC, EIO) rejects with SPW_ERR_DEADLETTER_IO (503, retryable) and cuts the
 * file back to its last complete line, so a half-written line never glues itself to the next
 * entry; if even that fails, the file is abandoned (its torn tail is skipped by readers, as after
 * a crash) and the next append starts a new file.
 *
 * Each line is identified by `<file>#<line number>` (see `scanDeadLetters`): files are only ever
 * appended to, so the identity of a line never changes; `spillway dlq replay` records the lines
 * it replayed under that name in `replayed/` (see dlq-replay.ts).
 */
import { randomBytes } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import { mkdir, open, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { threadId } from 'node:worker_threads'
import { isSpillwayError, spillwayError } from '../errors.ts'
import { syncDir } from './cursor-file.ts'

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

export interface DeadLetterStoreOptions {
  /** Prefix of this instance's file name, e.g. `intake` or `delivery`. */
  readonly source?: string
}

export class DeadLetterStore {
  readonly dir: string
  readonly #source: string
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
  }

  /** Entries appended through this instance since it was created. */
  get count(): number {
    return this.#count
  }

  /** Resolves once every entry is on disk (written and fdatasync'd). */
  append(entries: readonly DeadLetterEntry[]): Promise<void> {
    if (entries.length === 0) return this.#tail
    const text = entries.map((entry) => `${stringify(entry)}\n`).join('')
    const bytes = Buffer.byteLength(text)
    const run = this.#tail.then(async () => {
      try {
        const file = await this.#open()
        await file.appendFile(text)
        await file.datasync()
      } catch (error) {
        await this.#cutBack()
        throw ioError(error, entries.length)
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

  async close(): Promise<void> {
    await this.#tail
    await this.#file?.close()
    this.#file = undefined
  }

  async #open(): Promise<FileHandle> {
    if (this.#file) return this.#file
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

/**
 * Every line of every `.jsonl` file of `dir`, oldest file first (names start with a timestamp),
 * in file order. A line that does not parse — the torn tail of a crash mid-append — is skipped:
 * its append never returned, so nobody was told it was stored.
 */
export async function scanDeadLetters(dir: string): Promise<StoredDeadLetter[]> {
  let names: string[]
  try {
    names = (await readdir(dir, { withFileTypes: true }))
      .filter((dirent) => dirent.isFile() && dirent.name.endsWith('.jsonl'))
      .map((dirent) => dirent.name)
      .sort(byTimeInName)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  const stored: StoredDeadLetter[] = []
  for (const file of names) {
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
      let entry: unknown
      try {
        entry = JSON.parse(content)
      } catch {
        continue
      }
      if (typeof entry === 'object' && entry !== null && 'reason' in entry) {
        stored.push({ id: `${file}#${line}`, file, line, entry: entry as DeadLetterEntry })
      }
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

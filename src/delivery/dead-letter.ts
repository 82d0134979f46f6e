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
 */
import { randomBytes } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import { mkdir, open, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { threadId } from 'node:worker_threads'
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
  /** The event as received or as stored in the WAL; may be any JSON value (even unparsable text). */
  readonly event: unknown
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
    const run = this.#tail.then(async () => {
      const file = await this.#open()
      await file.appendFile(text)
      await file.datasync()
      this.#count += entries.length
    })
    // A failed append fails its caller; the next one tries again on a fresh handle.
    this.#tail = run.catch(async () => {
      await this.#file?.close().catch(() => {})
      this.#file = undefined
    })
    return run
  }

  /** Every entry of every file in the directory, oldest file first. */
  async list(): Promise<DeadLetterEntry[]> {
    await this.#tail
    let names: string[]
    try {
      names = (await readdir(this.dir)).filter((name) => name.endsWith('.jsonl')).sort()
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw error
    }
    const entries: DeadLetterEntry[] = []
    for (const name of names) {
      const text = await readFile(join(this.dir, name), 'utf8')
      for (const line of text.split('\n')) {
        // A torn last line (crash mid-append, before the fsync returned) was never acknowledged.
        if (line.length === 0) continue
        try {
          entries.push(JSON.parse(line) as DeadLetterEntry)
        } catch {}
      }
    }
    return entries
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
    this.#file = await open(this.#path, 'a')
    // The file's directory entry must be durable too, or an fsync'd line could vanish with it.
    await syncDir(this.dir)
    return this.#file
  }
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-')
}

/** JSON.stringify that never throws (a BigInt or a cycle in `event` must not lose the entry). */
function stringify(entry: DeadLetterEntry): string {
  try {
    return JSON.stringify(entry)
  } catch (error) {
    return JSON.stringify({ ...entry, event: String(entry.event), stringifyError: String(error) })
  }
}

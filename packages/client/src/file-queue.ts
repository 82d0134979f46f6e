/**
 * The durable queue (Node): one append-only file, `<dir>/events.log`, so an app that crashes or
 * restarts loses nothing `track()` had resolved — the same idea as the server's WAL, simpler.
 *
 * Format: text lines. `+<event JSON>` is an event the client accepted; `-<JSON array of ids>`
 * forgets events that have their fate (sent, refused, dropped). Appends are group-committed: the
 * lines of every `append()` waiting while a write runs go out in the next write, with one
 * fdatasync, and each `append()` resolves after the fdatasync that covers it.
 *
 * Recovery (open): read every line; a last line without its newline is a torn write and is
 * ignored, as is any line that is not JSON (counted in `skippedLines`). What was appended and not
 * forgotten, in order, is `recovered`; the file is then rewritten with only those events
 * (write a temporary file, fsync, rename, fsync the directory), so it never grows across runs.
 * While running it is emptied once nothing is left, or rewritten the same way once it is over
 * `compactBytes` and less than half of it is still live.
 *
 * A forget line need not be durable: lost in a crash, it makes the next start send the events
 * again, and the server drops them as duplicates of their `event_id`.
 *
 * One process per directory: on Linux the lock is a socket bound in the abstract namespace under a
 * name derived from the directory's real path. The kernel frees it when the holder dies, however
 * it dies, and binding is atomic, so two starts cannot both win. (Other systems: no lock.)
 */
import { createHash } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import { mkdir, open, readFile, realpath, rename } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { clientError } from './errors.ts'
import type { EventStore, StoredEvent } from './store.ts'
import { utf8Length } from './validate.ts'

export interface FileQueueOptions {
  /** fdatasync every group commit (default). `false`: survives a crash of the process, not of the machine. */
  readonly fsync?: boolean
  /** Rewrite the file once it is over this many bytes and less than half live (default 4 MiB). */
  readonly compactBytes?: number
}

const FILE = 'events.log'

interface Group {
  readonly promise: Promise<void>
  resolve(): void
  reject(error: unknown): void
}

export class FileQueue implements EventStore {
  readonly recovered: readonly StoredEvent[]
  /** Lines of the file that were neither events nor forget records (torn or damaged). */
  readonly skippedLines: number
  readonly #dir: string
  readonly #path: string
  readonly #fsync: boolean
  readonly #compactBytes: number
  readonly #lock: Server | undefined
  readonly #live = new Map<string, string>()
  #liveBytes = 0
  #fileBytes = 0
  #file: FileHandle
  #buffer: string[] = []
  /** Ids whose `+` line is in #buffer, not yet in the file. */
  readonly #unwritten = new Set<string>()
  #next: Group | undefined
  #writing: Promise<void> | undefined
  #closed = false

  private constructor(
    dir: string,
    file: FileHandle,
    lock: Server | undefined,
    live: Map<string, string>,
    skipped: number,
    options: FileQueueOptions,
  ) {
    this.#dir = dir
    this.#path = join(dir, FILE)
    this.#file = file
    this.#lock = lock
    this.#fsync = options.fsync ?? true
    this.#compactBytes = options.compactBytes ?? 4 * 1024 * 1024
    this.skippedLines = skipped
    const recovered: StoredEvent[] = []
    for (const [id, line] of live) {
      recovered.push({ id, line })
      this.#live.set(id, line)
      this.#liveBytes += utf8Length(line) + 2
    }
    this.#fileBytes = this.#liveBytes
    this.recovered = recovered
  }

  /** Opens (creating) the queue in `dir`, recovers what a previous run left, and compacts it. */
  static async open(dir: string, options: FileQueueOptions = {}): Promise<FileQueue> {
    if (typeof dir !== 'string' || dir === '') {
      throw clientError('SPW_ERR_CLIENT_INVALID_OPTION', `dir must be a directory path, got ${String(dir)}`)
    }
    if (
      options.compactBytes !== undefined &&
      !(Number.isInteger(options.compactBytes) && options.compactBytes > 0)
    ) {
      throw clientError(
        'SPW_ERR_CLIENT_INVALID_OPTION',
        `compactBytes must be a positive integer, got ${String(options.compactBytes)}`,
      )
    }
    try {
      await mkdir(dir, { recursive: true })
      const real = await realpath(dir)
      const lock = await lockDirectory(real)
      try {
        const path = join(real, FILE)
        const { live, skipped } = parse(await readFile(path, 'utf8').catch(notFoundAsEmpty))
        await rewrite(real, live.values())
        const file = await open(path, 'a')
        return new FileQueue(real, file, lock, live, skipped, options)
      } catch (error) {
        lock?.close()
        throw error
      }
    } catch (error) {
      if ((error as { code?: string }).code?.startsWith('SPW_ERR_CLIENT_')) throw error
      throw clientError('SPW_ERR_CLIENT_STORAGE', `durable queue ${dir}: ${(error as Error).message}`, {
        cause: error,
      })
    }
  }

  get path(): string {
    return this.#path
  }

  /** Events appended and not forgotten. */
  get size(): number {
    return this.#live.size
  }

  append(events: readonly StoredEvent[]): Promise<void> {
    if (this.#closed)
      return Promise.reject(clientError('SPW_ERR_CLIENT_STORAGE', 'the durable queue is closed'))
    for (const event of events) {
      this.#buffer.push(`+${event.line}\n`)
      this.#unwritten.add(event.id)
      if (!this.#live.has(event.id)) this.#liveBytes += utf8Length(event.line) + 2
      this.#live.set(event.id, event.line)
    }
    return this.#commit()
  }

  remove(ids: readonly string[]): void {
    if (this.#closed) return
    const gone: string[] = []
    for (const id of ids) {
      const line = this.#live.get(id)
      if (line === undefined) continue
      this.#live.delete(id)
      this.#liveBytes -= utf8Length(line) + 2
      gone.push(id)
    }
    if (gone.length === 0) return
    this.#buffer.push(`-${JSON.stringify(gone)}\n`)
    this.#commit().catch(() => {
      // A lost forget record only means a server-side duplicate after a restart.
    })
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#buffer.length > 0) await this.#commit().catch(() => {})
    await this.#writing
    await this.#file.close()
    this.#lock?.close()
  }

  #commit(): Promise<void> {
    if (this.#next === undefined) {
      let resolve!: () => void
      let reject!: (error: unknown) => void
      const promise = new Promise<void>((yes, no) => {
        resolve = yes
        reject = no
      })
      this.#next = { promise, resolve, reject }
    }
    const group = this.#next
    this.#writing ??= this.#writeLoop()
    return group.promise
  }

  /** One writer: each turn writes every buffered line, syncs once, then settles that group. */
  async #writeLoop(): Promise<void> {
    while (this.#next !== undefined) {
      const group = this.#next
      this.#next = undefined
      const text = this.#buffer.join('')
      this.#buffer = []
      this.#unwritten.clear()
      try {
        await this.#file.write(text)
        this.#fileBytes += utf8Length(text)
        if (this.#fsync) await this.#file.datasync()
        group.resolve()
      } catch (error) {
        group.reject(error)
      }
      try {
        await this.#compact()
      } catch {
        // The file is still whole (rename is atomic); the next compaction tries again.
      }
    }
    this.#writing = undefined
  }

  async #compact(): Promise<void> {
    if (this.#live.size === 0 && this.#buffer.length === 0 && this.#fileBytes > 0) {
      await this.#file.truncate(0)
      if (this.#fsync) await this.#file.datasync()
      this.#fileBytes = 0
      return
    }
    if (this.#fileBytes < this.#compactBytes || this.#fileBytes < 2 * this.#liveBytes) return
    // Events still in the buffer go to the new file with the next write, not in the rewrite.
    const written: string[] = []
    let bytes = 0
    for (const [id, line] of this.#live) {
      if (this.#unwritten.has(id)) continue
      written.push(line)
      bytes += utf8Length(line) + 2
    }
    await rewrite(this.#dir, written, this.#fsync)
    const previous = this.#file
    this.#file = await open(this.#path, 'a')
    this.#fileBytes = bytes
    await previous.close()
  }
}

function parse(text: string): { live: Map<string, string>; skipped: number } {
  const live = new Map<string, string>()
  let skipped = 0
  const end = text.lastIndexOf('\n')
  if (end < text.length - 1) skipped++ // a torn last line
  let start = 0
  while (start <= end) {
    const stop = text.indexOf('\n', start)
    const line = text.slice(start, stop)
    start = stop + 1
    try {
      if (line.startsWith('+')) {
        const json = line.slice(1)
        const id = (JSON.parse(json) as { event_id?: unknown }).event_id
        if (typeof id !== 'string') throw new Error('no event_id')
        live.delete(id) // a re-append moves it to its newest place
        live.set(id, json)
      } else if (line.startsWith('-')) {
        for (const id of JSON.parse(line.slice(1)) as string[]) live.delete(id)
      } else if (line !== '') {
        skipped++
      }
    } catch {
      skipped++
    }
  }
  return { live, skipped }
}

/** Replaces the file with these lines: temporary file, fsync, rename, fsync of the directory. */
async function rewrite(dir: string, lines: Iterable<string>, sync = true): Promise<void> {
  const path = join(dir, FILE)
  const temporary = `${path}.tmp`
  const file = await open(temporary, 'w')
  try {
    let text = ''
    for (const line of lines) {
      text += `+${line}\n`
      if (text.length > 1 << 20) {
        await file.write(text)
        text = ''
      }
    }
    await file.write(text)
    if (sync) await file.sync()
  } finally {
    await file.close()
  }
  await rename(temporary, path)
  if (sync) {
    const directory = await open(dir, 'r')
    try {
      await directory.sync()
    } finally {
      await directory.close()
    }
  }
}

function notFoundAsEmpty(error: NodeJS.ErrnoException): string {
  if (error.code === 'ENOENT') return ''
  throw error
}

/** The directory's lock (Linux): an abstract-namespace socket; undefined elsewhere. */
async function lockDirectory(realDir: string): Promise<Server | undefined> {
  if (process.platform !== 'linux') return undefined
  const name = `\0spillway-client-queue:${createHash('sha256').update(realDir).digest('hex')}`
  const server = createServer((socket) => socket.destroy())
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? clientError(
              'SPW_ERR_CLIENT_LOCKED',
              `durable queue ${realDir} is in use by another client (one process per directory)`,
            )
          : error,
      )
    })
    server.listen(name, () => resolve())
  })
  server.unref()
  return server
}

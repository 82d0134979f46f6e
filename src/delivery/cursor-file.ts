/**
 * The cursor of a sink that cannot keep it in its own store (no `loadCursor`): one small JSON file
 * per sink, `<dataDir>/cursors/<sink>.json`. It is replaced atomically — write a temporary file,
 * fsync it, rename it over the old one, fsync the directory — so after a crash the file holds
 * either the old or the new position, never a torn one. The cursor is written after the sink
 * acknowledged the batch, so a crash in between redelivers that batch (at least once; the sinks
 * are idempotent on `event_id`).
 */
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { spillwayError } from '../errors.ts'
import { writeFileDurably } from '../shared/durable-file.ts'

interface CursorDocument {
  readonly sink: string
  readonly position: number
  readonly updatedAt: string
}

export class CursorFile {
  readonly path: string
  readonly #dir: string
  readonly #sink: string
  #dirReady = false

  /** `dir` is the cursors directory (`<dataDir>/cursors`); it is created on first save. */
  constructor(dir: string, sink: string) {
    this.#dir = dir
    this.#sink = sink
    this.path = join(dir, `${fileSafe(sink)}.json`)
  }

  /** The saved position, or null when this sink never saved one. */
  async load(): Promise<number | null> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw error
    }
    let position: unknown
    try {
      position = (JSON.parse(text) as Partial<CursorDocument>).position
    } catch (error) {
      throw spillwayError('SPW_ERR_WAL_CORRUPT', `cursor file ${this.path} is not valid JSON`, {
        cause: error,
      })
    }
    if (typeof position !== 'number' || !Number.isSafeInteger(position) || position < 0) {
      throw spillwayError('SPW_ERR_WAL_CORRUPT', `cursor file ${this.path} holds no valid position`)
    }
    return position
  }

  async save(position: number): Promise<void> {
    if (!this.#dirReady) {
      await mkdir(this.#dir, { recursive: true })
      this.#dirReady = true
    }
    const doc: CursorDocument = { sink: this.#sink, position, updatedAt: new Date().toISOString() }
    await writeFileDurably(this.path, `${JSON.stringify(doc)}\n`)
  }
}

/** Sink names come from configuration; keep them from escaping the directory. */
function fileSafe(name: string): string {
  return /^[A-Za-z0-9_.-]+$/.test(name) && !name.startsWith('.')
    ? name
    : encodeURIComponent(name).replace(/\./g, '%2E')
}

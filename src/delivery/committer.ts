/**
 * The last part of delivery: the sink's cursor, the position up to which every event was delivered
 * or dead-lettered. A sink with `loadCursor` (DuckDB) commits it in the same transaction as the
 * rows, so the committer only notes what the sink confirmed; for the others it is the sink's cursor
 * file, saved (fsync'd) before the position is published to the WAL writer, which deletes segments
 * below the lowest published cursor.
 */
import type { Sink } from '../sinks/sink.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { WalSharedState } from '../wal/shared-state.ts'
import type { CursorFile } from './cursor-file.ts'
import type { Sender } from './sender.ts'

export interface CursorCommitterOptions {
  readonly sink: Sink
  /** The sink's slot in the shared state. */
  readonly slot: number
  readonly state: WalSharedState
  /** Where the cursor lives when the sink has no `loadCursor`. */
  readonly cursorFile?: CursorFile
  readonly sender: Sender
  readonly logger: Logger
}

export class CursorCommitter {
  readonly #sink: Sink
  readonly #slot: number
  readonly #state: WalSharedState
  readonly #cursorFile: CursorFile | undefined
  readonly #sender: Sender
  readonly #logger: Logger
  #position = -1
  /** What a transactional sink committed last (its `loadCursor` answer if asked now). */
  #sinkCursor = -1
  #fresh = false

  constructor(options: CursorCommitterOptions) {
    if (!options.sink.loadCursor && !options.cursorFile) {
      throw new TypeError(`sink ${options.sink.name} keeps no cursor of its own: a cursorFile is required`)
    }
    this.#sink = options.sink
    this.#slot = options.slot
    this.#state = options.state
    this.#cursorFile = options.cursorFile
    this.#sender = options.sender
    this.#logger = options.logger
  }

  get position(): number {
    return this.#position
  }

  /** No cursor was ever saved for this sink. */
  get fresh(): boolean {
    return this.#fresh
  }

  /**
   * Loads the cursor (the sink's, else its file, else the oldest record on disk) and publishes it,
   * so the writer never deletes a segment this sink still needs. Returns whether one was saved.
   */
  async load(): Promise<boolean> {
    const loaded = this.#sink.loadCursor ? await this.#sink.loadCursor() : await this.#cursorFile!.load()
    this.#fresh = loaded === null
    this.#position = loaded ?? Math.max(0, this.#state.oldest)
    this.#sinkCursor = loaded ?? -1
    this.#state.setCursor(this.#slot, this.#position)
    return loaded !== null
  }

  /** The sink confirmed a write ending at `to`: a transactional sink's own cursor is there now. */
  confirmed(to: number): void {
    if (this.#sink.loadCursor) this.#sinkCursor = Math.max(this.#sinkCursor, to)
  }

  /**
   * The batch ends at `to`. When its last events were dead-lettered no write carried that end: a
   * transactional sink then gets an empty batch whose only effect is to commit it. If it refuses,
   * delivery moves on anyway (those events are only dead-lettered again after a restart).
   */
  async commitEnd(to: number): Promise<void> {
    if (!this.#sink.loadCursor || this.#sinkCursor >= to) return
    const answer = await this.#sender.attempt({ events: [], from: to, to })
    if (answer.kind === 'delivered') this.#sinkCursor = to
    else
      this.#logger.warn({ sink: this.#sink.name, position: to, err: answer.error }, 'SinkCursorCommitFailed')
  }

  /** Moves the cursor: persisted first (file-cursor sinks), then published for the writer. */
  async advance(position: number): Promise<void> {
    if (position <= this.#position) return
    if (!this.#sink.loadCursor) await this.#cursorFile!.save(position)
    this.#position = position
    this.#state.setCursor(this.#slot, position)
  }
}

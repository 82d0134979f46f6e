/**
 * The replay ledger: which dead-letter lines `spillway dlq replay` has already re-submitted, so
 * running it twice never sends the same line twice. The replay does not touch the dead-letter
 * files — the server may be appending to them while it runs — and a purge only blanks lines, never
 * moves them, so the ledger names lines by their stable id (`<file>#<line>`, see dead-letter.ts) in
 * `<dataDir>/deadletter/replayed/ledger.jsonl`, one JSON object per line:
 *   {"id":"intake-…jsonl#7","at":1723475612000,"outcome":"accepted"}
 *   {"id":"intake-…jsonl#9","at":1723475612000,"outcome":"invalid","reason":"user_id is required"}
 *   {"id":"delivery-…jsonl#2","at":1723475612000,"outcome":"failed","reason":"HTTP 413: …"}
 * `accepted` closes a line for good: the event is in the log. `invalid` (the server rejected the
 * event again) and `failed` (the whole request was refused, e.g. too large) leave it pending: the
 * line stays the only copy — replay asks the server not to dead-letter it again — and a later
 * replay, after the next fix, tries it again. The last record of an id wins; a record that says
 * what the last one of its id says is not written again, so repeated replays of the same
 * still-invalid lines do not grow the ledger. Records are fdatasync'd before the next request.
 * `rejected`, written by replays before `invalid` existed, closes its line: that replay had the
 * server dead-letter the event again as a new line.
 *
 * One replay at a time: the running replay holds the kernel lock of `replayed/LOCK` (wal/lock.ts).
 */
import type { FileHandle } from 'node:fs/promises'
import { mkdir, open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isSpillwayError } from '../errors.ts'
import { type StoredDeadLetter, scanDeadLetters } from '../shared/dead-letter.ts'
import { syncDir } from '../shared/durable-file.ts'
import { type DirLock, lockDirectory } from '../wal/lock.ts'

/** `rejected` only in ledgers of older replays (see the header). */
export type ReplayOutcome = 'accepted' | 'invalid' | 'failed' | 'rejected'

export interface ReplayRecord {
  readonly id: string
  readonly at: number
  readonly outcome: ReplayOutcome
  /** Why it was rejected or failed. */
  readonly reason?: string
}

/** A dead-letter line with what replay did to it so far. */
export interface DeadLetterState extends StoredDeadLetter {
  /** The last replay record of this line, if any. */
  readonly replay?: ReplayRecord
  /** False once the line was replayed for good (accepted, or by an older replay: rejected). */
  readonly pending: boolean
}

export const REPLAYED_DIR = 'replayed'
const LEDGER_FILE = 'ledger.jsonl'

export class ReplayLedger {
  readonly dir: string
  readonly #records = new Map<string, ReplayRecord>()
  #file: FileHandle | undefined
  #lock: DirLock | undefined

  /** `deadLetterDir` is `<dataDir>/deadletter`; the ledger lives in its `replayed/` folder. */
  constructor(deadLetterDir: string) {
    this.dir = join(deadLetterDir, REPLAYED_DIR)
  }

  /** Reads the ledger (a missing one is empty). */
  static async load(deadLetterDir: string): Promise<ReplayLedger> {
    const ledger = new ReplayLedger(deadLetterDir)
    let text = ''
    try {
      text = await readFile(join(ledger.dir, LEDGER_FILE), 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
    for (const line of text.split('\n')) {
      if (line.length === 0) continue
      try {
        const record = JSON.parse(line) as ReplayRecord
        if (typeof record.id === 'string') ledger.#records.set(record.id, record)
      } catch {
        // A torn last line: its replay request got no recorded answer, so the line stays pending.
      }
    }
    return ledger
  }

  get(id: string): ReplayRecord | undefined {
    return this.#records.get(id)
  }

  isDone(id: string): boolean {
    const outcome = this.#records.get(id)?.outcome
    return outcome === 'accepted' || outcome === 'rejected'
  }

  /** Takes `replayed/LOCK`; a second replay of the same store is refused naming the first one's pid. */
  async lock(): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    try {
      this.#lock = lockDirectory(this.dir)
    } catch (error) {
      if (!isSpillwayError(error, 'SPW_ERR_WAL_LOCKED')) throw error
      const pid = /process (\d+)/.exec(error.message)?.[1]
      throw new Error(
        `another dlq replay${pid ? ` (process ${pid})` : ''} is running on ${this.dir}; wait for it to finish`,
      )
    }
  }

  /** Appends records and fdatasyncs them (a record that repeats its id's last one is skipped). */
  async record(all: readonly ReplayRecord[]): Promise<void> {
    const records = all.filter((r) => {
      const last = this.#records.get(r.id)
      return last === undefined || last.outcome !== r.outcome || last.reason !== r.reason
    })
    if (records.length === 0) return
    if (!this.#file) {
      await mkdir(this.dir, { recursive: true })
      this.#file = await open(join(this.dir, LEDGER_FILE), 'a')
      await syncDir(this.dir)
    }
    await this.#file.appendFile(records.map((r) => `${JSON.stringify(r)}\n`).join(''))
    await this.#file.datasync()
    for (const record of records) this.#records.set(record.id, record)
  }

  async close(): Promise<void> {
    await this.#file?.close()
    this.#file = undefined
    this.#lock?.release()
    this.#lock = undefined
  }
}

/** Every dead-letter line of `deadLetterDir` with its replay state, oldest file first. */
export async function deadLetterStates(
  deadLetterDir: string,
  ledger?: ReplayLedger,
): Promise<DeadLetterState[]> {
  const book = ledger ?? (await ReplayLedger.load(deadLetterDir))
  return (await scanDeadLetters(deadLetterDir)).map((stored) => {
    const replay = book.get(stored.id)
    return { ...stored, ...(replay && { replay }), pending: !book.isDone(stored.id) }
  })
}

/** `intake` selects the events refused at intake; any other name, those its sink refused. */
export function matchesSource(stored: StoredDeadLetter, source: string | undefined): boolean {
  if (source === undefined) return true
  return source === 'intake' ? stored.entry.sink === undefined : stored.entry.sink === source
}

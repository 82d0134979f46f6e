// Not delivery/memory-log.ts: that one is the WAL (RecordSource); this is a consumer-group log (LogSource).
/**
 * An in-memory log behind the LogSource contract, for unit tests of the consumer's logic (the
 * real Kafka and JetStream sources have their own integration tests). Like a consumer group: a
 * reader starts at the committed offset, and a reopened reader gets every uncommitted message again.
 */
import type { FetchedBatch, LogSource } from '../../../src/consume/source.ts'

interface MemoryBatch extends FetchedBatch {
  readonly end: number
}

export class MemoryLog implements LogSource {
  readonly name = 'memory'
  readonly messages: Buffer[] = []
  /** Offset of the first message not committed. */
  committed = 0
  /** Every commit, as the offset it moved to, in call order. */
  readonly commits: number[] = []
  readonly deadLettered: { value: string; reason: string }[] = []
  #position = 0
  #waiters: (() => void)[] = []

  produce(...values: (string | object)[]): void {
    for (const v of values) this.messages.push(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)))
    for (const wake of this.#waiters.splice(0)) wake()
  }

  /** The next `open()` calls fail with these errors (a log that is down, a refused configuration). */
  readonly openErrors: Error[] = []
  opens = 0

  async open(): Promise<void> {
    this.opens++
    const error = this.openErrors.shift()
    if (error) throw error
    this.#position = this.committed
  }

  async fetch(max: number, waitMs: number, signal: AbortSignal): Promise<FetchedBatch | null> {
    if (this.#position >= this.messages.length) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs)
        const wake = () => {
          clearTimeout(timer)
          resolve()
        }
        this.#waiters.push(wake)
        signal.addEventListener('abort', wake, { once: true })
      })
      if (this.#position >= this.messages.length || signal.aborted) return null
    }
    const from = this.#position
    const end = Math.min(this.messages.length, from + max)
    this.#position = end
    const batch: MemoryBatch = {
      values: this.messages.slice(from, end),
      describe: `memory@${from}..${end - 1}`,
      end,
    }
    return batch
  }

  async commit(batch: FetchedBatch): Promise<void> {
    const { end } = batch as MemoryBatch
    if (end < this.committed) throw new Error(`commit went backwards: ${end} < ${this.committed}`)
    this.committed = end
    this.commits.push(end)
  }

  async deadLetter(values: readonly Buffer[], reason: string): Promise<void> {
    for (const v of values) this.deadLettered.push({ value: v.toString(), reason })
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    for (const wake of this.#waiters.splice(0)) wake()
  }
}

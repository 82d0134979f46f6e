// Not consume/memory-log.ts: that one is a consumer-group log (LogSource); this is the WAL (RecordSource).
/**
 * An in-memory WAL for delivery tests: records get positions the way the real log gives them
 * (an 8-byte header, then the payload), appending publishes the durable head in the shared
 * state, and `openReader` hands out readers with WalReader's contract.
 */

import type { RecordSource } from '../../../src/delivery/loop.ts'
import type { NormalizedEvent } from '../../../src/intake/types.ts'
import { WalSharedState } from '../../../src/wal/shared-state.ts'
import type { WalRecord } from '../../../src/wal/types.ts'

const HEADER = 8

export class MemoryLog {
  readonly state: WalSharedState
  readonly records: WalRecord[] = []
  readonly readers: MemoryReader[] = []
  head: number

  constructor(state = new WalSharedState(), start = 0) {
    this.state = state
    this.head = start
    state.oldest = start
    state.durableHead = start
  }

  append(events: readonly NormalizedEvent[]): WalRecord {
    return this.appendRaw(Buffer.from(events.map((e) => `${JSON.stringify(e)}\n`).join('')))
  }

  appendRaw(payload: Buffer): WalRecord {
    const record = { start: this.head, end: this.head + HEADER + payload.length, payload }
    this.records.push(record)
    this.head = record.end
    this.state.durableHead = this.head
    return record
  }

  /** Drops the records before `position` (a segment deletion). */
  truncateBefore(position: number): void {
    while (this.records.length > 0 && this.records[0].start < position) this.records.shift()
    this.state.oldest = position
  }

  openReader = (from: number): RecordSource => {
    const reader = new MemoryReader(this, from)
    this.readers.push(reader)
    return reader
  }
}

export class MemoryReader implements RecordSource {
  readonly #log: MemoryLog
  #position: number
  closed = false
  reads = 0

  constructor(log: MemoryLog, from: number) {
    this.#log = log
    this.#position = from
  }

  get position(): number {
    return this.#position
  }

  async read(maxBytes: number, limit = this.#log.state.durableHead): Promise<WalRecord[]> {
    if (this.closed) throw new Error('reader closed')
    this.reads++
    const out: WalRecord[] = []
    let bytes = 0
    for (const record of this.#log.records) {
      if (record.start < this.#position) continue
      if (record.end > limit) break
      if (out.length > 0 && bytes + (record.end - record.start) > maxBytes) break
      out.push(record)
      bytes += record.end - record.start
      this.#position = record.end
    }
    return out
  }

  close(): void {
    this.closed = true
  }
}

export function decodeNdjson(payload: Buffer): NormalizedEvent[] {
  return payload
    .toString('utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as NormalizedEvent)
}

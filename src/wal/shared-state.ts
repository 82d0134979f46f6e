/**
 * WAL positions shared between the HTTP thread (the writer) and the delivery thread (the readers)
 * through one SharedArrayBuffer, so neither side waits on messages:
 * - the writer publishes the durable head after every fdatasync and wakes waiting readers;
 * - each sink's delivery publishes its cursor, which the writer reads for segment deletion and
 *   for the backlog (bytes not yet delivered to the slowest sink).
 * - whoever first keeps damaged WAL bytes aside (a reader, on either thread) counts them here, for
 *   the metrics and `/ready`.
 * Positions are byte offsets in the log (see FORMAT.md); -1 means "not known yet".
 */
export const MAX_SINKS = 16

const HEAD = 0
const OLDEST = 1
const CURSORS = 2
const DAMAGED_RANGES = CURSORS + MAX_SINKS
const DAMAGED_BYTES = DAMAGED_RANGES + 1
const SLOTS = DAMAGED_BYTES + 1

export class WalSharedState {
  readonly buffer: SharedArrayBuffer
  readonly #positions: BigInt64Array
  readonly #signal: Int32Array

  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(8 * SLOTS + 8)
    this.#positions = new BigInt64Array(this.buffer, 0, SLOTS)
    this.#signal = new Int32Array(this.buffer, 8 * SLOTS, 1)
    if (!buffer) {
      for (let i = 0; i < CURSORS + MAX_SINKS; i++) this.#positions[i] = -1n
    }
  }

  /** End of the log that is on disk (fsync'd); readers never read past it. */
  get durableHead(): number {
    return Number(Atomics.load(this.#positions, HEAD))
  }

  set durableHead(position: number) {
    Atomics.store(this.#positions, HEAD, BigInt(position))
    Atomics.add(this.#signal, 0, 1)
    Atomics.notify(this.#signal, 0)
  }

  /** Start of the oldest segment still on disk. */
  get oldest(): number {
    return Number(Atomics.load(this.#positions, OLDEST))
  }

  set oldest(position: number) {
    Atomics.store(this.#positions, OLDEST, BigInt(position))
  }

  /** Damaged ranges of the log kept aside (and skipped) since this process started. */
  get damagedRanges(): number {
    return Number(Atomics.load(this.#positions, DAMAGED_RANGES))
  }

  /** Bytes of those ranges. */
  get damagedBytes(): number {
    return Number(Atomics.load(this.#positions, DAMAGED_BYTES))
  }

  addDamage(bytes: number): void {
    Atomics.add(this.#positions, DAMAGED_RANGES, 1n)
    Atomics.add(this.#positions, DAMAGED_BYTES, BigInt(bytes))
  }

  cursor(slot: number): number {
    return Number(Atomics.load(this.#positions, CURSORS + checkSlot(slot)))
  }

  setCursor(slot: number, position: number): void {
    Atomics.store(this.#positions, CURSORS + checkSlot(slot), BigInt(position))
  }

  /** Lowest cursor of the first `sinkCount` slots, or -1 while any of them is unknown. */
  minCursor(sinkCount: number): number {
    let min = Number.POSITIVE_INFINITY
    for (let slot = 0; slot < sinkCount; slot++) {
      const c = this.cursor(slot)
      if (c < 0) return -1
      if (c < min) min = c
    }
    return sinkCount === 0 ? -1 : min
  }

  /** Durable bytes the sink in `slot` has not delivered yet; 0 while its cursor is unknown. */
  backlogBytes(slot: number): number {
    const cursor = this.cursor(slot)
    return cursor < 0 ? 0 : Math.max(0, this.durableHead - cursor)
  }

  /** Durable bytes the slowest of the first `sinkCount` sinks has not delivered yet; 0 while any cursor is unknown. */
  slowestBacklogBytes(sinkCount: number): number {
    const min = this.minCursor(sinkCount)
    return min < 0 ? 0 : Math.max(0, this.durableHead - min)
  }

  /** Resolves once the durable head moves past `position`, or after `timeoutMs`. */
  async waitForHeadBeyond(position: number, timeoutMs: number): Promise<void> {
    const seen = Atomics.load(this.#signal, 0)
    if (this.durableHead > position) return
    const result = Atomics.waitAsync(this.#signal, 0, seen, timeoutMs)
    if (result.async) await result.value
  }

  /** Wakes waiting readers without moving the head (shutdown). */
  wake(): void {
    Atomics.add(this.#signal, 0, 1)
    Atomics.notify(this.#signal, 0)
  }
}

function checkSlot(slot: number): number {
  if (!Number.isInteger(slot) || slot < 0 || slot >= MAX_SINKS)
    throw new RangeError(`sink slot ${slot} out of range`)
  return slot
}

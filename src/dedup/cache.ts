/**
 * A bounded set of recently seen dedup keys with a time window: the in-process dedup layers (L1 on
 * the HTTP path, the delivery-time cache of each sink) are instances of it.
 *
 * Bounded by construction: keys live in a ring of `capacity` slots and a Map from key to slot.
 * Adding a key takes the next slot of the ring and forgets whatever key held it, so a flood of
 * unique keys costs one Map entry and one ring slot per key up to `capacity` and nothing more — no
 * sweep, no timer, O(1) per operation. A key older than the window counts as absent (its slot is
 * reused in ring order, like any other). Oldest-first eviction is the right order here: a retry
 * comes soon after the original or not at all.
 */

export class DedupCache {
  readonly capacity: number
  readonly #windowMs: number
  readonly #slots: Map<string, number> = new Map()
  readonly #keys: (string | undefined)[]
  /** Expiry of each slot, in ms since the epoch (a Float64Array: no boxing, exact for ms). */
  readonly #expires: Float64Array
  #next = 0

  /** capacity 0: a cache that remembers nothing (the layer is off). */
  constructor(capacity: number, windowMs: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`capacity must be an integer ≥ 0`)
    if (!(windowMs > 0)) throw new RangeError(`windowMs must be > 0`)
    this.capacity = capacity
    this.#windowMs = windowMs
    this.#keys = new Array(capacity)
    this.#expires = new Float64Array(capacity)
  }

  /** Keys currently held (expired ones included until their slot is reused). */
  get size(): number {
    return this.#slots.size
  }

  /** Whether `key` was added less than the window ago. */
  has(key: string, now = Date.now()): boolean {
    const slot = this.#slots.get(key)
    return slot !== undefined && this.#expires[slot] > now
  }

  /** Remembers `key` for the window from `now`; a key already held gets a fresh window. */
  add(key: string, now = Date.now()): void {
    if (this.capacity === 0) return
    const held = this.#slots.get(key)
    if (held !== undefined) {
      this.#expires[held] = now + this.#windowMs
      return
    }
    const slot = this.#next
    this.#next = slot + 1 === this.capacity ? 0 : slot + 1
    const evicted = this.#keys[slot]
    if (evicted !== undefined) this.#slots.delete(evicted)
    this.#keys[slot] = key
    this.#expires[slot] = now + this.#windowMs
    this.#slots.set(key, slot)
  }

  /** Forgets `key` (its slot stays taken until reused). */
  delete(key: string): void {
    const slot = this.#slots.get(key)
    if (slot === undefined) return
    this.#slots.delete(key)
    this.#keys[slot] = undefined
  }
}

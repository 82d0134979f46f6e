/**
 * A bounded set of recently seen dedup keys with a time window: the in-process dedup layers (L1 on
 * the HTTP path, the delivery-time cache of each sink) are instances of it.
 *
 * Bounded by construction, in typed arrays only: a key is kept as a 64-bit fingerprint (two
 * 32-bit hashes of its UTF-16 code units, differently seeded and mixed) in a ring of `capacity` slots, indexed by an
 * open-addressing hash table (linear probing, backward-shift deletion, load ≤ 1/2). Adding a key
 * takes the next slot of the ring and forgets the key that held it, so a flood of unique keys
 * never grows anything: memory is fixed at construction, about 50 bytes per slot, no strings are
 * retained and the garbage collector has nothing to trace. A key older than the window counts as
 * absent. Oldest-first eviction is the right order here: a retry comes soon after the original or
 * not at all.
 *
 * Why fingerprints and not the strings: a Map of 200k string keys costs ~1.7 µs per has+add on
 * these machines (cache misses and GC of the churned strings), the fingerprint table ~0.2 µs. The
 * price is a false match — two different keys with the same 64 bits — with probability about
 * `size / 2^64` per lookup (1e-14 with 200k keys): far below the rate at which disks flip bits.
 *
 * Content (L1 only, `{ content: true }`): each slot also keeps a 64-bit fingerprint of the event
 * that took the key (`contentFingerprint`), so `lookup` tells an exact retry (SAME) from another
 * event reusing the key (CONFLICT, answered 409). 8 bytes more per slot.
 */

/** What `lookup` found: the key is not held, held for the same content, or held for other content. */
export const ABSENT = 0
export const SAME = 1
export const CONFLICT = 2
export type Lookup = typeof ABSENT | typeof SAME | typeof CONFLICT

export class DedupCache {
  readonly capacity: number
  readonly #windowMs: number
  readonly #mask: number
  /** Hash table: fingerprint halves and ring slot + 1 (0: empty). */
  readonly #tableHi: Int32Array
  readonly #tableLo: Int32Array
  readonly #tableSlot: Int32Array
  /** Ring: the fingerprint in each slot, whether it is live, and when it expires (ms). */
  readonly #ringHi: Int32Array
  readonly #ringLo: Int32Array
  readonly #ringLive: Uint8Array
  readonly #expires: Float64Array
  /** The content fingerprint in each slot (empty arrays without `content`). */
  readonly #contentHi: Int32Array
  readonly #contentLo: Int32Array
  #next = 0
  #size = 0

  /** capacity 0: a cache that remembers nothing (the layer is off). */
  constructor(capacity: number, windowMs: number, options: { readonly content?: boolean } = {}) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`capacity must be an integer ≥ 0`)
    if (!(windowMs > 0)) throw new RangeError(`windowMs must be > 0`)
    this.capacity = capacity
    this.#windowMs = windowMs
    let tableSize = 2
    while (tableSize < capacity * 2) tableSize *= 2
    this.#mask = tableSize - 1
    this.#tableHi = new Int32Array(capacity === 0 ? 0 : tableSize)
    this.#tableLo = new Int32Array(capacity === 0 ? 0 : tableSize)
    this.#tableSlot = new Int32Array(capacity === 0 ? 0 : tableSize)
    this.#ringHi = new Int32Array(capacity)
    this.#ringLo = new Int32Array(capacity)
    this.#ringLive = new Uint8Array(capacity)
    this.#expires = new Float64Array(capacity)
    this.#contentHi = new Int32Array(options.content ? capacity : 0)
    this.#contentLo = new Int32Array(options.content ? capacity : 0)
  }

  /** Keys currently held (expired ones included until their slot is reused). */
  get size(): number {
    return this.#size
  }

  /** Whether `key` was added less than the window ago. */
  has(key: string, now = Date.now()): boolean {
    if (this.capacity === 0) return false
    const hi = hashHi(key)
    const index = this.#find(hi, lastLo)
    return index !== -1 && this.#expires[this.#tableSlot[index] - 1] > now
  }

  /**
   * Whether `key` was added less than the window ago, and if so whether with this content
   * fingerprint (SAME) or another (CONFLICT); SAME for any held key in a cache without content.
   */
  lookup(key: string, contentHi: number, contentLo: number, now = Date.now()): Lookup {
    if (this.capacity === 0) return ABSENT
    const hi = hashHi(key)
    const index = this.#find(hi, lastLo)
    if (index === -1) return ABSENT
    const slot = this.#tableSlot[index] - 1
    if (this.#expires[slot] <= now) return ABSENT
    if (this.#contentHi.length === 0) return SAME
    return this.#contentHi[slot] === contentHi && this.#contentLo[slot] === contentLo ? SAME : CONFLICT
  }

  /**
   * Remembers `key` for the window from `now`, with the content fingerprint of its event; a key
   * already held gets a fresh window (and keeps its content unless it had expired).
   */
  add(key: string, now = Date.now(), contentHi = 0, contentLo = 0): void {
    if (this.capacity === 0) return
    const hi = hashHi(key)
    const lo = lastLo
    const held = this.#find(hi, lo)
    if (held !== -1) {
      const slot = this.#tableSlot[held] - 1
      if (this.#contentHi.length > 0 && this.#expires[slot] <= now) {
        this.#contentHi[slot] = contentHi
        this.#contentLo[slot] = contentLo
      }
      this.#expires[slot] = now + this.#windowMs
      return
    }
    const slot = this.#next
    this.#next = slot + 1 === this.capacity ? 0 : slot + 1
    if (this.#ringLive[slot] === 1) this.#remove(this.#find(this.#ringHi[slot], this.#ringLo[slot]))
    this.#ringHi[slot] = hi
    this.#ringLo[slot] = lo
    this.#ringLive[slot] = 1
    this.#expires[slot] = now + this.#windowMs
    if (this.#contentHi.length > 0) {
      this.#contentHi[slot] = contentHi
      this.#contentLo[slot] = contentLo
    }
    let index = hi & this.#mask
    while (this.#tableSlot[index] !== 0) index = (index + 1) & this.#mask
    this.#tableHi[index] = hi
    this.#tableLo[index] = lo
    this.#tableSlot[index] = slot + 1
    this.#size++
  }

  /** Forgets `key` (its slot stays taken until reused). */
  delete(key: string): void {
    if (this.capacity === 0) return
    const hi = hashHi(key)
    const index = this.#find(hi, lastLo)
    if (index !== -1) this.#remove(index)
  }

  /** Table index of the fingerprint, or -1. */
  #find(hi: number, lo: number): number {
    let index = hi & this.#mask
    for (;;) {
      if (this.#tableSlot[index] === 0) return -1
      if (this.#tableHi[index] === hi && this.#tableLo[index] === lo) return index
      index = (index + 1) & this.#mask
    }
  }

  /** Empties a table entry and its ring slot; later entries of the probe run move back (no tombstones). */
  #remove(index: number): void {
    if (index === -1) return
    this.#ringLive[this.#tableSlot[index] - 1] = 0
    this.#size--
    const mask = this.#mask
    let hole = index
    let next = (hole + 1) & mask
    while (this.#tableSlot[next] !== 0) {
      const home = this.#tableHi[next] & mask
      // The entry at `next` may fill the hole unless its home lies cyclically in (hole, next].
      const stays = hole <= next ? hole < home && home <= next : hole < home || home <= next
      if (!stays) {
        this.#tableHi[hole] = this.#tableHi[next]
        this.#tableLo[hole] = this.#tableLo[next]
        this.#tableSlot[hole] = this.#tableSlot[next]
        hole = next
      }
      next = (next + 1) & mask
    }
    this.#tableSlot[hole] = 0
  }
}

/**
 * Two 32-bit hashes of a string's UTF-16 code units in one pass, murmur3's mixing with two
 * seeds; `hashHi` returns the first and leaves the second in `lastLo`.
 */
let lastLo = 0

function hashHi(key: string): number {
  let h1 = 0x9747b28c ^ key.length
  let h2 = 0x5bd1e995 ^ key.length
  for (let i = 0; i < key.length; i++) {
    let k = Math.imul(key.charCodeAt(i), 0xcc9e2d51)
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593)
    h1 ^= k
    h1 = (Math.imul((h1 << 13) | (h1 >>> 19), 5) + 0xe6546b64) | 0
    h2 ^= k
    h2 = (Math.imul((h2 << 11) | (h2 >>> 21), 9) + 0x52dce729) | 0
  }
  lastLo = fmix(h2)
  return fmix(h1)
}

const TIMESTAMP_FIELD = Buffer.from(',"timestamp":')
/** `,"received_at":`, which follows the timestamp's digits in a WAL line. */
const RECEIVED_AT_FIELD = ',"received_at":'.length

/**
 * The content fingerprint of an event, for L1's conflict check: 64 bits, written to `out[at]` and
 * `out[at + 1]`, of its WAL line (`bytes` from `start` to `end`, as serialize.ts wrote it) without
 * what the server sets — `timestamp` as corrected by `sent_at` and `received_at` — and with the
 * `timestamp` the client sent in their place, so an exact retry (even re-sent later, with another
 * `sent_at`) has the fingerprint of the original. It hashes the bytes already made for the WAL
 * append, four at a time, no allocation (hashing the line's string instead cost twice as much).
 * In a line `,"timestamp":` can only be the field itself (inside a JSON string every `"` is
 * escaped); the two numbers follow it, digits only, then `,"tags":`.
 */
export function contentFingerprint(
  bytes: Buffer,
  start: number,
  end: number,
  clientTimestamp: number,
  out: Int32Array,
  at: number,
): void {
  const cut = indexOf(bytes, TIMESTAMP_FIELD, start, end)
  let resume = -1
  if (cut !== -1) {
    // Past the two numbers by their digits: a JS loop of some 25 bytes beats a second native search.
    resume = skipDigits(bytes, skipDigits(bytes, cut + TIMESTAMP_FIELD.length, end) + RECEIVED_AT_FIELD, end)
    if (resume > end) resume = -1
  }
  fp1 = 0x9747b28c
  fp2 = 0x5bd1e995
  if (resume === -1) {
    mixBytes(bytes, start, end)
  } else {
    mixBytes(bytes, start, cut)
    // The client's timestamp, low and high 32 bits, where the server-set numbers were.
    mixBlock(clientTimestamp | 0)
    mixBlock(Math.floor(clientTimestamp / 0x100000000) | 0)
    mixBytes(bytes, resume, end)
  }
  const hashed = resume === -1 ? end - start : cut - start + end - resume
  out[at] = fmix(fp1 ^ hashed)
  out[at + 1] = fmix(fp2 ^ hashed)
}

/** The two lanes of the fingerprint being computed. */
let fp1 = 0
let fp2 = 0

function mixBytes(bytes: Buffer, from: number, to: number): void {
  let i = from
  for (; i + 4 <= to; i += 4)
    mixBlock(bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24))
  if (i < to) {
    let k = 0
    for (let shift = 0; i < to; i++, shift += 8) k |= bytes[i] << shift
    mixBlock(k)
  }
}

function mixBlock(block: number): void {
  let k = Math.imul(block, 0xcc9e2d51)
  k = Math.imul((k << 15) | (k >>> 17), 0x1b873593)
  fp1 ^= k
  fp1 = (Math.imul((fp1 << 13) | (fp1 >>> 19), 5) + 0xe6546b64) | 0
  fp2 ^= k
  fp2 = (Math.imul((fp2 << 11) | (fp2 >>> 21), 9) + 0x52dce729) | 0
}

function skipDigits(bytes: Buffer, from: number, to: number): number {
  let i = from
  while (i < to && bytes[i] >= 0x30 && bytes[i] <= 0x39) i++
  return i
}

/** Where `needle` starts in `bytes[from, to)`, or -1. */
function indexOf(bytes: Buffer, needle: Buffer, from: number, to: number): number {
  const found = bytes.indexOf(needle, from)
  return found === -1 || found + needle.length > to ? -1 : found
}

function fmix(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return h ^ (h >>> 16)
}

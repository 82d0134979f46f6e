/**
 * The delivery-time dedup check of one sink: what stops a duplicate that got past L1 — two copies
 * in flight at once, a copy sent to another node, a retry after L1 forgot the key or after a
 * restart — from being stored twice.
 *
 * Before a batch goes to the sink, every event's key is checked, in this order:
 * 1. the sink's own cache of keys it stored in the window (bounded, DedupCache), warmed at start
 *    from the store itself where the sink can list recent keys — so a restart does not forget;
 * 2. the batch itself (a key twice in one batch is stored once);
 * 3. L2 in Redis, shared by every node, claimed for the rest in one round trip (redis.ts).
 * Duplicates are cut out of the WAL record payloads (NDJSON lines, never decoded) and counted by
 * layer; the sink gets the rest. Keys enter the cache only after the sink confirmed them
 * (`delivered`), so a failed write never makes its own retry look like a duplicate; L2 claims are
 * safe for the same reason by their token (see redis.ts).
 *
 * L2 keys are claimed per store: `<sink name>:<key>` (under the configured Redis prefix). A claim
 * means "this store has (or is getting) this event", so serve nodes writing to Kafka and the
 * consume nodes loading Kafka into ClickHouse can share one Redis: the Kafka sink's claims
 * (`kafka:<key>`) never make the consumer drop an event it has yet to store (`clickhouse:<key>`).
 */
import { keepLines, type PayloadKeys, payloadKeys } from '../intake/ndjson-keys.ts'
import { DedupCache } from './cache.ts'
import type { ClaimState, L2State, RedisDedup } from './redis.ts'

/** A WAL record as the delivery loop holds it; the check rewrites `payload` and `count`. */
export interface DedupRecord {
  readonly start: number
  payload: Buffer
  count: number
  /** The keys of the events left in `payload`, in order (set by the check). */
  keys?: string[]
}

export interface DuplicateCounts {
  /** Found by the sink's cache or within the batch. */
  delivery: number
  /** Found in Redis: claimed by another record, on this node or another. */
  l2: number
}

/** What `prepare` found: each record's lines and keys, and the L2 verdict per key (null: none). */
export interface PreparedCheck {
  readonly parsed: readonly (PayloadKeys | null)[]
  readonly claims: ReadonlyMap<string, ClaimState> | null
}

export interface DeliveryCheckOptions {
  /** Identifies this node's claims in L2 (stable across restarts: kept in the data directory). */
  readonly nodeId: string
  /** The store this check guards (the sink's name): L2 keys are `<namespace>:<key>`. */
  readonly namespace: string
  readonly cacheEntries: number
  readonly windowMs: number
  readonly l2?: RedisDedup
}

export class DeliveryCheck {
  readonly #nodeId: string
  readonly #namespace: string
  readonly #cache: DedupCache
  readonly #l2: RedisDedup | undefined
  readonly #windowMs: number
  readonly counts: DuplicateCounts = { delivery: 0, l2: 0 }

  constructor(options: DeliveryCheckOptions) {
    this.#nodeId = options.nodeId
    this.#namespace = `${options.namespace}:`
    this.#cache = new DedupCache(options.cacheEntries, options.windowMs)
    this.#l2 = options.l2
    this.#windowMs = options.windowMs
  }

  /** Keys the sink stored before this start, oldest first, with their receipt time (ms). */
  warm(keys: Iterable<readonly [key: string, receivedAtMs: number]>): number {
    let n = 0
    const now = Date.now()
    for (const [key, at] of keys) {
      // Added as of their receipt, so they leave the window when they would have.
      if (at + this.#windowMs <= now) continue
      this.#cache.add(key, at)
      n++
    }
    return n
  }

  /** The L2 layer's state; null without Redis. */
  get l2(): L2State | null {
    return this.#l2?.status ?? null
  }

  get cacheSize(): number {
    return this.#cache.size
  }

  /** The L2 token of events of the record at `start`. */
  token(start: number): string {
    return `${this.#nodeId}:${start}`
  }

  /** Whether `prepare` makes a round trip worth overlapping with the previous batch's write. */
  get readsAhead(): boolean {
    return this.#l2 !== undefined
  }

  /** Cuts the duplicates out of `records` (in place); returns how many were cut, by layer. */
  async check(records: DedupRecord[]): Promise<DuplicateCounts> {
    return this.apply(records, await this.prepare(records))
  }

  /**
   * The part of the check that does not depend on what was stored before: the keys of every
   * line, and their L2 claims (one round trip). May run while the previous batch is still being
   * written; `apply` then decides with the cache as it is after that write.
   */
  async prepare(records: readonly DedupRecord[]): Promise<PreparedCheck> {
    // A record whose lines cannot be read is left as it is: the loop isolates and dead-letters it.
    const parsed = records.map((r) => {
      try {
        return payloadKeys(r.payload)
      } catch {
        return null
      }
    })
    if (!this.#l2) return { parsed, claims: null }
    const first = new Set<string>()
    const keys: string[] = []
    const tokens: string[] = []
    for (let r = 0; r < records.length; r++) {
      for (const key of parsed[r]?.keys ?? []) {
        if (first.has(key)) continue
        first.add(key)
        keys.push(this.#namespace + key)
        tokens.push(this.token(records[r].start))
      }
    }
    const states = await this.#l2.claim(keys, tokens)
    if (!states) return { parsed, claims: null }
    const claims = new Map<string, ClaimState>()
    const cut = this.#namespace.length
    for (let k = 0; k < keys.length; k++) claims.set(keys[k].slice(cut), states[k])
    return { parsed, claims }
  }

  /** Cuts the duplicates out of `records` (in place), by the cache now and the prepared claims. */
  apply(records: DedupRecord[], prepared: PreparedCheck): DuplicateCounts {
    const found: DuplicateCounts = { delivery: 0, l2: 0 }
    const now = Date.now()
    const inBatch = new Set<string>()
    for (let r = 0; r < records.length; r++) {
      const record = records[r]
      const lines = prepared.parsed[r]
      if (!lines) continue
      const keep = new Array<boolean>(lines.keys.length).fill(true)
      const kept: string[] = []
      for (let i = 0; i < lines.keys.length; i++) {
        const key = lines.keys[i]
        if (this.#cache.has(key, now) || inBatch.has(key)) {
          keep[i] = false
          found.delivery++
        } else if (prepared.claims?.get(key) === 'taken') {
          keep[i] = false
          found.l2++
        } else {
          inBatch.add(key)
          kept.push(key)
        }
      }
      if (kept.length !== lines.keys.length) {
        record.payload = keepLines(record.payload, lines, keep)
        record.count = kept.length
      }
      record.keys = kept
    }
    this.counts.delivery += found.delivery
    this.counts.l2 += found.l2
    return found
  }

  /** The sink stored these keys. */
  delivered(keys: Iterable<string>): void {
    const now = Date.now()
    for (const key of keys) this.#cache.add(key, now)
  }

  /** These events were dead-lettered, not stored: give their L2 claims back. */
  async deadLettered(
    events: readonly { readonly key: string; readonly recordStart: number }[],
  ): Promise<void> {
    if (!this.#l2 || events.length === 0) return
    await this.#l2.release(
      events.map((e) => this.#namespace + e.key),
      events.map((e) => this.token(e.recordStart)),
    )
  }
}

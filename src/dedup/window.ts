/**
 * The dedup window (`dedupWindowSeconds`, docs/ARCHITECTURE.md "Duplicates") in the unit each
 * layer takes: one place converts it, so the layers cannot disagree on how long a key counts.
 */
export interface DedupWindow {
  /** The TTL of an L2 claim in Redis (`EX`). */
  readonly seconds: number
  /** How long a key stays in the L1 and delivery-check caches. */
  readonly ms: number
  /** The receipt time (Unix ms) before which a key no longer counts, as of `now`: where a warm-up starts. */
  since(now?: number): number
}

export function dedupWindow(seconds: number): DedupWindow {
  const ms = seconds * 1000
  return { seconds, ms, since: (now = Date.now()) => now - ms }
}

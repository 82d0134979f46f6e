/** The dedup layers' series (docs/ARCHITECTURE.md "Duplicates"); duplicates found are `events_duplicate_total`. */
import { Gauge, type Registry } from 'prom-client'
import type { DeliveryMetrics } from './delivery-metrics.ts'
import { monotonic, scrapeGauge } from './series.ts'

/** L1, the HTTP path's cache (every process that answers ingest requests). */
export function registerL1Metrics(registry: Registry, l1Keys: () => number): void {
  scrapeGauge(
    registry,
    'dedup_l1_keys',
    'Keys held by the L1 dedup cache of the HTTP path (bounded by dedupCacheEntries).',
    l1Keys,
  )
}

/** The delivery-time layers, read from the delivery thread (not in a cluster worker). */
export function registerDeliveryDedupMetrics(registry: Registry, delivery: DeliveryMetrics): void {
  monotonic(
    registry,
    'dedup_l2_errors_total',
    'Failed or skipped Redis round trips of the shared dedup layer (each: a batch delivered without L2).',
    [],
    async () => {
      await delivery.totals()
      const l2 = delivery.firstSink()?.dedupL2
      return l2 ? [[{}, l2.errors]] : []
    },
  )
  new Gauge({
    name: 'dedup_l2_up',
    help: 'Whether the shared dedup layer (Redis) answered its last round trip: 1 up, 0 down (absent without REDIS_URL).',
    registers: [registry],
    async collect() {
      await delivery.totals()
      this.reset()
      const l2 = delivery.firstSink()?.dedupL2
      if (l2) this.set(l2.state === 'up' ? 1 : 0)
    },
  })
  new Gauge({
    name: 'dedup_delivery_keys',
    help: "Keys held by each sink's delivery-time dedup cache (bounded by dedupCacheEntries).",
    labelNames: ['sink'],
    registers: [registry],
    async collect() {
      await delivery.totals()
      this.reset()
      for (const s of delivery.latest) this.set({ sink: s.sink }, s.dedupCacheKeys)
    },
  })
}

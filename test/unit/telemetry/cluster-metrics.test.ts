/**
 * `serve --workers N`: the primary's exposition is its own series summed with its workers'
 * (ServerMetrics.render with `others`), so what only a worker counts must reach it.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type MetricSources, ServerMetrics } from '../../../src/telemetry/metrics.ts'
import { EMPTY_WAL } from '../../helpers/app-stubs.ts'
import { parsePrometheusText, sampleValue } from '../../helpers/prometheus-text.ts'

/** A worker's sources: no WAL it delivers from, no delivery thread, no dead-letter store. */
const worker: MetricSources = { queuedEvents: () => 0, admission: () => [] }

/** The primary's: the node's WAL and delivery, one sink that dead-lettered 2 events. */
const primary: MetricSources = {
  queuedEvents: () => 0,
  admission: () => [],
  wal: () => EMPTY_WAL,
  sinkBacklog: () => [],
  delivery: async () => ({
    generation: 0,
    running: true,
    sinks: [
      {
        sink: 'memory',
        slot: 0,
        breaker: 'closed',
        dedupCacheKeys: 0,
        dedupL2: null,
        deliveredRows: 5,
        deliveredBatches: 1,
        retries: 0,
        timeouts: 0,
        breakerOpens: 0,
        refusedBatches: 1,
        deadLettered: 2,
        duplicatesDelivery: 0,
        duplicatesL2: 0,
        batchRows: { buckets: [1], counts: [0], sum: 5, count: 1 },
        batchLatencyMs: { buckets: [1], counts: [1], sum: 1, count: 1 },
      },
    ],
  }),
}

test("the workers' intake dead letters are in the primary's events_dead_lettered_total", async () => {
  const workers = [
    new ServerMetrics(worker, { defaultMetrics: false }),
    new ServerMetrics(worker, { defaultMetrics: false }),
  ]
  workers[0].deadLettered(3)
  workers[1].deadLettered(4)
  const node = new ServerMetrics(primary, { defaultMetrics: false })
  const { body } = await node.render(() => Promise.all(workers.map((w) => w.registry.getMetricsAsJSON())))
  const families = parsePrometheusText(body)
  assert.equal(sampleValue(families, 'events_dead_lettered_total', { source: 'intake' }), 7)
  assert.equal(sampleValue(families, 'events_dead_lettered_total', { source: 'delivery' }), 2)
})

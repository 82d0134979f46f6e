/**
 * The workers' metrics in the primary (src/cluster/worker-metrics.ts): a live worker's series as it
 * answers (or as last read when it does not); a dead worker's counters and histograms stay in the
 * sums, its gauges go; two deaths both count.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { pino } from 'pino'
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client'
import { type MetricsJson, type MetricsPeer, WorkerMetrics } from '../../../src/cluster/worker-metrics.ts'

const logger = pino({ level: 'silent' })

async function workerSeries(requests: number, open: number): Promise<MetricsJson> {
  const registry = new Registry()
  new Counter({ name: 'requests_total', help: 'r', registers: [registry] }).inc(requests)
  new Gauge({ name: 'open_connections', help: 'o', registers: [registry] }).set(open)
  return (await registry.getMetricsAsJSON()) as MetricsJson
}

function peer(shard: number, answer: () => Promise<MetricsJson>): MetricsPeer {
  return {
    shard,
    rpc: { call: (method) => (method === 'metrics' ? answer() : Promise.reject(new Error(method))) },
  }
}

async function summed(parts: MetricsJson[]): Promise<Record<string, number>> {
  const json = await AggregatorRegistry.aggregate(parts).getMetricsAsJSON()
  return Object.fromEntries(json.map((m) => [m.name, m.values.reduce((sum, v) => sum + v.value, 0)]))
}

test('live workers are summed; one that does not answer counts as last read', async () => {
  const metrics = new WorkerMetrics(logger)
  let silent = false
  const a = peer(0, async () => workerSeries(10, 2))
  const b = peer(1, async () => (silent ? Promise.reject(new Error('timeout')) : workerSeries(5, 1)))
  assert.deepEqual(await summed(await metrics.collect([a, b])), { requests_total: 15, open_connections: 3 })
  silent = true
  assert.deepEqual(await summed(await metrics.collect([a, b])), { requests_total: 15, open_connections: 3 })
})

test('dead workers keep their counters in the sums, not their gauges; two deaths both count', async () => {
  const metrics = new WorkerMetrics(logger)
  const a = peer(0, async () => workerSeries(10, 2))
  const b = peer(1, async () => workerSeries(5, 1))
  await metrics.collect([a, b])
  void metrics.retire(0)
  void metrics.retire(1) // at once: each adds to what the other left
  const fresh = peer(0, async () => workerSeries(1, 1))
  assert.deepEqual(await summed(await metrics.collect([fresh])), { requests_total: 16, open_connections: 1 })
})

/**
 * The ways a series of ServerMetrics gets its values at scrape time, shared by the per-area files
 * (`*-metrics.ts`): a counter copied from a source that is already monotonic, a gauge read from
 * state, and a histogram rendered from bucket snapshots taken elsewhere.
 */
import { Counter, Gauge, type Metric, type Registry } from 'prom-client'
import type { HistogramSnapshot } from './histogram.ts'

export type Labels = Record<string, string>
export type Samples = readonly (readonly [Labels, number])[]

/**
 * A counter whose value is read at scrape time from a source that is already monotonic: each
 * collect replaces the values, in one synchronous step after the read, so two concurrent scrapes
 * cannot interleave a reset with an increment.
 */
export function monotonic(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  read: () => Samples | Promise<Samples>,
): Counter {
  return new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect() {
      const values = await read()
      this.reset()
      for (const [labels, value] of values) this.inc(labels, Math.max(0, value))
    },
  })
}

/** A gauge read at scrape time; `aggregator` says how a cluster's primary adds the workers' values. */
export function scrapeGauge(
  registry: Registry,
  name: string,
  help: string,
  read: () => number,
  aggregator: 'sum' | 'max' = 'sum',
): Gauge {
  return new Gauge({
    name,
    help,
    registers: [registry],
    aggregator,
    collect() {
      this.set(read())
    },
  })
}

/** Registers a histogram whose buckets are counted elsewhere (see SnapshotHistogram). */
export function snapshotHistogram(
  registry: Registry,
  name: string,
  help: string,
  read: () => Promise<{ labels: Labels; snapshot: HistogramSnapshot }[]>,
): void {
  registry.registerMetric(new SnapshotHistogram(name, help, read) as unknown as Metric)
}

/**
 * A histogram rendered from bucket snapshots taken elsewhere (the delivery thread, the ingest
 * path's plain counters), exactly as a prom-client Histogram renders its own: cumulative
 * `_bucket{le}` series ending with +Inf, `_sum` and `_count`.
 */
class SnapshotHistogram {
  readonly name: string
  readonly help: string
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #read: () => Promise<{ labels: Labels; snapshot: HistogramSnapshot }[]>

  constructor(
    name: string,
    help: string,
    read: () => Promise<{ labels: Labels; snapshot: HistogramSnapshot }[]>,
  ) {
    this.name = name
    this.help = help
    this.#read = read
  }

  async get() {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = []
    for (const { labels, snapshot } of await this.#read()) {
      snapshot.buckets.forEach((le, i) => {
        values.push({
          labels: { ...labels, le },
          value: snapshot.counts[i],
          metricName: `${this.name}_bucket`,
        })
      })
      values.push({
        labels: { ...labels, le: '+Inf' },
        value: snapshot.count,
        metricName: `${this.name}_bucket`,
      })
      values.push({ labels, value: snapshot.sum, metricName: `${this.name}_sum` })
      values.push({ labels, value: snapshot.count, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }

  reset(): void {}
}

/**
 * The API port's series: requests by route and status, requests per API key, and the ingest
 * routes' latency. Counted on the hot path in plain numbers and maps (one lookup per request);
 * prom-client builds the series from them at scrape time.
 */
import type { Registry } from 'prom-client'
import { Histogram } from './histogram.ts'
import { type Labels, monotonic, snapshotHistogram } from './series.ts'

const LATENCY_MS_BUCKETS = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000]
const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

export class HttpMetrics {
  readonly #requests = new Map<string, { labels: Labels; count: number }>()
  readonly #keyRequests = new Map<string, { labels: Labels; count: number }>()
  readonly #ingestLatency = new Map<string, { labels: Labels; histogram: Histogram }>()

  register(registry: Registry): void {
    monotonic(
      registry,
      'http_requests_total',
      'HTTP requests answered on the API port, by route, method and status.',
      ['route', 'method', 'status'],
      () => [...this.#requests.values()].map(({ labels, count }) => [labels, count]),
    )
    monotonic(
      registry,
      'api_key_requests_total',
      'Requests on routes that need an API key, by key label (`missing`, `unrecognised` for the refused), route and status.',
      ['key', 'route', 'status'],
      () => [...this.#keyRequests.values()].map(({ labels, count }) => [labels, count]),
    )
    snapshotHistogram(
      registry,
      'ingest_latency_ms',
      'Time from a POST on an ingest route being received to its answer, in milliseconds.',
      async () =>
        [...this.#ingestLatency.values()].map(({ labels, histogram }) => ({
          labels,
          snapshot: histogram.snapshot(),
        })),
    )
  }

  /** One answered request on the API port; `ingest` adds it to `ingest_latency_ms`. */
  request(route: string, method: string, status: number, elapsedMs: number, ingest: boolean): void {
    const m = HTTP_METHODS.has(method) ? method : 'OTHER'
    const key = `${route} ${m} ${status}`
    const entry = this.#requests.get(key)
    if (entry) entry.count++
    else this.#requests.set(key, { labels: { route, method: m, status: String(status) }, count: 1 })
    if (!ingest) return
    let latency = this.#ingestLatency.get(key)
    if (!latency) {
      latency = { labels: { route, status: String(status) }, histogram: new Histogram(LATENCY_MS_BUCKETS) }
      this.#ingestLatency.set(key, latency)
    }
    latency.histogram.observe(elapsedMs)
  }

  /**
   * One answered request on a route that needs an API key: `key` is the key's label, `missing`
   * (none sent) or `unrecognised` (never the key itself, so the label set stays bounded).
   */
  keyedRequest(key: string, route: string, status: number): void {
    const id = `${key} ${route} ${status}`
    const entry = this.#keyRequests.get(id)
    if (entry) entry.count++
    else this.#keyRequests.set(id, { labels: { key, route, status: String(status) }, count: 1 })
  }
}

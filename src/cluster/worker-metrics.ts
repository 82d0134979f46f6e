/**
 * The workers' metrics as the primary adds them to its own when `/metrics` is scraped (counters
 * and histograms summed by prom-client's AggregatorRegistry). Each worker is asked at every scrape
 * and every REFRESH_MS, so one that dies loses at most that much of its counts; a dead worker's
 * last counters and histograms stay in the sums (the node's counters never go down), its gauges go.
 */
import type { MetricObjectWithValues, MetricValue } from 'prom-client'
import { AggregatorRegistry } from 'prom-client'
import type { Logger } from '../telemetry/logger.ts'

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[]

const CALL_TIMEOUT_MS = 2000
const REFRESH_MS = 5000

/** A worker to ask: its shard and its channel (ipc.ts Rpc). */
export interface MetricsPeer {
  readonly shard: number
  readonly rpc: { call(method: string, args: unknown, timeoutMs: number): Promise<unknown> }
}

export class WorkerMetrics {
  readonly #logger: Logger
  readonly #last = new Map<number, MetricsJson>()
  #retired: MetricsJson = []
  /** Retirements one at a time: each adds to the sums the previous one left. */
  #retiring: Promise<void> = Promise.resolve()
  #refresh: NodeJS.Timeout | undefined

  constructor(logger: Logger) {
    this.#logger = logger
  }

  /** Every live worker's metrics (as last read when one does not answer), and the dead ones' sums. */
  async collect(live: readonly MetricsPeer[]): Promise<MetricsJson[]> {
    const theirs = await Promise.all(live.map((peer) => this.#read(peer)))
    await this.#retiring
    return [...theirs.filter((m): m is MetricsJson => m !== undefined), this.#retired]
  }

  /** Keeps shard n's last counters and histograms: its worker died. */
  retire(shard: number): Promise<void> {
    const last = this.#last.get(shard)?.filter((m) => ['counter', 'histogram'].includes(String(m.type)))
    this.#last.delete(shard)
    if (!last?.length) return this.#retiring
    this.#retiring = this.#retiring.then(async () => {
      this.#retired = (await AggregatorRegistry.aggregate([
        this.#retired,
        last,
      ]).getMetricsAsJSON()) as MetricsJson
    })
    return this.#retiring
  }

  /** Reads the live workers every REFRESH_MS, until `stop`. */
  startRefresh(live: () => readonly MetricsPeer[]): void {
    this.#refresh = setInterval(() => void Promise.all(live().map((peer) => this.#read(peer))), REFRESH_MS)
    this.#refresh.unref()
  }

  stop(): void {
    clearInterval(this.#refresh)
  }

  async #read(peer: MetricsPeer): Promise<MetricsJson | undefined> {
    try {
      this.#last.set(peer.shard, (await peer.rpc.call('metrics', null, CALL_TIMEOUT_MS)) as MetricsJson)
    } catch (error) {
      this.#logger.debug({ err: error, shard: peer.shard }, 'WorkerMetricsUnanswered')
    }
    return this.#last.get(peer.shard)
  }
}

/**
 * The Prometheus metrics of one server, served on the operations port (docs/ARCHITECTURE.md "The API").
 *
 * One registry per server, never prom-client's global one, so tests run several servers in one
 * process. Each area registers its own series in a file of its own (`*-metrics.ts`, with the
 * reading it needs declared there, so telemetry imports nothing from the areas it observes);
 * ServerMetrics composes them from the sources a process has. Three kinds of series:
 * - counted as things happen on the HTTP thread (intake-metrics.ts, http-metrics.ts) in plain
 *   numbers and maps, turned into series only when scraped;
 * - read at scrape time from the HTTP thread's state (collect callbacks): WAL head and backlog,
 *   the commit queue, admission limits and refusals;
 * - read at scrape time from the delivery thread, once per scrape, and kept monotonic across
 *   restarts of that thread (delivery-metrics.ts).
 */
import {
  AggregatorRegistry,
  collectDefaultMetrics,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client'
import { type AdmissionReading, registerAdmissionMetrics } from './admission-metrics.ts'
import { type ClusterReading, registerClusterMetrics } from './cluster-metrics.ts'
import { type ConsumeReading, registerConsumeMetrics } from './consume-metrics.ts'
import { type DeadLetterReading, registerDeadLetterMetrics } from './dead-letter-metrics.ts'
import { registerDeliveryDedupMetrics, registerL1Metrics } from './dedup-metrics.ts'
import { DeliveryMetrics, type DeliveryReading, type SinkBacklogReading } from './delivery-metrics.ts'
import { HttpMetrics } from './http-metrics.ts'
import { IntakeMetrics, type IntakeRecorder } from './intake-metrics.ts'
import type { RejectReason } from './reasons.ts'
import { registerCommitQueueMetrics, registerWalMetrics, type WalReading } from './wal-metrics.ts'

export type { AdmissionReading } from './admission-metrics.ts'
export type { ClusterReading } from './cluster-metrics.ts'
export type { ConsumeReading } from './consume-metrics.ts'
export type { DeadLetterReading } from './dead-letter-metrics.ts'
export type { DeliveryReading } from './delivery-metrics.ts'
export type { IntakeRecorder } from './intake-metrics.ts'
export type { RejectReason } from './reasons.ts'
export type { WalReading } from './wal-metrics.ts'

/** Where scrape-time values come from; every function but `delivery` must be cheap and sync. */
export interface MetricSources {
  /** Events waiting for a WAL group commit. */
  readonly queuedEvents: () => number
  /** Keys in the L1 dedup cache. */
  readonly l1Keys?: () => number
  /** The WAL delivery reads (absent in a cluster worker, whose shard the primary reports). */
  readonly wal?: () => WalReading
  /** Per sink, from the shared cursors (no message to the delivery thread). */
  readonly sinkBacklog?: SinkBacklogReading
  readonly admission: () => readonly AdmissionReading[]
  /**
   * null when the reading is not trustworthy (the thread restarted while answering). Absent in a
   * cluster worker: delivery runs in the primary, whose series are added to the workers'.
   */
  readonly delivery?: () => Promise<DeliveryReading | null>
  /** `spillway consume` only: what it took from the log and committed back. */
  readonly consume?: () => ConsumeReading
  /** The primary of `serve --workers N` only. */
  readonly cluster?: () => ClusterReading
  /** The node's dead-letter store (absent in a cluster worker: its primary reports it). */
  readonly deadLetter?: () => Promise<DeadLetterReading>
}

export class ServerMetrics implements IntakeRecorder {
  readonly registry: Registry
  readonly #intake: IntakeMetrics
  readonly #http = new HttpMetrics()

  constructor(sources: MetricSources, options: { defaultMetrics?: boolean } = {}) {
    const registry = new Registry()
    this.registry = registry
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry })
    const delivery = new DeliveryMetrics(sources.delivery)
    this.#intake = new IntakeMetrics(delivery)

    this.#intake.register(registry)
    this.#http.register(registry)
    registerCommitQueueMetrics(registry, sources.queuedEvents)
    registerL1Metrics(registry, () => sources.l1Keys?.() ?? 0)
    if (sources.consume) registerConsumeMetrics(registry, sources.consume)
    registerAdmissionMetrics(registry, sources.admission)
    const { wal, sinkBacklog } = sources
    if (wal && sinkBacklog && sources.delivery) {
      registerDeliveryDedupMetrics(registry, delivery)
      registerWalMetrics(registry, wal)
      delivery.register(registry, sinkBacklog)
    }
    if (sources.cluster) registerClusterMetrics(registry, sources.cluster)
    if (sources.deadLetter) registerDeadLetterMetrics(registry, sources.deadLetter)
  }

  // --- IntakeRecorder and the HTTP layer's counts (on the hot path: plain numbers) ---------------

  received(count: number): void {
    this.#intake.received(count)
  }

  duplicate(count: number): void {
    this.#intake.duplicate(count)
  }

  accepted(count: number): void {
    this.#intake.accepted(count)
  }

  rejected(reason: RejectReason, count: number): void {
    this.#intake.rejected(reason, count)
  }

  deadLettered(count: number): void {
    this.#intake.deadLettered(count)
  }

  rejectedBy(error: unknown, count: number): void {
    this.#intake.rejectedBy(error, count)
  }

  /** See IntakeMetrics.requestFailed. */
  requestFailed(error: unknown): void {
    this.#intake.requestFailed(error)
  }

  /** See HttpMetrics.request. */
  request(route: string, method: string, status: number, elapsedMs: number, ingest: boolean): void {
    this.#http.request(route, method, status, elapsedMs, ingest)
  }

  /** See HttpMetrics.keyedRequest. */
  keyedRequest(key: string, route: string, status: number): void {
    this.#http.keyedRequest(key, route, status)
  }

  /** The exposition text and its content type; `others` (a cluster's workers) are added in. */
  async render(others?: () => Promise<MetricObjectWithValues<MetricValue<string>>[][]>): Promise<{
    contentType: string
    body: string
  }> {
    if (!others) return { contentType: this.registry.contentType, body: await this.registry.metrics() }
    const [own, theirs] = await Promise.all([this.registry.getMetricsAsJSON(), others()])
    const merged = AggregatorRegistry.aggregate([own, ...theirs])
    return { contentType: merged.contentType, body: await merged.metrics() }
  }
}

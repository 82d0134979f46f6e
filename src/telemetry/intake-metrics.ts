/**
 * The `events_*` counters: what became of the events that reached the ingest routes.
 *
 * Counting unit: events, once a body was read as events; a request refused before that
 * (admission, 415, 413, a body that is not JSON) counts as one event. So
 * `events_received_total = events_accepted_total + events_duplicate_total + events_rejected_total`.
 * Counted on the HTTP thread in plain numbers; the delivery-time duplicates and dead letters are
 * read from the delivery thread at scrape time.
 */
import type { Registry } from 'prom-client'
import type { DeliveryMetrics } from './delivery-metrics.ts'
import { REJECT_REASONS, type RejectReason, reasonOf } from './reasons.ts'
import { monotonic } from './series.ts'

/** What the intake reports (implemented by ServerMetrics; the Ingestor depends on this only). */
export interface IntakeRecorder {
  received(count: number): void
  accepted(count: number): void
  /** Events answered as duplicates by L1 (received, not appended). */
  duplicate(count: number): void
  rejected(reason: RejectReason, count: number): void
  deadLettered(count: number): void
  /** Counts `count` events rejected for `error` and marks it, so the HTTP layer does not count it again. */
  rejectedBy(error: unknown, count: number): void
}

const DUPLICATE_LAYERS = ['l1', 'l2', 'delivery'] as const

export class IntakeMetrics implements IntakeRecorder {
  readonly #delivery: DeliveryMetrics
  readonly #counted = new WeakSet<object>()
  #received = 0
  #accepted = 0
  #l1Duplicates = 0
  #deadLettered = 0
  readonly #rejected = new Map<RejectReason, number>(REJECT_REASONS.map((r) => [r, 0]))

  constructor(delivery: DeliveryMetrics) {
    this.#delivery = delivery
  }

  register(registry: Registry): void {
    monotonic(
      registry,
      'events_received_total',
      'Events received on the ingest routes (a request refused before its body was read counts as one).',
      [],
      () => [[{}, this.#received]],
    )
    monotonic(
      registry,
      'events_accepted_total',
      'Events acknowledged with 202 (in the WAL, fdatasynced unless the fast answer was asked for).',
      [],
      () => [[{}, this.#accepted]],
    )
    monotonic(registry, 'events_rejected_total', 'Events not accepted, by reason.', ['reason'], () =>
      [...this.#rejected].map(([reason, count]) => [{ reason }, count]),
    )
    monotonic(
      registry,
      'events_duplicate_total',
      'Events recognised as duplicates, by dedup layer.',
      ['layer'],
      async () => {
        // Delivery-time layers: every sink's check skips the same events; the first sink's count.
        const totals = await this.#delivery.totals()
        const first = this.#delivery.firstSink()
        const t = first ? totals.get(first.sink) : undefined
        const counts = {
          l1: this.#l1Duplicates,
          l2: t?.duplicatesL2 ?? 0,
          delivery: t?.duplicatesDelivery ?? 0,
        }
        return DUPLICATE_LAYERS.map((layer) => [{ layer }, counts[layer]])
      },
    )
    // In every process that takes requests: a cluster worker's intake count reaches the primary's
    // sum only if the worker exposes it (its delivery part is 0: delivery runs in the primary).
    monotonic(
      registry,
      'events_dead_lettered_total',
      'Events written to the dead-letter store: invalid batch events (intake) and events a sink refused permanently (delivery).',
      ['source'],
      async () => {
        let delivery = 0
        for (const t of (await this.#delivery.totals()).values()) delivery += t.deadLettered
        return [
          [{ source: 'intake' }, this.#deadLettered],
          [{ source: 'delivery' }, delivery],
        ]
      },
    )
  }

  received(count: number): void {
    this.#received += count
  }

  duplicate(count: number): void {
    this.#l1Duplicates += count
  }

  accepted(count: number): void {
    this.#accepted += count
  }

  rejected(reason: RejectReason, count: number): void {
    this.#rejected.set(reason, (this.#rejected.get(reason) ?? 0) + count)
  }

  deadLettered(count: number): void {
    if (count > 0) this.#deadLettered += count
  }

  rejectedBy(error: unknown, count: number): void {
    this.rejected(reasonOf(error), count)
    if (typeof error === 'object' && error !== null) this.#counted.add(error)
  }

  /**
   * An ingest request failed with `error` outside the intake (admission, body parsing, bad query
   * string): one event received and rejected — unless the intake counted this error already.
   */
  requestFailed(error: unknown): void {
    if (typeof error === 'object' && error !== null && this.#counted.has(error)) return
    this.received(1)
    this.rejected(reasonOf(error), 1)
  }
}

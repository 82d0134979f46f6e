/**
 * The dead-letter store's size against its bounds, read from its files at scrape time (not in a
 * cluster worker: its primary reports the node's store). Events written to it are counted by
 * `events_dead_lettered_total` (intake-metrics.ts).
 */
import { Gauge, type Registry } from 'prom-client'

/** What the dead-letter store holds, every writer's files together, and its bounds. */
export interface DeadLetterReading {
  readonly bytes: number
  readonly entries: number
  readonly maxBytes: number
  readonly maxEntries: number
}

export function registerDeadLetterMetrics(registry: Registry, read: () => Promise<DeadLetterReading>): void {
  const series: [string, string, (r: DeadLetterReading) => number][] = [
    [
      'deadletter_bytes',
      'Bytes of the dead-letter store (<dataDir>/deadletter), every writer together.',
      (r) => r.bytes,
    ],
    ['deadletter_entries', 'Entries of the dead-letter store.', (r) => r.entries],
    [
      'deadletter_limit_bytes',
      'maxDeadLetterBytes: past it, batches with invalid events get 503.',
      (r) => r.maxBytes,
    ],
    [
      'deadletter_limit_entries',
      'maxDeadLetterEntries: past it, batches with invalid events get 503.',
      (r) => r.maxEntries,
    ],
  ]
  for (const [name, help, value] of series) {
    new Gauge({
      name,
      help,
      registers: [registry],
      aggregator: 'max',
      async collect() {
        this.set(value(await read()))
      },
    })
  }
}

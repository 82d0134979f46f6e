/** The primary's own series in `serve --workers N`: its workers and their WAL shards (src/cluster/primary.ts). */
import { Gauge, type Registry } from 'prom-client'
import { monotonic, scrapeGauge } from './series.ts'

export interface ClusterReading {
  /** Worker processes running now. */
  readonly running: number
  readonly workers: number
  /** Workers that died and were started again. */
  readonly restarts: number
  /** Per shard: its durable head and the bytes not yet moved into the delivery WAL. */
  readonly shards: readonly { readonly shard: number; readonly head: number; readonly backlogBytes: number }[]
}

export function registerClusterMetrics(registry: Registry, cluster: () => ClusterReading): void {
  scrapeGauge(
    registry,
    'cluster_workers',
    'HTTP worker processes configured (`workers`).',
    () => cluster().workers,
  )
  scrapeGauge(
    registry,
    'cluster_workers_running',
    'HTTP worker processes running now (less than cluster_workers while one is restarted).',
    () => cluster().running,
  )
  monotonic(
    registry,
    'cluster_worker_restarts_total',
    'HTTP worker processes that died and were started again.',
    [],
    () => [[{}, cluster().restarts]],
  )
  const perShard = (name: string, help: string, pick: (s: ClusterReading['shards'][number]) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['shard'],
      registers: [registry],
      collect() {
        this.reset()
        for (const shard of cluster().shards) this.set({ shard: String(shard.shard) }, pick(shard))
      },
    })
  perShard(
    'wal_shard_head_bytes',
    'End of the durable WAL shard of each worker (a byte position).',
    (s) => s.head,
  )
  perShard(
    'wal_shard_backlog_bytes',
    "Bytes of each worker's WAL shard not yet moved into the WAL delivery reads.",
    (s) => s.backlogBytes,
  )
}

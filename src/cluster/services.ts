/**
 * What the primary answers its workers over IPC (ipc.ts): queries on the node's store, the
 * node's readiness, rate-limit tokens (one bucket per key for the whole node, shared through Redis
 * when configured), and their reports of their shards' durable heads.
 */
import type { DeliveryHost } from '../delivery/host.ts'
import type { TokenSource } from '../http/rate-limit.ts'
import type { Readiness } from '../http/readiness.ts'
import type { GroupBy, MetricsQuery, SeriesQuery, TopEventsQuery } from '../query/types.ts'
import type { ClusterReading } from '../telemetry/metrics.ts'
import type { Rpc } from './ipc.ts'

export interface PrimaryServices {
  readonly query: Pick<DeliveryHost, 'totals' | 'groups' | 'topEvents' | 'series'>
  readonly readiness: () => Promise<Readiness>
  /** Undefined when rate limits are off. */
  readonly limiter: TokenSource | undefined
  readonly reportHead: (shard: number, head: unknown) => void
}

/** Answers shard n's worker on `rpc`. */
export function serveWorker(rpc: Rpc, shard: number, services: PrimaryServices): void {
  const { query, limiter } = services
  rpc
    .handle('totals', (q) => query.totals(q as MetricsQuery))
    .handle('groups', (q) => query.groups(q as MetricsQuery & { group_by: GroupBy }))
    .handle('topEvents', (q) => query.topEvents(q as TopEventsQuery))
    .handle('series', (q) => query.series(q as SeriesQuery))
    .handle('ready', () => services.readiness())
    .handle('token', (client) => {
      if (!limiter) throw new Error('rate limits are off')
      return limiter.take(String(client))
    })
    .onNote('head', (head) => services.reportHead(shard, head))
}

/**
 * The node's readiness with the cluster's part: how many workers run (shown, it does not decide:
 * a restarting worker leaves the others serving) and each shard's head and unmerged bytes.
 */
export function clusterReadiness(node: Readiness, cluster: ClusterReading): Readiness {
  const { workers, running, restarts } = cluster
  return {
    ...node,
    details: {
      ...node.details,
      workers: { ok: running === workers, running, workers, restarts },
      shards: cluster.shards,
    },
  }
}

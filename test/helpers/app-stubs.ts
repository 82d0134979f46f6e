/**
 * What a unit test of the API app (buildApp) gives it when the test is about the HTTP side: a
 * metrics registry over a WAL that holds nothing and no delivery, a query store with no rows, and
 * the app itself over a WAL stub the test scripts.
 */
import type { FastifyInstance } from 'fastify'
import type { Config } from '../../src/config/schema.ts'
import { Admission } from '../../src/http/admission.ts'
import { buildApp } from '../../src/http/app.ts'
import { Ingestor } from '../../src/ingest/ingestor.ts'
import type { ExploreBackend, QueryBackend } from '../../src/query/types.ts'
import { createLogger, type Logger } from '../../src/telemetry/logger.ts'
import { type MetricSources, ServerMetrics } from '../../src/telemetry/metrics.ts'
import type { WalWriter } from '../../src/wal/writer.ts'

/** An empty WAL's figures, as the metrics read them. */
export const EMPTY_WAL: ReturnType<NonNullable<MetricSources['wal']>> = {
  head: 0,
  backlogBytes: 0,
  pendingBytes: 0,
  fsyncs: 0,
  records: 0,
  bytes: 0,
  failedGroups: 0,
}

/** ServerMetrics over `admission`, an empty WAL and a delivery thread with no sink. */
export function stubMetrics(admission: Admission, queuedEvents: () => number = () => 0): ServerMetrics {
  return new ServerMetrics(
    {
      queuedEvents,
      wal: () => EMPTY_WAL,
      sinkBacklog: () => [],
      admission: () => admission.state(),
      delivery: async () => ({ generation: 0, running: true, sinks: [] }),
    },
    { defaultMetrics: false },
  )
}

/** A query store that answers every query with nothing. */
export const EMPTY_QUERY: QueryBackend & ExploreBackend = {
  totals: async () => ({ total_events: 0, unique_users: 0 }),
  groups: async () => [],
  topEvents: async () => [],
  series: async () => [],
}

/**
 * The API app over `wal` (a stub the test scripts), with the configured admission bounds, an
 * Ingestor, stubMetrics and EMPTY_QUERY; closed after the test.
 */
export async function stubApp(
  t: { after: (fn: () => Promise<void>) => void },
  config: Config,
  wal: WalWriter,
  logger: Logger = createLogger('silent'),
): Promise<{ app: FastifyInstance; admission: Admission; ingestor: Ingestor; metrics: ServerMetrics }> {
  let ingestor: Ingestor | undefined
  const queuedEvents = () => ingestor?.pendingEvents ?? 0
  const admission = new Admission(
    {
      maxPendingBytes: config.maxPendingBytes,
      maxWalBacklogBytes: config.maxWalBacklogBytes,
      queueSize: config.queueSize,
    },
    { queuedEvents, walBacklogBytes: () => 0, deliveredPosition: () => 0 },
  )
  const metrics = stubMetrics(admission, queuedEvents)
  ingestor = new Ingestor(wal, config, undefined, metrics)
  const app = await buildApp({
    config,
    ingestor,
    admission,
    metrics,
    query: EMPTY_QUERY,
    readiness: async () => ({ ok: true }),
    logger,
  })
  t.after(() => app.close())
  return { app, admission, ingestor, metrics }
}

/**
 * What a unit test of the API app (buildApp) gives it when the test is about the HTTP side: a
 * metrics registry over a WAL that holds nothing and no delivery, and a query store with no rows.
 */
import type { Admission } from '../../src/http/admission.ts'
import type { ExploreBackend, QueryBackend } from '../../src/query/types.ts'
import { type MetricSources, ServerMetrics } from '../../src/telemetry/metrics.ts'

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

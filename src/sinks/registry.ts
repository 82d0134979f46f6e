/**
 * Sink names (as in `SPILLWAY_SINKS` / `--sinks`) → sink instances, and the query backend of the
 * first sink in the list that is a store (the one that answers `GET /metrics`). Adding a sink
 * means one case here and one value in the config schema's `sinks` list.
 */
import { join } from 'node:path'
import type { Config } from '../config/schema.ts'
import { spillwayError } from '../errors.ts'
import type { ExploreBackend, QueryBackend } from '../query/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import { clickhouseSinkOptions } from './clickhouse/config.ts'
import { ClickHouseQueryBackend } from './clickhouse/query.ts'
import { ClickHouseSink } from './clickhouse/sink.ts'
import { DuckDbQueryBackend } from './duckdb/query.ts'
import { DuckDbSink } from './duckdb/sink.ts'
import { httpSinkOptions } from './http/config.ts'
import { HttpSink } from './http/sink.ts'
import { kafkaSinkOptions } from './kafka/config.ts'
import { KafkaSink } from './kafka/sink.ts'
import { MemoryQueryBackend } from './memory/query.ts'
import { MemorySink } from './memory/sink.ts'
import { natsSinkOptions } from './nats/config.ts'
import { NatsSink } from './nats/sink.ts'
import type { Sink } from './sink.ts'

export function createSink(name: string, config: Config, logger: Logger): Sink {
  switch (name) {
    case 'duckdb':
      return new DuckDbSink({
        path: config.duckdbPath || join(config.dataDir, 'spillway.duckdb'),
        name,
        logger: logger.child({ sink: name }),
        settings: { threads: String(config.duckdbThreads), memory_limit: config.duckdbMemoryLimit },
        batchRows: config.duckdbBatchRows,
        batchBytes: config.duckdbBatchBytes,
      })
    case 'clickhouse':
      return new ClickHouseSink(clickhouseSinkOptions(config, name, logger.child({ sink: name })))
    case 'kafka':
      return new KafkaSink(kafkaSinkOptions(config, name, logger.child({ sink: name })))
    case 'nats':
      return new NatsSink(natsSinkOptions(config, name, logger.child({ sink: name })))
    case 'http':
      return new HttpSink(httpSinkOptions(config, name, logger.child({ sink: name })))
    case 'memory':
      return new MemorySink({ name })
    default:
      throw spillwayError(
        'SPW_ERR_CONFIG_INVALID',
        `unknown sink "${name}"; known sinks: duckdb, clickhouse, kafka, nats, http, memory`,
      )
  }
}

/** A query backend that may hold resources of its own (a connection). */
export type ClosableQueryBackend = QueryBackend & ExploreBackend & { close?(): Promise<void> }

/**
 * The query backend of the first sink that is a store; one that always fails when there is none.
 * Build it from the sinks the delivery thread owns: the backend borrows the sink's database.
 * Sinks that only forward (http) are skipped: `duckdb,http` and `http,duckdb` both query DuckDB,
 * `clickhouse,duckdb` queries ClickHouse, and `http` alone answers `GET /metrics` with 503 naming
 * the missing store.
 */
export function createQueryBackend(
  sinks: readonly Sink[],
  bounds: { readonly timeoutMs?: number; readonly queueSize?: number } = {},
): ClosableQueryBackend {
  for (const sink of sinks) {
    if (sink instanceof DuckDbSink) return new DuckDbQueryBackend(sink, bounds)
    if (sink instanceof ClickHouseSink)
      return new ClickHouseQueryBackend(sink, bounds.timeoutMs ? { timeoutMs: bounds.timeoutMs } : {})
    if (sink instanceof MemorySink) return new MemoryQueryBackend(sink)
  }
  const names = sinks.map((s) => s.name)
  return unavailable(
    `no configured sink can answer queries (sinks: ${names.join(', ') || 'none'}); add a store such as duckdb, or name one with queryStore (e.g. clickhouse, which spillway consume loads)`,
  )
}

/** The query backend that answers every query with 503 and `message`. */
export function unavailable(message: string): ClosableQueryBackend {
  const fail = async (): Promise<never> => {
    throw spillwayError('SPW_ERR_QUERY_NO_STORE', message)
  }
  return { totals: fail, groups: fail, topEvents: fail, series: fail }
}

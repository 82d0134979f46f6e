/**
 * Which store answers a node's queries (`GET /metrics`, the explore queries): the `queryStore`
 * option, independent of the sinks, so a serve node that writes only to Kafka or NATS can answer
 * from the ClickHouse that `spillway consume` loads (docs/ARCHITECTURE.md "Query").
 *
 * - `auto` (default): the first store among `sinks` (duckdb, clickhouse, memory), as before.
 * - `none`: no queries; they answer 503 naming the option.
 * - `clickhouse`: the `clickhouse` sink's table when it is a sink; else a read-only backend of its
 *   own on the `clickhouse*` options (client, database, table), which never creates or writes
 *   anything — the loading node makes the table. Its readiness is a `SELECT 1` (a table not made
 *   yet is no reason to take the node out of a load balancer; the query says so instead).
 * - `duckdb`: only when duckdb is a sink of this node. DuckDB lets one process open a file while
 *   it writes it — another process cannot open it at all, read-only included ("Conflicting lock
 *   is held") — so a node can only query the DuckDB file it writes itself.
 */
import { maskUrl } from '../config/mask.ts'
import type { Config } from '../config/schema.ts'
import { ClickHouseClient } from '../connectors/clickhouse/client.ts'
import { ClickHouseError } from '../connectors/clickhouse/errors.ts'
import { spillwayError } from '../errors.ts'
import type { ExploreBackend, QueryBackend } from '../query/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import { clickhouseSinkOptions } from './clickhouse/config.ts'
import { quoteString } from './clickhouse/escape.ts'
import { ClickHouseQueryBackend, type ClickHouseTargetSource } from './clickhouse/query.ts'
import { detectFeatures, qualifiedName, type ServerFeatures } from './clickhouse/schema.ts'
import { ClickHouseSink, type ClickHouseTarget } from './clickhouse/sink.ts'
import { DuckDbQueryBackend } from './duckdb/query.ts'
import { DuckDbSink } from './duckdb/sink.ts'
import { createQueryBackend, unavailable } from './registry.ts'
import type { Sink } from './sink.ts'

/** Everything a node's query store answers, and what it holds. */
export interface QueryStore extends QueryBackend, ExploreBackend {
  /**
   * Present when the store is not one of the node's sinks (a read-only backend of its own), so
   * readiness pings it; a sink's readiness already covers the store it queries.
   */
  readonly own?: { readonly store: string; ping(): Promise<void> }
  close?(): Promise<void>
}

/** Throws the configuration error a start would (for `config check` too). */
export function checkQueryStore(config: Config): void {
  const { queryStore, sinks } = config
  if (queryStore === 'duckdb' && !sinks.includes('duckdb')) {
    throw spillwayError(
      'SPW_ERR_CONFIG_INVALID',
      `queryStore duckdb needs duckdb in sinks (sinks: ${sinks.join(', ')}): DuckDB lets no other process open a file another one writes, not even read-only, so a node can only query the DuckDB it writes itself; add duckdb to sinks, or use queryStore clickhouse`,
    )
  }
  if (queryStore === 'clickhouse' && !sinks.includes('clickhouse')) {
    if (!config.clickhouseUrl) {
      throw spillwayError(
        'SPW_ERR_CONFIG_INVALID',
        'queryStore clickhouse needs a server: set clickhouseUrl (CLICKHOUSE_URL, --clickhouse-url), plus clickhouseDatabase and clickhouseTable where the consuming node loads the events',
      )
    }
    clickhouseSinkOptions(config, 'queryStore')
  }
}

/**
 * The query store of a node whose delivery thread owns `sinks` (one per `config.sinks` entry):
 * a backend on a sink's database when the store is a sink, else one of its own.
 */
export function openQueryStore(
  config: Config,
  sinks: readonly Sink[],
  bounds: { readonly timeoutMs?: number; readonly queueSize?: number },
  logger: Logger,
): QueryStore {
  checkQueryStore(config)
  switch (config.queryStore) {
    case 'none':
      return unavailable('queries are off on this node (queryStore none)')
    case 'duckdb': {
      const sink = sinks.find((s) => s instanceof DuckDbSink)
      if (sink) return new DuckDbQueryBackend(sink, bounds)
      break
    }
    case 'clickhouse': {
      const sink = sinks.find((s) => s instanceof ClickHouseSink)
      const options = bounds.timeoutMs ? { timeoutMs: bounds.timeoutMs } : {}
      if (sink) return new ClickHouseQueryBackend(sink, options)
      const target = new ReadOnlyClickHouse(config, logger)
      const backend = new ClickHouseQueryBackend(target, options)
      return Object.assign(backend, {
        own: { store: 'clickhouse', ping: () => target.ping() },
        close: async () => target.close(),
      })
    }
  }
  return createQueryBackend(sinks, bounds)
}

/**
 * A ClickHouse table this node reads and never writes: the client on the `clickhouse*` options,
 * the server's features read on first use, and the table checked until it exists.
 */
export class ReadOnlyClickHouse implements ClickHouseTargetSource {
  readonly #client: ClickHouseClient
  readonly #database: string
  readonly #table: string
  readonly #logger: Logger
  #features: Promise<ServerFeatures> | null = null
  #tableSeen = false

  constructor(config: Config, logger: Logger) {
    const options = clickhouseSinkOptions(config, 'queryStore')
    this.#client = new ClickHouseClient({
      url: options.url,
      user: options.user,
      password: options.password,
      timeoutMs: config.queryTimeoutMs,
    })
    this.#database = config.clickhouseDatabase
    this.#table = config.clickhouseTable
    this.#logger = logger.child({ component: 'query-store' })
  }

  async target(): Promise<ClickHouseTarget> {
    if (!this.#features) {
      const pending = detectFeatures(this.#client)
      this.#features = pending
      pending.then(
        (features) =>
          this.#logger.info(
            {
              store: 'clickhouse',
              where: this.#client.where,
              table: `${this.#database}.${this.#table}`,
              ...features,
            },
            'QueryStoreConnected',
          ),
        () => {
          if (this.#features === pending) this.#features = null
        },
      )
    }
    const features = await this.#features
    const table = qualifiedName(this.#database, this.#table)
    if (!this.#tableSeen) {
      // system.tables, not EXISTS TABLE: that fails outright when the database is missing too.
      const exists = (
        await this.#client.query(
          `SELECT count() FROM system.tables WHERE database = ${quoteString(this.#database)} AND name = ${quoteString(this.#table)} FORMAT TabSeparated`,
        )
      ).trim()
      if (exists === '0') {
        throw spillwayError(
          'SPW_ERR_QUERY_FAILED',
          `the query store's table ${this.#database}.${this.#table} does not exist (yet) on ${this.#client.where}: the node that loads ClickHouse creates it; check clickhouseDatabase and clickhouseTable`,
        )
      }
      this.#tableSeen = true
    }
    return { client: this.#client, table, features }
  }

  /** `SELECT 1`; rejects with the reason. */
  async ping(): Promise<void> {
    try {
      await this.#client.query('SELECT 1', { timeoutMs: 2000 })
    } catch (error) {
      const reason =
        error instanceof ClickHouseError
          ? `answered ${error.message}`
          : `did not answer: ${(error as NodeJS.ErrnoException).code ?? ''} ${(error as Error).message}`.trim()
      throw spillwayError(
        'SPW_ERR_QUERY_FAILED',
        `query store clickhouse at ${maskUrl(this.#client.where)} ${reason}`,
        {
          cause: error,
        },
      )
    }
  }

  close(): void {
    this.#client.close()
  }
}

/**
 * Options of the `clickhouse` sink and how they come out of the server's configuration
 * (`clickhouseUrl`, `clickhouseDatabase`, `clickhouseTable`, `clickhouseUser`,
 * `clickhousePassword`, `clickhouseBatchRows`, `clickhouseBatchBytes`).
 */
import { maskUrl } from '../../config/mask.ts'
import type { Config } from '../../config/schema.ts'
import { spillwayError } from '../../errors.ts'
import type { Logger } from '../../telemetry/logger.ts'

export interface ClickHouseSinkOptions {
  /** Sink name: in logs and errors (default `clickhouse`). */
  readonly name?: string
  /** The HTTP interface, `http(s)://host:8123`; `user:password@` in it works too. */
  readonly url: string
  readonly database?: string
  readonly table?: string
  readonly user?: string
  readonly password?: string
  /** Rows / WAL bytes per insert; 0 or absent: the delivery defaults. */
  readonly batchRows?: number
  readonly batchBytes?: number
  /** Bound of one insert, from sending to the answer (then the socket is dropped: retry). */
  readonly insertTimeoutMs?: number
  /** Bound of one query (`GET /metrics`) and of the start-up statements. */
  readonly queryTimeoutMs?: number
  readonly logger?: Logger
}

export const CLICKHOUSE_SINK_DEFAULTS = {
  name: 'clickhouse',
  database: 'default',
  table: 'events',
  user: 'default',
  password: '',
  insertTimeoutMs: 60_000,
  queryTimeoutMs: 30_000,
} as const satisfies Partial<ClickHouseSinkOptions>

/** The sink's options from the server configuration; a missing URL fails naming the option. */
export function clickhouseSinkOptions(config: Config, name: string, logger?: Logger): ClickHouseSinkOptions {
  if (!config.clickhouseUrl) {
    throw spillwayError(
      'SPW_ERR_CONFIG_INVALID',
      `sink ${name} needs a server: set clickhouseUrl (CLICKHOUSE_URL, --clickhouse-url), e.g. http://127.0.0.1:8123`,
    )
  }
  let url: URL
  try {
    url = new URL(config.clickhouseUrl)
  } catch {
    throw spillwayError(
      'SPW_ERR_CONFIG_INVALID',
      `option clickhouseUrl: not a URL: ${JSON.stringify(maskUrl(config.clickhouseUrl))}`,
    )
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw spillwayError(
      'SPW_ERR_CONFIG_INVALID',
      `option clickhouseUrl: expected the HTTP interface (http:// or https://), got ${url.protocol}`,
    )
  }
  return {
    name,
    url: url.href,
    database: config.clickhouseDatabase,
    table: config.clickhouseTable,
    user: config.clickhouseUser,
    password: config.clickhousePassword,
    batchRows: config.clickhouseBatchRows,
    batchBytes: config.clickhouseBatchBytes,
    // Longer than the delivery timeout: the loop counts a slow insert as a retry at its own
    // timeout and waits for this answer, so a late success is not sent twice.
    insertTimeoutMs: Math.max(CLICKHOUSE_SINK_DEFAULTS.insertTimeoutMs, config.deliveryTimeoutMs * 2),
    logger,
  }
}

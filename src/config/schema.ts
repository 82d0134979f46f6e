/**
 * The one configuration schema. Every option has a type, a default, an env name and a `--flag`
 * twin; sources are merged defaults < config file < env < flags, validated once, then frozen.
 * The README's option table is this table.
 */

export type OptionType = 'string' | 'int' | 'enum' | 'list' | 'bool'

export interface OptionSpec {
  readonly type: OptionType
  readonly default: string | number | boolean | readonly string[]
  readonly env: readonly string[]
  readonly flag: string
  readonly doc: string
  readonly min?: number
  readonly max?: number
  readonly values?: readonly string[]
  /** For strings: a regular expression the value must match, and what it means. */
  readonly pattern?: { readonly source: string; readonly means: string }
}

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

export const OPTIONS = {
  httpPort: {
    type: 'int',
    default: 8080,
    min: 0,
    max: 65535,
    env: ['HTTP_PORT'],
    flag: 'http-port',
    doc: 'Port of the HTTP API.',
  },
  host: {
    type: 'string',
    default: '0.0.0.0',
    env: ['SPILLWAY_HOST'],
    flag: 'host',
    doc: 'Address the HTTP API and the operations port bind to.',
  },
  metricsPort: {
    type: 'int',
    default: 9464,
    min: 0,
    max: 65535,
    env: ['METRICS_PORT'],
    flag: 'metrics-port',
    doc: 'Port of the operations endpoint (Prometheus `GET /metrics`); 0 picks a free port.',
  },
  logLevel: {
    type: 'enum',
    default: 'info',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    env: ['LOG_LEVEL'],
    flag: 'log-level',
    doc: 'pino log level.',
  },
  dataDir: {
    type: 'string',
    default: './data',
    env: ['SPILLWAY_DATA_DIR'],
    flag: 'data-dir',
    doc: 'Directory of the WAL, the DuckDB file and the dead letters.',
  },
  sinks: {
    type: 'list',
    default: ['duckdb'],
    values: ['duckdb', 'clickhouse', 'http', 'memory'],
    env: ['SPILLWAY_SINKS'],
    flag: 'sinks',
    doc: 'Comma list of sinks every event is delivered to; the first store in it answers `GET /metrics`.',
  },
  ack: {
    type: 'enum',
    default: 'durable',
    values: ['durable', 'buffered'],
    env: ['SPILLWAY_ACK'],
    flag: 'ack',
    doc: '`durable`: 202 after the WAL fdatasync. `buffered`: 202 once written to the OS, before the fsync (survives a process crash, not a power loss).',
  },
  queueSize: {
    type: 'int',
    default: 200_000,
    min: 1,
    env: ['QUEUE_SIZE'],
    flag: 'queue-size',
    doc: 'Events waiting for a WAL group commit before new requests are refused with 503.',
  },
  maxPendingBytes: {
    type: 'int',
    default: 256 * MiB,
    min: 64 * KiB,
    env: ['SPILLWAY_MAX_PENDING_BYTES'],
    flag: 'max-pending-bytes',
    doc: 'Request bodies held in memory (admitted, not yet in the WAL) before new requests are refused with 503; a chunked or gzip body counts as its route limit until it is decoded.',
  },
  maxWalBacklogBytes: {
    type: 'int',
    default: 8 * GiB,
    min: 1 * MiB,
    env: ['SPILLWAY_MAX_WAL_BACKLOG_BYTES'],
    flag: 'max-wal-backlog-bytes',
    doc: 'WAL bytes not yet delivered to the slowest sink before new requests are refused with 503 (bounds the disk a slow or dead sink can fill).',
  },
  workerPoolSize: {
    type: 'int',
    default: 1,
    min: 1,
    max: 64,
    env: ['WORKER_POOL_SIZE'],
    flag: 'worker-pool-size',
    doc: 'Accepted for compatibility with the reference systems; HTTP worker processes (cluster mode) come with `--workers`.',
  },
  walSegmentBytes: {
    type: 'int',
    default: 64 * MiB,
    min: 64 * KiB,
    max: 4 * GiB,
    env: ['SPILLWAY_WAL_SEGMENT_BYTES'],
    flag: 'wal-segment-bytes',
    doc: 'Size at which the WAL rolls to a new segment file.',
  },
  walGroupCommitBytes: {
    type: 'int',
    default: 4 * MiB,
    min: 4 * KiB,
    env: ['SPILLWAY_WAL_GROUP_COMMIT_BYTES'],
    flag: 'wal-group-commit-bytes',
    doc: 'A group commit is written as soon as this many bytes wait.',
  },
  walGroupCommitDelayMs: {
    type: 'int',
    default: 0,
    min: 0,
    max: 100,
    env: ['SPILLWAY_WAL_GROUP_COMMIT_DELAY_MS'],
    flag: 'wal-group-commit-delay-ms',
    doc: 'Extra time an idle WAL waits to gather appends before it writes (0: write at once; appends that arrive during an fsync always form the next group).',
  },
  maxBodyBytes: {
    type: 'int',
    default: 1 * MiB,
    min: 1 * KiB,
    env: ['SPILLWAY_MAX_BODY_BYTES'],
    flag: 'max-body-bytes',
    doc: 'Largest `POST /events` body, after gzip inflation (413 above).',
  },
  maxBatchBytes: {
    type: 'int',
    default: 16 * MiB,
    min: 1 * KiB,
    max: 256 * MiB,
    env: ['SPILLWAY_MAX_BATCH_BYTES'],
    flag: 'max-batch-bytes',
    doc: 'Largest `POST /events/batch` body, after gzip inflation (413 above).',
  },
  maxBatchEvents: {
    type: 'int',
    default: 10_000,
    min: 1,
    env: ['SPILLWAY_MAX_BATCH_EVENTS'],
    flag: 'max-batch-events',
    doc: 'Most events in one batch request (413 above).',
  },
  maxEventBytes: {
    type: 'int',
    default: 64 * KiB,
    min: 256,
    env: ['SPILLWAY_MAX_EVENT_BYTES'],
    flag: 'max-event-bytes',
    doc: 'Largest single event as JSON (413 for `POST /events`, a rejection by index in a batch).',
  },
  maxStringLength: {
    type: 'int',
    default: 1024,
    min: 16,
    env: ['SPILLWAY_MAX_STRING_LENGTH'],
    flag: 'max-string-length',
    doc: 'Longest value of `event_name`, `user_id`, `campaign_id` and each tag.',
  },
  maxTags: {
    type: 'int',
    default: 100,
    min: 0,
    env: ['SPILLWAY_MAX_TAGS'],
    flag: 'max-tags',
    doc: 'Most entries in `tags`.',
  },
  maxDepth: {
    type: 'int',
    default: 8,
    min: 1,
    max: 64,
    env: ['SPILLWAY_MAX_DEPTH'],
    flag: 'max-depth',
    doc: 'Deepest nesting of objects and arrays inside `metadata`.',
  },
  clockSkewSeconds: {
    type: 'int',
    default: 300,
    min: 0,
    env: ['SPILLWAY_CLOCK_SKEW_SECONDS'],
    flag: 'clock-skew-seconds',
    doc: 'How far in the future a `timestamp` may be before it is refused.',
  },
  deliveryBatchRows: {
    type: 'int',
    default: 20_000,
    min: 1,
    env: ['SPILLWAY_DELIVERY_BATCH_ROWS'],
    flag: 'delivery-batch-rows',
    doc: 'Most events a sink receives in one batch; one batch request is never split, so a request bigger than this goes alone.',
  },
  deliveryBatchBytes: {
    type: 'int',
    default: 16 * MiB,
    min: 1 * KiB,
    env: ['SPILLWAY_DELIVERY_BATCH_BYTES'],
    flag: 'delivery-batch-bytes',
    doc: 'Most WAL bytes in one sink batch.',
  },
  deliveryLingerMs: {
    type: 'int',
    default: 200,
    min: 0,
    env: ['SPILLWAY_DELIVERY_LINGER_MS'],
    flag: 'delivery-linger-ms',
    doc: 'How long a sink waits for a batch to fill before it writes what it has.',
  },
  deliveryTimeoutMs: {
    type: 'int',
    default: 30_000,
    min: 1,
    env: ['SPILLWAY_DELIVERY_TIMEOUT_MS'],
    flag: 'delivery-timeout-ms',
    doc: 'A sink write not answered within this long counts as a retry (the write is not abandoned: the next attempt waits for its answer).',
  },
  breakerFailures: {
    type: 'int',
    default: 5,
    min: 1,
    env: ['SPILLWAY_BREAKER_FAILURES'],
    flag: 'breaker-failures',
    doc: "Consecutive failed writes (retry, error, timeout) that open a sink's circuit breaker.",
  },
  breakerOpenMs: {
    type: 'int',
    default: 5000,
    min: 1,
    env: ['SPILLWAY_BREAKER_OPEN_MS'],
    flag: 'breaker-open-ms',
    doc: 'How long an open breaker lets no write through before one trial; doubles, up to `breakerMaxOpenMs`, while the sink keeps failing.',
  },
  breakerMaxOpenMs: {
    type: 'int',
    default: 60_000,
    min: 1,
    env: ['SPILLWAY_BREAKER_MAX_OPEN_MS'],
    flag: 'breaker-max-open-ms',
    doc: "Longest open period of a sink's circuit breaker.",
  },
  duckdbPath: {
    type: 'string',
    default: '',
    env: ['SPILLWAY_DUCKDB_PATH'],
    flag: 'duckdb-path',
    doc: 'DuckDB database file (default: `<data-dir>/spillway.duckdb`).',
  },
  duckdbThreads: {
    type: 'int',
    default: 1,
    min: 1,
    max: 256,
    env: ['SPILLWAY_DUCKDB_THREADS'],
    flag: 'duckdb-threads',
    doc: 'Threads DuckDB may use for loading and queries; 1 leaves the other cores to the HTTP thread.',
  },
  duckdbMemoryLimit: {
    type: 'string',
    default: '1GB',
    pattern: {
      source: '^\\d+(\\.\\d+)?\\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$',
      means: 'a size such as 512MB or 2GB',
    },
    env: ['SPILLWAY_DUCKDB_MEMORY_LIMIT'],
    flag: 'duckdb-memory-limit',
    doc: "DuckDB's memory_limit (bounded memory, G4), e.g. 512MB, 2GB.",
  },
  shutdownTimeoutMs: {
    type: 'int',
    default: 30_000,
    min: 0,
    env: ['SPILLWAY_SHUTDOWN_TIMEOUT_MS'],
    flag: 'shutdown-timeout-ms',
    doc: 'On SIGTERM, how long to drain before exiting anyway.',
  },
  requestTimeoutMs: {
    type: 'int',
    default: 30_000,
    min: 100,
    env: ['SPILLWAY_REQUEST_TIMEOUT_MS'],
    flag: 'request-timeout-ms',
    doc: 'Longest time a client may take to send a whole request (headers and body); a slower one gets 408 and its connection is closed.',
  },
  headersTimeoutMs: {
    type: 'int',
    default: 10_000,
    min: 100,
    env: ['SPILLWAY_HEADERS_TIMEOUT_MS'],
    flag: 'headers-timeout-ms',
    doc: 'Longest time a client may take to send the request headers (408 after it; capped at `requestTimeoutMs`).',
  },
  kafkaBrokers: {
    type: 'string',
    default: '',
    env: ['KAFKA_BROKERS'],
    flag: 'kafka-brokers',
    doc: 'Kafka bootstrap servers (comma list).',
  },
  kafkaTopic: {
    type: 'string',
    default: 'events',
    env: ['KAFKA_TOPIC'],
    flag: 'kafka-topic',
    doc: 'Kafka topic events are written to.',
  },
  dedupWindowSeconds: {
    type: 'int',
    default: 86_400,
    min: 1,
    max: 30 * 86_400,
    env: ['SPILLWAY_DEDUP_WINDOW_SECONDS'],
    flag: 'dedup-window-seconds',
    doc: 'Events sharing a dedup key within this many seconds are stored once (the TTL of every dedup layer).',
  },
  dedupCacheEntries: {
    type: 'int',
    default: 200_000,
    min: 0,
    max: 50_000_000,
    env: ['SPILLWAY_DEDUP_CACHE_ENTRIES'],
    flag: 'dedup-cache-entries',
    doc: 'Keys each in-process dedup cache holds (L1 on the HTTP path, and the delivery-time cache of each sink); about 50 bytes a key, allocated at start. 0 turns both off.',
  },
  redisUrl: {
    type: 'string',
    default: '',
    env: ['REDIS_URL'],
    flag: 'redis-url',
    doc: 'Redis of the shared dedup layer (L2), e.g. `redis://127.0.0.1:6379/0`; empty: no L2.',
  },
  redisKeyPrefix: {
    type: 'string',
    default: 'spillway:dedup:',
    env: ['SPILLWAY_REDIS_KEY_PREFIX'],
    flag: 'redis-key-prefix',
    doc: "Prefix of the dedup keys in Redis; nodes that must see each other's events share it.",
  },
  redisTimeoutMs: {
    type: 'int',
    default: 1000,
    min: 10,
    env: ['SPILLWAY_REDIS_TIMEOUT_MS'],
    flag: 'redis-timeout-ms',
    doc: 'A Redis round trip slower than this counts as Redis unavailable; delivery goes on without L2.',
  },
  clickhouseUrl: {
    type: 'string',
    default: '',
    env: ['CLICKHOUSE_URL'],
    flag: 'clickhouse-url',
    doc: 'ClickHouse HTTP interface of the `clickhouse` sink, e.g. `http://127.0.0.1:8123` (required when `sinks` lists clickhouse; `user:password@` in it wins over `clickhouseUser`/`clickhousePassword`).',
  },
  clickhouseDatabase: {
    type: 'string',
    default: 'default',
    env: ['CLICKHOUSE_DATABASE'],
    flag: 'clickhouse-database',
    doc: 'ClickHouse database of the events table (created if missing).',
  },
  clickhouseTable: {
    type: 'string',
    default: 'events',
    pattern: { source: '^[A-Za-z_][A-Za-z0-9_]*$', means: 'a plain identifier' },
    env: ['CLICKHOUSE_TABLE'],
    flag: 'clickhouse-table',
    doc: 'ClickHouse table of the events (created if missing: ReplacingMergeTree ordered by `(event_name, event_id)`, partitioned by day).',
  },
  clickhouseUser: {
    type: 'string',
    default: 'default',
    env: ['CLICKHOUSE_USER'],
    flag: 'clickhouse-user',
    doc: 'ClickHouse user.',
  },
  clickhousePassword: {
    type: 'string',
    default: '',
    env: ['CLICKHOUSE_PASSWORD'],
    flag: 'clickhouse-password',
    doc: 'ClickHouse password.',
  },
  clickhouseBatchRows: {
    type: 'int',
    default: 100_000,
    min: 0,
    max: 1_000_000,
    env: ['CLICKHOUSE_BATCH_ROWS'],
    flag: 'clickhouse-batch-rows',
    doc: 'Most rows per ClickHouse insert (0: `deliveryBatchRows`). ClickHouse prefers few large inserts: on 18.16, 100k-row inserts cost half the server time per row of 16k-row ones. At most 1M, so an insert stays one block (all or nothing).',
  },
  clickhouseBatchBytes: {
    type: 'int',
    default: 32 * MiB,
    min: 0,
    max: 256 * MiB,
    env: ['CLICKHOUSE_BATCH_BYTES'],
    flag: 'clickhouse-batch-bytes',
    doc: 'Most WAL bytes per ClickHouse insert (0: `deliveryBatchBytes`).',
  },
  httpSinkUrl: {
    type: 'string',
    default: '',
    pattern: { source: '^(https?://\\S+)?$', means: 'an http:// or https:// URL' },
    env: ['SPILLWAY_HTTP_SINK_URL'],
    flag: 'http-sink-url',
    doc: 'Where the `http` sink POSTs each batch as NDJSON (required when `sinks` lists http).',
  },
  httpSinkTimeoutMs: {
    type: 'int',
    default: 10_000,
    min: 1,
    env: ['SPILLWAY_HTTP_SINK_TIMEOUT_MS'],
    flag: 'http-sink-timeout-ms',
    doc: 'How long the `http` sink waits for an answer to one request before it retries.',
  },
  httpSinkHeaders: {
    type: 'string',
    default: '',
    env: ['SPILLWAY_HTTP_SINK_HEADERS'],
    flag: 'http-sink-headers',
    doc: 'Extra request headers of the `http` sink: a JSON object, or `Name: value` entries separated by newlines or commas.',
  },
  httpSinkGzip: {
    type: 'bool',
    default: true,
    env: ['SPILLWAY_HTTP_SINK_GZIP'],
    flag: 'http-sink-gzip',
    doc: "Gzip the `http` sink's request bodies (`Content-Encoding: gzip`).",
  },
} as const satisfies Record<string, OptionSpec>

export type OptionName = keyof typeof OPTIONS

type ValueOf<S extends OptionSpec> = S['type'] extends 'int'
  ? number
  : S['type'] extends 'bool'
    ? boolean
    : S['type'] extends 'list'
      ? readonly string[]
      : S extends { values: readonly (infer V)[] }
        ? V
        : string

export type Config = { readonly [K in OptionName]: ValueOf<(typeof OPTIONS)[K]> }

/**
 * The `clickhouse` sink: one `INSERT … FORMAT JSONEachRow` per batch over the HTTP interface,
 * gzip'd, into a ReplacingMergeTree table it creates if missing (schema.ts).
 *
 * At least once, made idempotent by the table. ClickHouse cannot commit a cursor with the rows, so
 * the sink has no `loadCursor`: delivery keeps its cursor in a file and, after a crash or a
 * timeout, sends a batch again. The copies share their sorting key (`event_name`, `event_id`,
 * `tenant`), collapse at the next merge, and are never counted before it (clickhouse/query.ts
 * counts `uniqExact(tenant, event_id)`).
 *
 * Rows. Delivery hands whole WAL records as NDJSON (`batch.ndjson`); rows.ts turns them into
 * JSONEachRow without parsing them (re-encoding `metadata` as a string for servers before 22.x,
 * passing the bytes as they are where `input_format_json_read_objects_as_strings` exists). Pieces
 * cut to isolate a refused event come as events and are serialised first. The gzip'd body of the
 * last batch is kept, so a retry of the same batch does not compress it again.
 *
 * Server features (schema.ts) are read on first use, not in `open()`: a server that is down when
 * Spillway starts is an outage like any other — events are acknowledged into the WAL, the
 * readiness probe says why the sink is not ready, and delivery retries until it answers. After a
 * refusal that says the database, table or a column is missing, the next attempt creates them
 * again. Servers with `async_insert` get it for small batches (a quiet stream's trickle of
 * inserts would otherwise make a part each), with `wait_for_async_insert=1` so that `delivered`
 * still means stored.
 *
 * Answers → verdicts: verdict.ts (data errors permanent; everything else, and silence, retry).
 */
import { promisify } from 'node:util'
import { gzip as gzipCallback, constants as zlib } from 'node:zlib'
import { pino } from 'pino'
import { ClickHouseClient } from '../../connectors/clickhouse/client.ts'
import { ClickHouseError, exceptionCode, SCHEMA_CODES } from '../../connectors/clickhouse/errors.ts'
import { noAnswer } from '../../connectors/http/errors.ts'
import { spillwayError } from '../../errors.ts'
import { encodeEvents } from '../../intake/serialize.ts'
import type { Logger } from '../../telemetry/logger.ts'
import { delivered, type Sink, type SinkBatch, type Verdict } from '../sink.ts'
import { CLICKHOUSE_SINK_DEFAULTS, type ClickHouseSinkOptions } from './config.ts'
import { walToJsonEachRow } from './rows.ts'
import { COLUMNS, detectFeatures, ensureSchema, qualifiedName, type ServerFeatures } from './schema.ts'
import { verdictForAnswer, verdictForError } from './verdict.ts'

const gzip = promisify(gzipCallback)

/** Batches below this many rows use `async_insert` where the server has it. */
export const ASYNC_INSERT_MAX_ROWS = 1000

/** What the query backend needs: the client, the quoted table name, the server's features. */
export interface ClickHouseTarget {
  readonly client: ClickHouseClient
  readonly table: string
  readonly features: ServerFeatures
}

export class ClickHouseSink implements Sink {
  readonly name: string
  readonly acceptsNdjson = true
  readonly batchLimits: { readonly rows?: number; readonly bytes?: number }
  readonly database: string
  readonly table: string
  readonly #options: ClickHouseSinkOptions
  readonly #logger: Logger
  readonly #insert: string
  #client: ClickHouseClient | null = null
  #server: Promise<ServerFeatures> | null = null
  #last: { batch: SinkBatch; body: Buffer; rows: number } | undefined

  constructor(options: ClickHouseSinkOptions) {
    this.name = options.name ?? CLICKHOUSE_SINK_DEFAULTS.name
    this.database = options.database ?? CLICKHOUSE_SINK_DEFAULTS.database
    this.table = options.table ?? CLICKHOUSE_SINK_DEFAULTS.table
    this.batchLimits = { rows: options.batchRows || undefined, bytes: options.batchBytes || undefined }
    this.#options = options
    this.#logger = options.logger ?? pino({ level: 'silent' })
    this.#insert = `INSERT INTO ${qualifiedName(this.database, this.table)} (${COLUMNS.join(', ')}) FORMAT JSONEachRow`
  }

  /** Where the sink writes, without credentials. */
  get where(): string {
    return this.#client?.where ?? new URL(this.#options.url).origin
  }

  /**
   * Makes the client and tries the server once: a server that does not answer is logged, not
   * fatal (see the header); a table that cannot serve (missing columns) fails the start.
   */
  async open(): Promise<void> {
    this.#client ??= new ClickHouseClient({
      url: this.#options.url,
      user: this.#options.user,
      password: this.#options.password,
      timeoutMs: this.#options.queryTimeoutMs ?? CLICKHOUSE_SINK_DEFAULTS.queryTimeoutMs,
    })
    try {
      await this.server()
    } catch (error) {
      if ((error as { code?: string }).code === 'SPW_ERR_CONFIG_INVALID') throw error
      this.#logger.warn({ sink: this.name, where: this.where, err: error }, 'ClickHouseUnavailableAtStart')
    }
  }

  /** The server's features, once its database and table exist (connecting on first use). */
  server(): Promise<ServerFeatures> {
    const client = this.#client
    if (!client) return Promise.reject(notOpen(this.name))
    if (!this.#server) {
      const pending = (async () => {
        const features = await detectFeatures(client)
        const warning = await ensureSchema(client, this.database, this.table, features)
        if (warning) this.#logger.warn({ sink: this.name }, warning)
        this.#logger.info(
          { sink: this.name, where: client.where, table: `${this.database}.${this.table}`, ...features },
          'ClickHouseSinkConnected',
        )
        return features
      })()
      this.#server = pending
      pending.catch(() => {
        if (this.#server === pending) this.#server = null
      })
    }
    return this.#server
  }

  /** For the query backend (clickhouse/query.ts). */
  async target(): Promise<ClickHouseTarget> {
    const features = await this.server()
    return { client: this.#client!, table: qualifiedName(this.database, this.table), features }
  }

  async write(batch: SinkBatch): Promise<Verdict> {
    const client = this.#client
    if (!client) throw notOpen(this.name)
    let features: ServerFeatures
    try {
      features = await this.server()
    } catch (error) {
      return { kind: 'retry', error: this.#unavailable(error) }
    }
    let body: Buffer
    let rows: number
    if (this.#last?.batch === batch) {
      body = this.#last.body
      rows = this.#last.rows
    } else {
      const ndjson = batch.ndjson ?? encodeEvents(batch.events)
      if (ndjson.length === 0) return delivered
      const encoded = walToJsonEachRow(ndjson, { objectsAsStrings: features.objectsAsStrings })
      if (!encoded.ok) {
        return {
          kind: 'permanent',
          error: spillwayError(
            'SPW_ERR_SINK_REJECTED',
            `${this.name}: event ${encoded.line} of the batch cannot be stored in ClickHouse: ${encoded.error}`,
          ),
        }
      }
      // Speed over ratio: JSON compresses well even at level 1, and this runs once per batch.
      body = await gzip(encoded.body, { level: zlib.Z_BEST_SPEED })
      rows = encoded.rows
      this.#last = { batch, body, rows }
    }
    const settings: Record<string, number> = {}
    if (features.objectsAsStrings) {
      settings['input_format_json_read_objects_as_strings'] = 1
      settings['input_format_null_as_default'] = 1
    }
    if (features.asyncInsert && rows < ASYNC_INSERT_MAX_ROWS) {
      settings['async_insert'] = 1
      settings['wait_for_async_insert'] = 1
    }
    let verdict: Verdict
    try {
      const answer = await client.request({
        sql: this.#insert,
        data: body,
        gzip: true,
        settings,
        timeoutMs: this.#options.insertTimeoutMs ?? CLICKHOUSE_SINK_DEFAULTS.insertTimeoutMs,
      })
      verdict = verdictForAnswer(this.name, client.where, answer)
      const code = exceptionCode(answer)
      if (code !== undefined && SCHEMA_CODES.has(code)) this.#server = null
    } catch (error) {
      verdict = verdictForError(this.name, client.where, error)
    }
    if (verdict.kind !== 'retry') this.#last = undefined
    if (verdict.kind !== 'delivered') {
      this.#logger.debug(
        { sink: this.name, rows, from: batch.from, to: batch.to, verdict: verdict.kind, err: verdict.error },
        'ClickHouseInsertFailed',
      )
    }
    return verdict
  }

  /**
   * See Sink.recentKeys: the newest `limit` keys received since `sinceMs`, oldest first, so the
   * delivery-time dedup cache is warm after a restart (and a replay after a crash skips the rows
   * ClickHouse already holds instead of inserting copies for the merges to remove).
   */
  async recentKeys(sinceMs: number, limit: number): Promise<[string, number][]> {
    const { client, table, features } = await this.target()
    const at = features.modernTypes ? 'toUnixTimestamp64Milli(received_at)' : 'received_at'
    const text = await client.query(
      `SELECT if(tenant = '', event_id, concat(tenant, '/', event_id)) AS key, ${at} AS at FROM ${table} WHERE ${at} >= ${Math.floor(sinceMs)}
       ORDER BY at DESC LIMIT ${Math.floor(limit)} FORMAT JSONEachRow`,
    )
    const keys: [string, number][] = []
    for (const line of text.split('\n')) {
      if (!line) continue
      const row = JSON.parse(line) as { key: string; at: string | number }
      keys.push([row.key, Number(row.at)])
    }
    return keys.reverse()
  }

  /** `SELECT 1`, after the database and table exist; rejects with the reason otherwise. */
  async ping(): Promise<void> {
    const client = this.#client
    if (!client) throw notOpen(this.name)
    try {
      await this.server()
      await client.query('SELECT 1', { timeoutMs: 2000 })
    } catch (error) {
      throw this.#unavailable(error)
    }
  }

  async close(): Promise<void> {
    this.#client?.close()
    this.#client = null
    this.#server = null
    this.#last = undefined
  }

  #unavailable(error: unknown): Error {
    if ((error as { code?: string }).code === 'SPW_ERR_CONFIG_INVALID') return error as Error
    if (error instanceof ClickHouseError) {
      return spillwayError(
        'SPW_ERR_SINK_UNAVAILABLE',
        `${this.name}: ${this.where} answered ${error.message}`,
        {
          cause: error,
        },
      )
    }
    return noAnswer(this.name, this.where, error)
  }
}

function notOpen(name: string): Error {
  return spillwayError('SPW_ERR_SINK_UNAVAILABLE', `sink ${name} is not open`)
}

/**
 * `GET /metrics` over the DuckDB store, on its own connection of the sink's instance (one
 * instance per file per process, see sinks/duckdb/database.ts). Every query is a prepared
 * statement with bound parameters; the SQL text comes from a closed set (shape × which bounds
 * are present), so a missing bound is absent from the plan rather than an `IS NULL OR` that would
 * hide the range from DuckDB's zone maps. Queries on the one connection run one at a time
 * (a DuckDB connection and its prepared statements are not concurrent); each one is parallel
 * inside DuckDB.
 *
 * Bounded, so a client sending heavy queries cannot make every later one wait without end: at
 * most `queueSize` queries wait behind the running one (the next is refused at once), and a query
 * that has not finished `timeoutMs` after it was asked is answered SPW_ERR_QUERY_BUSY (503) — if
 * it is running, the connection is interrupted, which stops DuckDB's work and keeps the connection.
 *
 * Semantics: `from`/`to` are inclusive Unix seconds on the event `timestamp`; counts are exact
 * (`count(*)`, `count(DISTINCT user_id)`); hour/day groups are the UTC start of the bucket as
 * `2024-08-12T15:00:00Z`, ascending; channel groups are ordered by `total_events` descending,
 * then channel name ascending (the busiest channel first, as in the reference API's example).
 */
import { type DuckDBConnection, type DuckDBPreparedStatement, DuckDBTimestampValue } from '@duckdb/node-api'
import { isSpillwayError, spillwayError } from '../errors.ts'
import type { DuckDbConnector } from '../sinks/duckdb/database.ts'
import type { GroupBy, MetricsQuery, MetricsRow, QueryBackend, Totals } from './types.ts'

type Shape = 'totals' | GroupBy

/** ±9e12 s is beyond year 285,000 and inside DuckDB's TIMESTAMP range (±9.2e18 µs). */
const MAX_SECONDS = 9_000_000_000_000

const COUNTS = 'count(*) AS total_events, count(DISTINCT user_id) AS unique_users'

export interface DuckDbQueryOptions {
  /** Longest a query may wait and run before it is answered busy (default 10 s). */
  readonly timeoutMs?: number
  /** Queries that may wait behind the running one (default 32). */
  readonly queueSize?: number
}

export class DuckDbQueryBackend implements QueryBackend {
  readonly #source: DuckDbConnector
  #connection: Promise<DuckDBConnection> | null = null
  readonly #statements = new Map<string, DuckDBPreparedStatement>()
  #queue: Promise<unknown> = Promise.resolve()
  #closed = false
  readonly #timeoutMs: number
  readonly #queueSize: number
  /** Queries asked and not yet finished (the running one included). */
  #pending = 0
  #live: DuckDBConnection | undefined

  /**
   * `source` hands out connections: the DuckDbSink (the usual case: its instance, a connection
   * closed with the sink), a DuckDbHandle from `openDuckDb`, or a DuckDBInstance. The connection
   * is made on the first query, so the backend may be built before the sink opens.
   */
  constructor(source: DuckDbConnector, options: DuckDbQueryOptions = {}) {
    this.#source = source
    this.#timeoutMs = options.timeoutMs ?? 10_000
    this.#queueSize = options.queueSize ?? 32
  }

  totals(query: MetricsQuery): Promise<Totals> {
    return this.#run(query, 'totals', (rows) => {
      const [total, unique] = rows[0] ?? [0n, 0n]
      return { total_events: Number(total), unique_users: Number(unique) }
    })
  }

  groups(query: MetricsQuery & { readonly group_by: GroupBy }): Promise<MetricsRow[]> {
    const shape = query.group_by
    if (shape !== 'channel' && shape !== 'hour' && shape !== 'day') {
      return Promise.reject(
        invalid(`group_by must be one of channel, hour, day, got "${String(shape).slice(0, 40)}"`),
      )
    }
    return this.#run(query, shape, (rows) =>
      rows.map(([group, total, unique]) => ({
        group: String(group),
        total_events: Number(total),
        unique_users: Number(unique),
      })),
    )
  }

  /** Drops the prepared statements and the connection (the sink closes it too when it closes). */
  close(): Promise<void> {
    return this.#serial(async () => {
      this.#closed = true
      await this.#reset()
    })
  }

  #run<T>(query: MetricsQuery, shape: Shape, read: (rows: unknown[][]) => T): Promise<T> {
    let params: { name: string; from?: DuckDBTimestampValue; to?: DuckDBTimestampValue }
    try {
      params = bounds(query)
    } catch (error) {
      return Promise.reject(error)
    }
    if (this.#pending > this.#queueSize) {
      return Promise.reject(
        spillwayError(
          'SPW_ERR_QUERY_BUSY',
          `too many queries are waiting (queryQueueSize ${this.#queueSize}); retry`,
        ),
      )
    }
    this.#pending++
    const { promise, resolve, reject } = Promise.withResolvers<T>()
    let state: 'waiting' | 'running' | 'done' = 'waiting'
    const timer = setTimeout(() => {
      if (state === 'running') this.#live?.interrupt()
      state = 'done'
      reject(
        spillwayError(
          'SPW_ERR_QUERY_BUSY',
          `the query did not finish within queryTimeoutMs (${this.#timeoutMs} ms); retry`,
        ),
      )
    }, this.#timeoutMs)
    timer.unref()
    const finish = () => {
      clearTimeout(timer)
      this.#pending--
    }
    this.#serial(async () => {
      // Gave up while waiting: its turn is skipped.
      if (state === 'done') return
      state = 'running'
      try {
        const rows = await this.#query(shape, params)
        if (state === 'running') resolve(read(rows))
      } catch (error) {
        if (state === 'running') reject(error)
      } finally {
        state = 'done'
      }
    }).finally(finish)
    return promise
  }

  async #query(
    shape: Shape,
    params: { name: string; from?: DuckDBTimestampValue; to?: DuckDBTimestampValue },
  ): Promise<unknown[][]> {
    if (this.#closed) throw spillwayError('SPW_ERR_QUERY_FAILED', 'the DuckDB query backend is closed')
    try {
      const statement = await this.#statement(shape, params.from !== undefined, params.to !== undefined)
      let index = 1
      statement.bindVarchar(index++, params.name)
      if (params.from) statement.bindTimestamp(index++, params.from)
      if (params.to) statement.bindTimestamp(index++, params.to)
      const reader = await statement.runAndReadAll()
      return reader.getRows() as unknown[][]
    } catch (error) {
      if (isSpillwayError(error)) throw error
      const message = error instanceof Error ? error.message : String(error)
      // An interrupt (a timeout) leaves the connection usable; anything else may mean it is gone
      // (sink closed, database invalidated): start afresh next time.
      if (!/interrupt/i.test(message)) await this.#reset()
      throw spillwayError('SPW_ERR_QUERY_FAILED', `DuckDB query failed: ${message}`, { cause: error })
    }
  }

  async #statement(shape: Shape, from: boolean, to: boolean): Promise<DuckDBPreparedStatement> {
    const key = `${shape}:${from ? 'f' : ''}${to ? 't' : ''}`
    let statement = this.#statements.get(key)
    if (!statement) {
      this.#connection ??= this.#source.connect()
      let connection: DuckDBConnection
      try {
        connection = await this.#connection
      } catch (error) {
        this.#connection = null
        throw error
      }
      this.#live = connection
      statement = await connection.prepare(sqlFor(shape, from, to))
      this.#statements.set(key, statement)
    }
    return statement
  }

  async #reset(): Promise<void> {
    for (const statement of this.#statements.values()) statement.destroySync()
    this.#statements.clear()
    const pending = this.#connection
    this.#connection = null
    this.#live = undefined
    const connection = await pending?.catch(() => null)
    connection?.closeSync()
  }

  #serial<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(operation)
    this.#queue = result.catch(() => {})
    return result
  }
}

/** The SQL of one shape; parameters are $1 event_name, then the lower and upper bound if present. */
export function sqlFor(shape: Shape, from: boolean, to: boolean): string {
  const where = ['event_name = $1']
  let n = 2
  if (from) where.push(`"timestamp" >= $${n++}`)
  if (to) where.push(`"timestamp" <= $${n++}`)
  const filter = `FROM events WHERE ${where.join(' AND ')}`
  switch (shape) {
    case 'totals':
      return `SELECT ${COUNTS} ${filter}`
    case 'channel':
      return `SELECT channel AS "group", ${COUNTS} ${filter} GROUP BY channel ORDER BY total_events DESC, "group"`
    case 'hour':
    case 'day':
      return `SELECT strftime(bucket, '%Y-%m-%dT%H:%M:%SZ') AS "group", total_events, unique_users FROM (
  SELECT date_trunc('${shape}', "timestamp") AS bucket, ${COUNTS} ${filter} GROUP BY bucket
) ORDER BY bucket`
  }
}

function bounds(query: MetricsQuery): {
  name: string
  from?: DuckDBTimestampValue
  to?: DuckDBTimestampValue
} {
  if (typeof query.event_name !== 'string') throw invalid('event_name must be a string')
  return {
    name: query.event_name,
    ...(query.from !== undefined && { from: timestamp('from', query.from) }),
    ...(query.to !== undefined && { to: timestamp('to', query.to) }),
  }
}

function timestamp(name: 'from' | 'to', seconds: number): DuckDBTimestampValue {
  if (!Number.isSafeInteger(seconds)) throw invalid(`${name} must be a Unix timestamp in whole seconds`)
  const clamped = Math.max(-MAX_SECONDS, Math.min(MAX_SECONDS, seconds))
  return new DuckDBTimestampValue(BigInt(clamped) * 1_000_000n)
}

function invalid(message: string) {
  return spillwayError('SPW_ERR_QUERY_INVALID', message)
}

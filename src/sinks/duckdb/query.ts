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
 *
 * The dashboard's queries (ExploreBackend, bounds in explore.ts) run the same way on the same
 * connection, under the same timeout and queue: `topEvents` groups every name in the window
 * (most events first, then name), `series` one name by `date_trunc` bucket and channel.
 */
import { type DuckDBConnection, type DuckDBPreparedStatement, DuckDBTimestampValue } from '@duckdb/node-api'
import { isSpillwayError, spillwayError } from '../../errors.ts'
import { boundedSeries, checkSeries, checkTopEvents, MAX_SERIES_ROWS } from '../../query/explore.ts'
import type {
  Bucket,
  ExploreBackend,
  GroupBy,
  MetricsQuery,
  MetricsRow,
  QueryBackend,
  SeriesQuery,
  SeriesRow,
  TopEventsQuery,
  TopEventsRow,
  Totals,
} from '../../query/types.ts'
import type { DuckDbConnector } from './database.ts'

type Shape = 'totals' | GroupBy

interface Params {
  readonly name?: string
  readonly from?: DuckDBTimestampValue
  readonly to?: DuckDBTimestampValue
}

/** One query: which SQL (shape, and whether it is a series), its values and its row limit. */
interface Plan {
  readonly shape: Shape | 'top' | Bucket
  readonly series?: boolean
  readonly params: Params
  readonly limit?: number
}

/** ±9e12 s is beyond year 285,000 and inside DuckDB's TIMESTAMP range (±9.2e18 µs). */
const MAX_SECONDS = 9_000_000_000_000

const COUNTS = 'count(*) AS total_events, count(DISTINCT user_id) AS unique_users'

export interface DuckDbQueryOptions {
  /** Longest a query may wait and run before it is answered busy (default 10 s). */
  readonly timeoutMs?: number
  /** Queries that may wait behind the running one (default 32). */
  readonly queueSize?: number
}

export class DuckDbQueryBackend implements QueryBackend, ExploreBackend {
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
    return this.#run(
      () => ({ shape: 'totals', params: bounds(query) }),
      (rows) => {
        const [total, unique] = rows[0] ?? [0n, 0n]
        return { total_events: Number(total), unique_users: Number(unique) }
      },
    )
  }

  groups(query: MetricsQuery & { readonly group_by: GroupBy }): Promise<MetricsRow[]> {
    const shape = query.group_by
    if (shape !== 'channel' && shape !== 'hour' && shape !== 'day') {
      return Promise.reject(
        invalid(`group_by must be one of channel, hour, day, got "${String(shape).slice(0, 40)}"`),
      )
    }
    return this.#run(
      () => ({ shape, params: bounds(query) }),
      (rows) =>
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

  topEvents(query: TopEventsQuery): Promise<TopEventsRow[]> {
    return this.#run(
      () => {
        checkTopEvents(query)
        const params = range(query)
        return { shape: 'top', params, limit: query.limit }
      },
      (rows) =>
        rows.map(([name, total, unique]) => ({
          event_name: String(name),
          total_events: Number(total),
          unique_users: Number(unique),
        })),
    )
  }

  series(query: SeriesQuery): Promise<SeriesRow[]> {
    return this.#run(
      () => {
        checkSeries(query)
        // One row past the bound, so an answer that would be too large is seen (explore.ts).
        return { shape: query.bucket, series: true, params: bounds(query), limit: MAX_SERIES_ROWS + 1 }
      },
      (rows) =>
        boundedSeries(
          rows.map(([time, channel, total, unique]) => ({
            time: String(time),
            channel: String(channel),
            total_events: Number(total),
            unique_users: Number(unique),
          })),
          query,
        ),
    )
  }

  /** `plan` checks the query and says what to run (its throw is the query's refusal). */
  #run<T>(plan: () => Plan, read: (rows: unknown[][]) => T): Promise<T> {
    let params: Plan
    try {
      params = plan()
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
        const rows = await this.#query(params)
        if (state === 'running') resolve(read(rows))
      } catch (error) {
        if (state === 'running') reject(error)
      } finally {
        state = 'done'
      }
    }).finally(finish)
    return promise
  }

  async #query(plan: Plan): Promise<unknown[][]> {
    if (this.#closed) throw spillwayError('SPW_ERR_QUERY_FAILED', 'the DuckDB query backend is closed')
    const { params } = plan
    try {
      const statement = await this.#statement(plan)
      let index = 1
      if (params.name !== undefined) statement.bindVarchar(index++, params.name)
      if (params.from) statement.bindTimestamp(index++, params.from)
      if (params.to) statement.bindTimestamp(index++, params.to)
      if (plan.limit !== undefined) statement.bindBigInt(index++, BigInt(plan.limit))
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

  async #statement(plan: Plan): Promise<DuckDBPreparedStatement> {
    const from = plan.params.from !== undefined
    const to = plan.params.to !== undefined
    const key = `${plan.series ? 'series:' : ''}${plan.shape}:${from ? 'f' : ''}${to ? 't' : ''}`
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
      const sql =
        plan.shape === 'top'
          ? topSql(from, to)
          : plan.series
            ? seriesSql(plan.shape as Bucket, from, to)
            : sqlFor(plan.shape as Shape, from, to)
      statement = await connection.prepare(sql)
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

/** topEvents: parameters are the lower and upper bound if present, then the limit. */
export function topSql(from: boolean, to: boolean): string {
  const where: string[] = []
  let n = 1
  if (from) where.push(`"timestamp" >= $${n++}`)
  if (to) where.push(`"timestamp" <= $${n++}`)
  const filter = `FROM events${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''}`
  return `SELECT event_name, ${COUNTS} ${filter} GROUP BY event_name ORDER BY total_events DESC, event_name LIMIT $${n}`
}

/** series: parameters are $1 event_name, the bounds if present, then the row limit. */
export function seriesSql(bucket: Bucket, from: boolean, to: boolean): string {
  const where = ['event_name = $1']
  let n = 2
  if (from) where.push(`"timestamp" >= $${n++}`)
  if (to) where.push(`"timestamp" <= $${n++}`)
  return `SELECT strftime(bucket, '%Y-%m-%dT%H:%M:%SZ') AS "time", channel, total_events, unique_users FROM (
  SELECT date_trunc('${bucket}', "timestamp") AS bucket, channel, ${COUNTS} FROM events WHERE ${where.join(' AND ')} GROUP BY bucket, channel
) ORDER BY bucket, channel LIMIT $${n}`
}

/** The bounds of a topEvents query as DuckDB timestamps (no name). */
function range(query: { readonly from?: number; readonly to?: number }): Params {
  return {
    ...(query.from !== undefined && { from: timestamp('from', query.from) }),
    ...(query.to !== undefined && { to: timestamp('to', query.to) }),
  }
}

function bounds(query: MetricsQuery | SeriesQuery): {
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

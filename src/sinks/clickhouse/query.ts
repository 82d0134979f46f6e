/**
 * `GET /metrics` over the ClickHouse store, on the sink's client (its keep-alive connections) and
 * table. The semantics are the DuckDB backend's: `from`/`to` inclusive Unix seconds on the event
 * `timestamp`, exact counts, hour/day groups as the UTC start of the bucket (`2024-08-12T15:00:00Z`,
 * ascending), channel groups by `total_events` descending then name.
 *
 * No duplicate is ever counted, merged or not. The table is a ReplacingMergeTree keyed on
 * (`event_name`, `event_id`, `tenant`), but merges run when ClickHouse likes, so until then a
 * re-delivered event is two rows. Two exact answers exist: `uniqExact(tenant, event_id)` over
 * the rows (`uniq`, the default), or `count()` over `FROM … FINAL`, which merges at read time
 * (`final`). On 18.16
 * `uniqExact` is the faster one (bench/clickhouse.ts measures both) — FINAL there merges the
 * parts of each partition in one thread — and it also counts once an event whose copies sit in two
 * partitions, which FINAL cannot. `unique_users` is `uniqExact(user_id)`, which copies cannot
 * inflate. Hour/day buckets are computed in UTC whatever the server's or column's time zone
 * (`toStartOfHour(timestamp, 'UTC')`) and formatted here from their Unix seconds.
 *
 * Values never reach SQL text where the server has query parameters (`{name:String}`); on 18.16
 * the event name is a literal made by `quoteString` (sinks/clickhouse/escape.ts, tested against
 * injection) and the bounds are integers. A name that is not well-formed UTF-16 (a lone
 * surrogate) cannot be stored in ClickHouse, so it matches nothing without a query.
 *
 * The dashboard's queries (ExploreBackend, bounds in explore.ts) count the same way: `topEvents`
 * groups by name in the window, `series` one name by UTC bucket start and channel.
 */
import { ClickHouseError } from '../../connectors/clickhouse/errors.ts'
import { isSpillwayError, spillwayError } from '../../errors.ts'
import {
  boundedSeries,
  checkSeries,
  checkTopEvents,
  isoSeconds,
  MAX_SERIES_ROWS,
} from '../../query/explore.ts'
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
import { integerLiteral, quoteString } from './escape.ts'
import { MAX_DATETIME } from './rows.ts'
import type { ClickHouseTarget } from './sink.ts'

type Shape = 'totals' | GroupBy

/** How `total_events` counts each event once (see the header). */
export type CountStrategy = 'uniq' | 'final'

export interface ClickHouseQueryOptions {
  readonly count?: CountStrategy
  readonly timeoutMs?: number
}

/** Where the backend finds its server: the ClickHouseSink (`target()`), or a fixed target in tests. */
export interface ClickHouseTargetSource {
  target(): Promise<ClickHouseTarget>
}

export interface Bounds {
  readonly name: string
  readonly from?: number
  readonly to?: number
}

export class ClickHouseQueryBackend implements QueryBackend, ExploreBackend {
  readonly #source: ClickHouseTargetSource
  readonly #count: CountStrategy
  readonly #timeoutMs: number

  constructor(source: ClickHouseTargetSource, options: ClickHouseQueryOptions = {}) {
    this.#source = source
    this.#count = options.count ?? 'uniq'
    this.#timeoutMs = options.timeoutMs ?? 30_000
  }

  async totals(query: MetricsQuery): Promise<Totals> {
    const bounds = checkBounds(query)
    if (!bounds) return { total_events: 0, unique_users: 0 }
    const rows = await this.#run('totals', bounds)
    const [total, unique] = rows[0] ?? ['0', '0']
    return { total_events: Number(total), unique_users: Number(unique) }
  }

  async groups(query: MetricsQuery & { readonly group_by: GroupBy }): Promise<MetricsRow[]> {
    const shape = query.group_by
    if (shape !== 'channel' && shape !== 'hour' && shape !== 'day') {
      throw invalid(`group_by must be one of channel, hour, day, got "${String(shape).slice(0, 40)}"`)
    }
    const bounds = checkBounds(query)
    if (!bounds) return []
    const rows = await this.#run(shape, bounds)
    return rows.map(([group, total, unique]) => ({
      group: shape === 'channel' ? group : isoSeconds(Number(group)),
      total_events: Number(total),
      unique_users: Number(unique),
    }))
  }

  async topEvents(query: TopEventsQuery): Promise<TopEventsRow[]> {
    checkTopEvents(query)
    const range = checkRange(query)
    if (!range) return []
    const rows = await this.#send((options) => topSqlFor(options.table, range, query.limit, options))
    return rows.map(([name, total, unique]) => ({
      event_name: name,
      total_events: Number(total),
      unique_users: Number(unique),
    }))
  }

  async series(query: SeriesQuery): Promise<SeriesRow[]> {
    checkSeries(query)
    const bounds = checkBounds(query)
    if (!bounds) return []
    // One row past the bound, so an answer that would be too large is seen (explore.ts).
    const rows = await this.#send((options) =>
      seriesSqlFor(query.bucket, options.table, bounds, MAX_SERIES_ROWS + 1, options),
    )
    return boundedSeries(
      rows.map(([bucket, channel, total, unique]) => ({
        time: isoSeconds(Number(bucket)),
        channel,
        total_events: Number(total),
        unique_users: Number(unique),
      })),
      query,
    )
  }

  async close(): Promise<void> {}

  #run(shape: Shape, bounds: Bounds): Promise<string[][]> {
    return this.#send((options) => sqlFor(shape, options.table, bounds, options))
  }

  async #send(
    build: (options: { table: string; parameters: boolean; count: CountStrategy }) => {
      sql: string
      params: Record<string, string | number>
    },
  ): Promise<string[][]> {
    let target: ClickHouseTarget
    try {
      target = await this.#source.target()
    } catch (error) {
      throw failed(error)
    }
    const statement = build({
      table: target.table,
      parameters: target.features.queryParameters,
      count: this.#count,
    })
    let text: string
    try {
      text = await target.client.query(statement.sql, {
        params: statement.params,
        timeoutMs: this.#timeoutMs,
      })
    } catch (error) {
      throw failed(error)
    }
    return parseTsv(text)
  }
}

/**
 * The SQL of one shape and its parameters. With `parameters` the values are `{name:Type}`
 * placeholders, else literals (quoteString / integers).
 */
export function sqlFor(
  shape: Shape,
  table: string,
  bounds: Bounds,
  options: { parameters: boolean; count?: CountStrategy },
): { sql: string; params: Record<string, string | number> } {
  const params: Record<string, string | number> = {}
  const value = (name: string, type: 'String' | 'UInt32', v: string | number) => {
    if (options.parameters) {
      params[name] = v
      return `{${name}:${type}}`
    }
    return typeof v === 'string' ? quoteString(v) : integerLiteral(v)
  }
  const where = [`event_name = ${value('name', 'String', bounds.name)}`]
  if (bounds.from !== undefined)
    where.push(`timestamp >= toDateTime(${value('from', 'UInt32', bounds.from)})`)
  if (bounds.to !== undefined) where.push(`timestamp <= toDateTime(${value('to', 'UInt32', bounds.to)})`)
  const final = options.count === 'final'
  const counts = `${final ? 'count()' : 'uniqExact(tenant, event_id)'} AS total_events, uniqExact(user_id) AS unique_users`
  const from = `FROM ${table}${final ? ' FINAL' : ''} WHERE ${where.join(' AND ')}`
  let sql: string
  switch (shape) {
    case 'totals':
      sql = `SELECT ${counts} ${from}`
      break
    case 'channel':
      sql = `SELECT channel, ${counts} ${from} GROUP BY channel ORDER BY total_events DESC, channel`
      break
    case 'hour':
    case 'day': {
      const start = shape === 'hour' ? 'toStartOfHour' : 'toStartOfDay'
      sql = `SELECT toUInt32(${start}(timestamp, 'UTC')) AS bucket, ${counts} ${from} GROUP BY bucket ORDER BY bucket`
      break
    }
  }
  return { sql: `${sql} FORMAT TabSeparated`, params }
}

/** The most frequent names in the window, most events first, then name. */
export function topSqlFor(
  table: string,
  range: Omit<Bounds, 'name'>,
  limit: number,
  options: { parameters: boolean; count?: CountStrategy },
): { sql: string; params: Record<string, string | number> } {
  const { where, params } = conditions(range, options.parameters)
  const final = options.count === 'final'
  const filter = `FROM ${table}${final ? ' FINAL' : ''}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''}`
  return {
    sql: `SELECT event_name, ${counts(final)} ${filter} GROUP BY event_name ORDER BY total_events DESC, event_name LIMIT ${integerLiteral(limit)} FORMAT TabSeparated`,
    params,
  }
}

/** One name by UTC bucket start (Unix seconds) and channel, ascending. */
export function seriesSqlFor(
  bucket: Bucket,
  table: string,
  bounds: Bounds,
  limit: number,
  options: { parameters: boolean; count?: CountStrategy },
): { sql: string; params: Record<string, string | number> } {
  const { where, params } = conditions(bounds, options.parameters)
  const final = options.count === 'final'
  const start = { minute: 'toStartOfMinute', hour: 'toStartOfHour', day: 'toStartOfDay' }[bucket]
  // Minutes too are cut in UTC: a zone with a half-hour offset would shift them otherwise.
  return {
    sql: `SELECT toUInt32(${start}(timestamp, 'UTC')) AS bucket, channel, ${counts(final)} FROM ${table}${final ? ' FINAL' : ''} WHERE ${where.join(' AND ')} GROUP BY bucket, channel ORDER BY bucket, channel LIMIT ${integerLiteral(limit)} FORMAT TabSeparated`,
    params,
  }
}

function counts(final: boolean): string {
  return `${final ? 'count()' : 'uniqExact(tenant, event_id)'} AS total_events, uniqExact(user_id) AS unique_users`
}

/** WHERE terms of a name (when given) and bounds, as placeholders or literals. */
function conditions(
  bounds: Partial<Bounds>,
  parameters: boolean,
): { where: string[]; params: Record<string, string | number> } {
  const params: Record<string, string | number> = {}
  const value = (name: string, type: 'String' | 'UInt32', v: string | number) => {
    if (parameters) {
      params[name] = v
      return `{${name}:${type}}`
    }
    return typeof v === 'string' ? quoteString(v) : integerLiteral(v)
  }
  const where: string[] = []
  if (bounds.name !== undefined) where.push(`event_name = ${value('name', 'String', bounds.name)}`)
  if (bounds.from !== undefined)
    where.push(`timestamp >= toDateTime(${value('from', 'UInt32', bounds.from)})`)
  if (bounds.to !== undefined) where.push(`timestamp <= toDateTime(${value('to', 'UInt32', bounds.to)})`)
  return { where, params }
}

/** The bounds of a query without a name, clamped as checkBounds does; null when nothing can match. */
export function checkRange(query: {
  readonly from?: number
  readonly to?: number
}): Omit<Bounds, 'name'> | null {
  const bounds = checkBounds({ event_name: '', ...query })
  if (!bounds) return null
  const { name: _, ...range } = bounds
  return range
}

/**
 * The query's name and bounds, bounds clamped to what a DateTime holds; null when nothing can
 * match (a range outside 1970…2106, or a name ClickHouse cannot hold).
 */
export function checkBounds(query: MetricsQuery | SeriesQuery): Bounds | null {
  if (typeof query.event_name !== 'string') throw invalid('event_name must be a string')
  for (const name of ['from', 'to'] as const) {
    const v = query[name]
    if (v !== undefined && !Number.isSafeInteger(v))
      throw invalid(`${name} must be a Unix timestamp in whole seconds`)
  }
  const { from, to } = query
  if (!query.event_name.isWellFormed()) return null
  if ((from !== undefined && from > MAX_DATETIME) || (to !== undefined && to < 0)) return null
  if (from !== undefined && to !== undefined && from > to) return null
  return {
    name: query.event_name,
    ...(from !== undefined && from > 0 && { from }),
    ...(to !== undefined && to < MAX_DATETIME && { to }),
  }
}

export { isoSeconds }

/** TabSeparated text → rows of unescaped fields. */
export function parseTsv(text: string): string[][] {
  const rows: string[][] = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    rows.push(line.split('\t').map(unescapeTsv))
  }
  return rows
}

const TSV_ESCAPES: Record<string, string> = {
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  '0': '\0',
  "'": "'",
  '\\': '\\',
}

function unescapeTsv(field: string): string {
  if (!field.includes('\\')) return field
  return field.replace(/\\(.)/g, (_, c: string) => TSV_ESCAPES[c] ?? c)
}

function invalid(message: string) {
  return spillwayError('SPW_ERR_QUERY_INVALID', message)
}

function failed(error: unknown) {
  if (isSpillwayError(error) && error.code.startsWith('SPW_ERR_QUERY_')) return error
  const message =
    error instanceof ClickHouseError
      ? error.message
      : error instanceof Error
        ? ((error as NodeJS.ErrnoException).code ?? '') + ' ' + error.message
        : String(error)
  return spillwayError('SPW_ERR_QUERY_FAILED', `ClickHouse query failed: ${message.trim()}`, { cause: error })
}

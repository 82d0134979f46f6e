/**
 * What the server can do, and the events table it gets.
 *
 * Features are read once per connection (`detectFeatures`): `SELECT version()`, which of a few
 * settings exist (`system.settings`), and a probe of query parameters (`SELECT {p:UInt8}` with
 * `param_p`), so a feature is used where the server has it rather than where a version table
 * says it should be. The Debian server here (18.16) has none of them; modern servers (≥ 22.x)
 * have all.
 *
 * The table (`tableDdl`) — one per server generation, the same key on both:
 *
 *   ENGINE = ReplacingMergeTree
 *   PARTITION BY toDate(timestamp)          -- UTC days: the column is DateTime('UTC')
 *   ORDER BY (event_name, event_id, tenant)
 *
 * - The sorting key is what a re-delivered event collapses on, so it holds only what every copy
 *   of an event shares: its `event_id`, its `tenant` (the API key's label, '' with keys off: two
 *   tenants' events with one id are two events) and its `event_name` (the name leads so that `GET
 *   /metrics`, always filtered by name, reads one contiguous range of each part). Not the
 *   `timestamp` (a re-sent event may carry another clock-skew correction) and not `received_at`.
 *   Copies in one partition become one row at the next merge; queries never wait for that: they
 *   count `uniqExact(tenant, event_id)` (see clickhouse/query.ts). Copies whose corrected
 *   timestamps fall on two days sit in two partitions and are never merged; they are still
 *   counted once in totals. Re-deliveries after a crash are byte-identical, so they always share a partition.
 * - No version column: copies of one event are the same event; the merge keeps the last
 *   inserted.
 * - `timestamp` is DateTime('UTC') and arrives as Unix seconds, never as text, so neither the
 *   server's time zone nor `date_time_input_format` (which 18.16 needs for ISO-8601) matters.
 * - 18.16: plain String for the names (LowCardinality is experimental there), `received_at` as
 *   UInt64 milliseconds (no DateTime64 yet), and no per-column codecs (no CODEC syntax; the
 *   server's default LZ4 applies).
 * - ≥ 20.3: LowCardinality for the few-valued names and tags, `received_at` DateTime64(3, 'UTC')
 *   (the integer milliseconds of the WAL line load into it as they are), ZSTD on the long
 *   strings, Delta + ZSTD on the times.
 * A table that already exists is used as it is, if it has the columns the sink writes (checked
 *   at start, so a mismatch is one clear error instead of a failed insert per batch) — but for
 *   `tenant`, which a table made before tenants gets at start: `ADD COLUMN tenant String, MODIFY
 *   ORDER BY (event_name, event_id, tenant)` (a metadata change: a column added in the same ALTER
 *   may join the key), or, where the server cannot change the key, the column alone and a warning.
 *   Without API keys every row's tenant is '' and the old key is as good.
 */

import type { ClickHouseClient } from '../../connectors/clickhouse/client.ts'
import { spillwayError } from '../../errors.ts'
import { type EventField, eventField, STORE_COLUMNS } from '../../event/fields.ts'
import { EVENT_FIELDS } from '../../intake/types.ts'
import { quoteIdentifier, quoteString } from './escape.ts'

export interface ServerFeatures {
  /** `SELECT version()`, e.g. `18.16.1`. */
  readonly version: string
  /** `{name:Type}` placeholders with `param_name` (19.x+). */
  readonly queryParameters: boolean
  /** `async_insert` + `wait_for_async_insert` (21.11+). */
  readonly asyncInsert: boolean
  /** `input_format_json_read_objects_as_strings`: JSONEachRow reads an object into a String (22.x+). */
  readonly objectsAsStrings: boolean
  /** LowCardinality, CODEC(…) and DateTime64 in the DDL (20.3+). */
  readonly modernTypes: boolean
}

/** The features of a server with none (18.16), for tests and as the floor. */
export const LEGACY_FEATURES: ServerFeatures = Object.freeze({
  version: '18.16.1',
  queryParameters: false,
  asyncInsert: false,
  objectsAsStrings: false,
  modernTypes: false,
})

/** Columns the sink writes, in the order of a WAL line. */
export const COLUMNS = EVENT_FIELDS

const PROBED_SETTINGS = ['async_insert', 'wait_for_async_insert', 'input_format_json_read_objects_as_strings']

export function parseVersion(version: string): [major: number, minor: number] {
  const [major, minor] = version.split('.').map((part) => Number.parseInt(part, 10))
  return [Number.isFinite(major) ? major : 0, Number.isFinite(minor) ? minor : 0]
}

export function atLeast(version: string, major: number, minor: number): boolean {
  const [a, b] = parseVersion(version)
  return a > major || (a === major && b >= minor)
}

export async function detectFeatures(client: ClickHouseClient): Promise<ServerFeatures> {
  const version = (await client.query('SELECT version()')).trim()
  const settings = new Set(
    (
      await client.query(
        `SELECT name FROM system.settings WHERE name IN (${PROBED_SETTINGS.map(quoteString).join(', ')}) FORMAT TabSeparated`,
      )
    )
      .split('\n')
      .filter(Boolean),
  )
  const probe = await client.request({
    sql: 'SELECT {p:UInt8}',
    params: { p: 7 },
    maxBodyBytes: 1024,
  })
  return featuresOf(version, settings, probe.status === 200 && probe.body.trim() === '7')
}

export function featuresOf(
  version: string,
  settings: ReadonlySet<string>,
  queryParameters: boolean,
): ServerFeatures {
  return Object.freeze({
    version,
    queryParameters,
    asyncInsert: settings.has('async_insert') && settings.has('wait_for_async_insert'),
    objectsAsStrings: settings.has('input_format_json_read_objects_as_strings'),
    modernTypes: atLeast(version, 20, 3),
  })
}

/** `database`.`table`, quoted. */
export function qualifiedName(database: string, table: string): string {
  return `${quoteIdentifier(database)}.${quoteIdentifier(table)}`
}

/** What a re-delivered event collapses on (see the header). */
export const SORTING_KEY = '(event_name, event_id, tenant)'

export function tableDdl(database: string, table: string, features: ServerFeatures): string {
  // The field table's types (src/event/fields.ts `clickhouse`), in STORE_COLUMNS order: `tenant`
  // last, as in a table that got it by ADD COLUMN; no DEFAULT (a key column may not have one).
  const columns = STORE_COLUMNS.map((field) => `${field.name} ${columnType(field, features)}`)
  return `CREATE TABLE IF NOT EXISTS ${qualifiedName(database, table)} (
  ${columns.join(',\n  ')}
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(timestamp)
ORDER BY ${SORTING_KEY}`
}

/** A stored field's column type on this server. */
function columnType(field: EventField, features: ServerFeatures): string {
  if (field.clickhouse === undefined)
    throw new Error(`src/event/fields.ts: ${field.name} has no ClickHouse type`)
  return features.modernTypes ? field.clickhouse.modern : field.clickhouse.legacy
}

/**
 * Creates the database and the table if missing and checks the table has the sink's columns and
 * a ReplacingMergeTree engine (the second is a warning: the queries stay exact without it, the
 * table only keeps every copy). Returns the warning, if any.
 */
export async function ensureSchema(
  client: ClickHouseClient,
  database: string,
  table: string,
  features: ServerFeatures,
): Promise<string | undefined> {
  await client.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(database)}`)
  await client.query(tableDdl(database, table, features))
  const where = `database = ${quoteString(database)} AND table = ${quoteString(table)}`
  const listColumns = async () =>
    new Set(
      (await client.query(`SELECT name FROM system.columns WHERE ${where} FORMAT TabSeparated`))
        .split('\n')
        .filter(Boolean),
    )
  let columns = await listColumns()
  let warning: string | undefined
  if (!columns.has('tenant') && columns.has('event_id')) {
    warning = await addTenant(client, qualifiedName(database, table), features)
    columns = await listColumns()
  }
  const missing = COLUMNS.filter((name) => !columns.has(name))
  if (missing.length > 0) {
    throw spillwayError(
      'SPW_ERR_CONFIG_INVALID',
      `ClickHouse table ${database}.${table} exists without the column(s) ${missing.join(', ')}; drop it or set clickhouseTable to another name`,
    )
  }
  const engine = (
    await client.query(
      `SELECT engine FROM system.tables WHERE database = ${quoteString(database)} AND name = ${quoteString(table)} FORMAT TabSeparated`,
    )
  ).trim()
  if (!engine.endsWith('ReplacingMergeTree')) {
    return `ClickHouse table ${database}.${table} has engine ${engine}, not ReplacingMergeTree: re-delivered events stay stored twice (queries still count them once)`
  }
  return warning
}

/** Gives a table made before tenants its `tenant` column, in the sorting key where the server can. */
async function addTenant(
  client: ClickHouseClient,
  table: string,
  features: ServerFeatures,
): Promise<string | undefined> {
  const column = `ADD COLUMN tenant ${columnType(eventField('tenant'), features)}`
  try {
    await client.query(`ALTER TABLE ${table} ${column}, MODIFY ORDER BY ${SORTING_KEY}`)
    return undefined
  } catch {
    await client.query(`ALTER TABLE ${table} ${column}`)
    return `ClickHouse table ${table} got a tenant column but the server could not add it to the sorting key: with API keys on, two tenants' events sharing an event_id and event_name are merged into one row`
  }
}

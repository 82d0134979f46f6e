/**
 * The event, defined once (docs/ARCHITECTURE.md "The event"): every field, in the order of the WAL
 * line, with what the API accepts, what is stored and how each store types it. The validators,
 * the WAL line's layout (src/event/wal-line.ts), consume's check, the OpenAPI Event schema, the
 * DuckDB and ClickHouse tables, the load generator and the tests' event factory are derived from
 * this table or checked against it (test/unit/event/fields.test.ts).
 *
 * This module has no imports and touches no Node API: the client package ships a byte-for-byte
 * copy (packages/client/src/event-fields.ts; test/unit/event/client-copy.test.ts fails when the
 * two differ), so it must run in a browser as it is.
 */

export const CHANNELS = ['web', 'mobile', 'api', 'email', 'push'] as const
export type Channel = (typeof CHANNELS)[number]

export const MAX_EVENT_ID_LENGTH = 128
/** Object keys in all of one event's metadata; the byte limit bounds array lengths. */
export const MAX_METADATA_KEYS = 1000

/**
 * How a field's value is checked and written:
 * - `text`: a string, not empty or only whitespace (ids and names);
 * - `string`: any string, even '';
 * - `label`: an API key label (1 to 64 of A-Z a-z 0-9 . _ -);
 * - `enum`: one of `values`;
 * - `seconds`: an integer of Unix seconds (`timestamp` also takes an ISO-8601 string with a zone);
 * - `millis`: an integer of Unix milliseconds;
 * - `strings`: an array of strings; `object`: a JSON object.
 */
export type FieldKind = 'text' | 'string' | 'label' | 'enum' | 'seconds' | 'millis' | 'strings' | 'object'

export interface EventField {
  readonly name: string
  readonly kind: FieldKind
  /** Accepted in a `POST /events` body (else the server sets it). */
  readonly input: boolean
  /** Required in a body (`null` counts as absent). */
  readonly required: boolean
  /** Written to the WAL line and the stores. */
  readonly stored: boolean
  /** Written only when set (never as null); the stores hold '' for it. */
  readonly omittedWhenUnset?: boolean
  /** The stored form may be null. */
  readonly nullable?: boolean
  /** Longest value in UTF-16 code units: a number, or the name of the limit that bounds it. */
  readonly maxLength?: number | 'maxStringLength'
  readonly values?: readonly string[]
  /** A `seconds` field that also takes an ISO-8601 string with a zone (parseIsoTimestamp). */
  readonly acceptsIso?: boolean
  readonly description: string
  readonly example: unknown
  /** Left out of EVENT_EXAMPLE (the example body every test and the docs start from). */
  readonly notInExample?: boolean
  /**
   * Column added to tables that existed before it: it is appended to the stores' columns (and
   * given to old tables by ADD COLUMN) instead of taking its place in the WAL order.
   */
  readonly columnAddedLater?: boolean
  /** DuckDB: the column's definition, the type read_ndjson reads it as, and the loading expression. */
  readonly duckdb?: { readonly column: string; readonly read: string; readonly load?: string }
  /** ClickHouse: the column type on 18.16 (legacy) and on ≥ 20.3 (modern). */
  readonly clickhouse?: { readonly legacy: string; readonly modern: string }
}

export const EVENT_TABLE = [
  {
    name: 'event_id',
    kind: 'text',
    input: true,
    required: false,
    stored: true,
    maxLength: MAX_EVENT_ID_LENGTH,
    description:
      'The idempotency key: events sharing it inside the dedup window are stored once. Default: the `Idempotency-Key` header, else a hash of the event’s content.',
    example: '0b6c9f0e-5a43-4d1e-9a9d-6f8b2f1c7e21',
    duckdb: { column: 'VARCHAR NOT NULL', read: 'VARCHAR' },
    clickhouse: { legacy: 'String', modern: 'String CODEC(ZSTD(1))' },
  },
  {
    name: 'tenant',
    kind: 'label',
    input: false,
    required: false,
    stored: true,
    omittedWhenUnset: true,
    maxLength: 64,
    description:
      'The label of the API key the event came with (only with API keys on); scopes the dedup key.',
    example: 'acme',
    columnAddedLater: true,
    duckdb: { column: "VARCHAR DEFAULT ''", read: 'VARCHAR', load: "coalesce(tenant, '')" },
    clickhouse: { legacy: 'String', modern: 'LowCardinality(String)' },
  },
  {
    name: 'event_name',
    kind: 'text',
    input: true,
    required: true,
    stored: true,
    maxLength: 'maxStringLength',
    description: 'What happened.',
    example: 'product_view',
    duckdb: { column: 'VARCHAR NOT NULL', read: 'VARCHAR' },
    clickhouse: { legacy: 'String', modern: 'LowCardinality(String)' },
  },
  {
    name: 'channel',
    kind: 'enum',
    input: true,
    required: true,
    stored: true,
    values: CHANNELS,
    description: 'Where it happened.',
    example: 'web',
    duckdb: { column: 'VARCHAR NOT NULL', read: 'VARCHAR' },
    clickhouse: { legacy: 'String', modern: 'LowCardinality(String)' },
  },
  {
    name: 'campaign_id',
    kind: 'string',
    input: true,
    required: false,
    stored: true,
    nullable: true,
    maxLength: 'maxStringLength',
    description: 'The campaign the event belongs to, if any.',
    example: 'cmp_987',
    duckdb: { column: 'VARCHAR', read: 'VARCHAR' },
    clickhouse: { legacy: 'Nullable(String)', modern: 'LowCardinality(Nullable(String))' },
  },
  {
    name: 'user_id',
    kind: 'text',
    input: true,
    required: true,
    stored: true,
    maxLength: 'maxStringLength',
    description: 'Who did it.',
    example: 'user_123',
    duckdb: { column: 'VARCHAR NOT NULL', read: 'VARCHAR' },
    clickhouse: { legacy: 'String', modern: 'String CODEC(ZSTD(1))' },
  },
  {
    name: 'timestamp',
    kind: 'seconds',
    input: true,
    required: true,
    stored: true,
    acceptsIso: true,
    description:
      'When it happened: integer Unix seconds, or an ISO-8601 string with a zone (`2024-08-12T15:13:32Z`, `…+02:00`; a fraction of a second is dropped). Stored as Unix seconds; not in the future beyond the clock-skew allowance.',
    example: 1723475612,
    duckdb: { column: 'TIMESTAMP NOT NULL', read: 'BIGINT', load: 'make_timestamp("timestamp" * 1000000)' },
    clickhouse: { legacy: "DateTime('UTC')", modern: "DateTime('UTC') CODEC(Delta, ZSTD(1))" },
  },
  {
    name: 'sent_at',
    kind: 'seconds',
    input: true,
    required: false,
    stored: false,
    description:
      "The client's clock when it sent, Unix seconds: the timestamp is corrected by the server's receive time minus it (client clock skew).",
    example: 1723475613,
    notInExample: true,
  },
  {
    name: 'received_at',
    kind: 'millis',
    input: false,
    required: false,
    stored: true,
    description: 'When the server received the request, Unix milliseconds.',
    example: 1723475613400,
    duckdb: { column: 'TIMESTAMP NOT NULL', read: 'BIGINT', load: 'make_timestamp(received_at * 1000)' },
    clickhouse: { legacy: 'UInt64', modern: "DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1))" },
  },
  {
    name: 'tags',
    kind: 'strings',
    input: true,
    required: false,
    stored: true,
    maxLength: 'maxStringLength',
    description: 'Labels, each a string (at most maxTags of them).',
    example: ['electronics', 'homepage'],
    duckdb: { column: 'VARCHAR[]', read: 'VARCHAR[]' },
    clickhouse: { legacy: 'Array(String)', modern: 'Array(LowCardinality(String))' },
  },
  {
    name: 'metadata',
    kind: 'object',
    input: true,
    required: false,
    stored: true,
    nullable: true,
    description:
      'Any JSON object, nested at most maxDepth (8) levels. An integer beyond ±(2^53 − 1) is refused (400 naming it): JSON numbers cannot carry it exactly, so send big ids as strings.',
    example: { product_id: 'prod-789', price: 129.99 },
    duckdb: { column: 'JSON', read: 'JSON' },
    clickhouse: { legacy: 'String', modern: 'String CODEC(ZSTD(1))' },
  },
] as const satisfies readonly EventField[]

type Table = (typeof EVENT_TABLE)[number]
export type EventFieldName = Table['name']
export type InputFieldName = Extract<Table, { input: true }>['name']
export type StoredFieldName = Extract<Table, { stored: true }>['name']
export type RequiredFieldName = Extract<Table, { required: true }>['name']

const table: readonly EventField[] = EVENT_TABLE

/** The fields a body may hold, in table order. */
export const INPUT_FIELDS = table.filter((f) => f.input).map((f) => f.name) as readonly InputFieldName[]
/** The fields of the WAL line and of a NormalizedEvent, in the line's order. */
export const STORED_FIELDS = table.filter((f) => f.stored).map((f) => f.name) as readonly StoredFieldName[]
/** The stores' columns, in table order: the WAL order with the columns added later at the end. */
export const STORE_COLUMNS = [
  ...table.filter((f) => f.stored && !f.columnAddedLater),
  ...table.filter((f) => f.stored && f.columnAddedLater),
] as readonly EventField[]

/** `event_id, event_name, …`: the list an unknown field's message names. */
export const INPUT_FIELD_LIST = INPUT_FIELDS.join(', ')
export const CHANNEL_LIST = CHANNELS.join(', ')

export function eventField(name: EventFieldName): EventField {
  return table.find((f) => f.name === name) as EventField
}

/** The example body: every input field's example but those marked `notInExample`. */
export const EVENT_EXAMPLE: Readonly<Record<string, unknown>> = Object.freeze(
  Object.fromEntries(table.filter((f) => f.input && !f.notInExample).map((f) => [f.name, f.example])),
)

// ISO-8601 timestamps. A date and a time, seconds and their fraction optional, then the zone:
// `Z` or an offset (`+02:00`, `+0200`, `+02`). Lower-case `t`/`z`, a space for `T` and a comma
// before the fraction are ISO's variants too. Expanded years (`+010000-…`) are not accepted.
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/** Why an ISO-8601 timestamp is refused; `isoTimestampError` words it. */
export type IsoProblem = 'not-iso' | 'no-zone' | 'bad-date' | 'bad-time' | 'bad-offset' | 'before-1970'

/**
 * Unix seconds of an ISO-8601 date-time with a zone — the fraction of a second dropped (rounded
 * down), as the stores hold whole seconds — or the problem with it.
 */
export function parseIsoTimestamp(text: string): number | IsoProblem {
  const m = ISO_8601.exec(text)
  if (m === null) return 'not-iso'
  if (m[7] === undefined && m[8] === undefined) return 'no-zone'
  const year = +m[1]
  const month = +m[2]
  const day = +m[3]
  if (month < 1 || month > 12 || day < 1) return 'bad-date'
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  if (day > (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1])) return 'bad-date'
  const hour = +m[4]
  const minute = +m[5]
  const second = m[6] === undefined ? 0 : +m[6]
  if (hour > 23 || minute > 59 || second > 59) return 'bad-time'
  let offset = 0
  if (m[8] !== undefined) {
    const offsetHours = +m[9]
    const offsetMinutes = m[10] === undefined ? 0 : +m[10]
    if (offsetHours > 23 || offsetMinutes > 59) return 'bad-offset'
    offset = (m[8] === '-' ? -1 : 1) * (offsetHours * 3600 + offsetMinutes * 60)
  }
  const seconds = Date.UTC(year, month - 1, day, hour, minute, second) / 1000 - offset
  return seconds > 0 ? seconds : 'before-1970'
}

/** The 400 message for a refused ISO-8601 string; `shown` is the value as messages quote it. */
export function isoTimestampError(field: string, problem: IsoProblem, text: string, shown: string): string {
  switch (problem) {
    case 'no-zone':
      return `${field} has no time zone, got ${shown}; add Z (UTC) or an offset such as +02:00`
    case 'bad-date': {
      const month = +text.slice(5, 7)
      if (month < 1 || month > 12)
        return `${field} is not a real date, got ${shown}: there is no month ${month}`
      const year = +text.slice(0, 4)
      const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
      const days = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]
      return `${field} is not a real date, got ${shown}: ${text.slice(0, 7)} has ${days} days`
    }
    case 'bad-time':
      return `${field} is not a real time of day, got ${shown}: hours run to 23, minutes and seconds to 59`
    case 'bad-offset':
      return `${field} has a zone offset beyond ±23:59, got ${shown}`
    case 'before-1970':
      return `${field} must be after 1970-01-01T00:00:00Z, got ${shown}`
    default:
      return `${field} must be an integer of Unix seconds or an ISO-8601 string with a zone, got ${shown}`
  }
}

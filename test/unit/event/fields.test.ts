/**
 * The field table (src/event/fields.ts) is the event's one definition: these tests hold what is
 * derived from it, and what is hand-written for speed (the validator, the serialiser), to it.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  CHANNELS,
  EVENT_EXAMPLE,
  EVENT_TABLE,
  type EventField,
  INPUT_FIELDS,
  STORE_COLUMNS,
  STORED_FIELDS,
} from '../../../src/event/fields.ts'
import { assertWalLineLayout } from '../../../src/event/wal-line.ts'
import { serializeEvent } from '../../../src/intake/serialize.ts'
import { validateEvent } from '../../../src/intake/validate.ts'
import { featuresOf, LEGACY_FEATURES, tableDdl } from '../../../src/sinks/clickhouse/schema.ts'
import { ADDED_COLUMNS_DDL, EVENTS_DDL } from '../../../src/sinks/duckdb/database.ts'
import { eventBody, normalizedEvent } from '../../helpers/events.ts'
import { CTX, LIMITS, NOW_SECONDS } from '../intake/fixtures.ts'

const table: readonly EventField[] = EVENT_TABLE
const body = (overrides: Record<string, unknown> = {}) =>
  eventBody({ timestamp: NOW_SECONDS - 60, ...overrides })
const verdict = (input: Record<string, unknown>) => validateEvent(input, CTX, LIMITS)
const errorOf = (input: Record<string, unknown>) => {
  const result = verdict(input)
  return result.ok ? 'accepted' : result.error
}

describe('the validator follows the table', () => {
  test('the example event is valid, and holds every input field but sent_at', () => {
    assert.ok(verdict(body()).ok)
    assert.deepEqual(
      Object.keys(EVENT_EXAMPLE),
      INPUT_FIELDS.filter((name) => name !== 'sent_at'),
    )
  })

  test('an unknown field is refused, naming the input fields of the table', () => {
    assert.equal(
      errorOf(body({ userId: 'u' })),
      `unknown field "userId"; the fields are ${INPUT_FIELDS.join(', ')}`,
    )
    for (const field of table.filter((f) => !f.input)) {
      assert.match(
        errorOf(body({ [field.name]: field.example })),
        new RegExp(`^unknown field "${field.name}"`),
      )
    }
  })

  test('a required field is required, an optional one may be absent or null', () => {
    for (const field of table.filter((f) => f.input)) {
      const without = body({ [field.name]: undefined })
      if (field.required) assert.match(errorOf(without), new RegExp(`^${field.name} is required`))
      else assert.ok(verdict(without).ok, field.name)
      if (!field.required) assert.ok(verdict(body({ [field.name]: null })).ok, `${field.name}: null`)
    }
  })

  test('a value of the wrong JSON type is refused, naming the field', () => {
    for (const field of table.filter((f) => f.input)) {
      const wrong = field.kind === 'strings' || field.kind === 'object' ? 'text' : { a: 1 }
      assert.match(errorOf(body({ [field.name]: wrong })), new RegExp(`^${field.name} must be`), field.name)
    }
  })

  test('enum values are the table’s', () => {
    const channel = table.find((f) => f.name === 'channel')
    assert.deepEqual(channel?.values, CHANNELS)
    for (const value of CHANNELS) assert.ok(verdict(body({ channel: value })).ok, value)
    assert.match(errorOf(body({ channel: 'fax' })), /^channel must be one of web, mobile, api, email, push/)
  })

  test('length limits are the table’s', () => {
    for (const field of table.filter((f) => f.input && f.maxLength !== undefined)) {
      const max = field.maxLength === 'maxStringLength' ? LIMITS.maxStringLength : (field.maxLength as number)
      const at = 'x'.repeat(max)
      const over = 'x'.repeat(max + 1)
      const value = (text: string) => (field.kind === 'strings' ? [text] : text)
      assert.ok(verdict(body({ [field.name]: value(at) })).ok, `${field.name} of ${max}`)
      assert.match(
        errorOf(body({ [field.name]: value(over) })),
        new RegExp(`must be at most ${max} characters`),
      )
    }
  })
})

describe('the WAL line follows the table', () => {
  test('serializeEvent writes the stored fields in table order; tenant only when set', () => {
    const withTenant = { ...normalizedEvent(), tenant: 'acme' }
    assert.deepEqual(Object.keys(JSON.parse(serializeEvent(withTenant))), STORED_FIELDS)
    assert.deepEqual(
      Object.keys(JSON.parse(serializeEvent(normalizedEvent()))),
      STORED_FIELDS.filter((name) => name !== 'tenant'),
    )
  })

  test('a layout the readers cannot read is refused, naming the rule', () => {
    assert.throws(
      () => assertWalLineLayout(['event_name', 'event_id', 'metadata'], 'x'),
      /event_id must be the first/,
    )
    assert.throws(
      () => assertWalLineLayout(['event_id', 'metadata', 'tags'], 'x'),
      /metadata must be the last/,
    )
    assert.throws(
      () => assertWalLineLayout(['event_id', 'user_id', 'tenant', 'timestamp', 'metadata'], 'x'),
      /tenant must come right after event_id/,
    )
    assert.doesNotThrow(() => assertWalLineLayout(STORED_FIELDS, 'x'))
  })
})

describe('the stores follow the table', () => {
  test('every stored field has a DuckDB and a ClickHouse column; input-only fields have none', () => {
    for (const field of table) {
      assert.equal(field.duckdb !== undefined, field.stored, field.name)
      assert.equal(field.clickhouse !== undefined, field.stored, field.name)
    }
    assert.deepEqual(
      STORE_COLUMNS.map((f) => f.name),
      [...STORED_FIELDS.filter((n) => n !== 'tenant'), 'tenant'],
    )
  })

  // The DDL text the stores were made with before the table: existing stores must keep working.
  test('the DuckDB DDL is the text it was', () => {
    assert.equal(
      EVENTS_DDL,
      `CREATE TABLE IF NOT EXISTS events (
  event_id VARCHAR NOT NULL,
  event_name VARCHAR NOT NULL,
  channel VARCHAR NOT NULL,
  campaign_id VARCHAR,
  user_id VARCHAR NOT NULL,
  "timestamp" TIMESTAMP NOT NULL,
  received_at TIMESTAMP NOT NULL,
  tags VARCHAR[],
  metadata JSON,
  tenant VARCHAR DEFAULT ''
)`,
    )
    assert.deepEqual(ADDED_COLUMNS_DDL, [
      `ALTER TABLE events ADD COLUMN IF NOT EXISTS tenant VARCHAR DEFAULT ''`,
    ])
  })

  test('the ClickHouse DDL is the text it was, on 18.16 and on modern servers', () => {
    const tail = `) ENGINE = ReplacingMergeTree
PARTITION BY toDate(timestamp)
ORDER BY (event_name, event_id, tenant)`
    assert.equal(
      tableDdl('db', 'events', LEGACY_FEATURES),
      `CREATE TABLE IF NOT EXISTS \`db\`.\`events\` (
  event_id String,
  event_name String,
  channel String,
  campaign_id Nullable(String),
  user_id String,
  timestamp DateTime('UTC'),
  received_at UInt64,
  tags Array(String),
  metadata String,
  tenant String
${tail}`,
    )
    assert.equal(
      tableDdl('db', 'events', featuresOf('23.8.1', new Set(), true)),
      `CREATE TABLE IF NOT EXISTS \`db\`.\`events\` (
  event_id String CODEC(ZSTD(1)),
  event_name LowCardinality(String),
  channel LowCardinality(String),
  campaign_id LowCardinality(Nullable(String)),
  user_id String CODEC(ZSTD(1)),
  timestamp DateTime('UTC') CODEC(Delta, ZSTD(1)),
  received_at DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
  tags Array(LowCardinality(String)),
  metadata String CODEC(ZSTD(1)),
  tenant LowCardinality(String)
${tail}`,
    )
  })
})

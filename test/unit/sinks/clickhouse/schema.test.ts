import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  atLeast,
  featuresOf,
  LEGACY_FEATURES,
  parseVersion,
  qualifiedName,
  tableDdl,
} from '../../../../src/sinks/clickhouse/schema.ts'

const ALL_SETTINGS = new Set([
  'async_insert',
  'wait_for_async_insert',
  'input_format_json_read_objects_as_strings',
])

test('versions compare by major and minor', () => {
  assert.deepEqual(parseVersion('18.16.1'), [18, 16])
  assert.deepEqual(parseVersion('24.3.2.23'), [24, 3])
  assert.deepEqual(parseVersion('garbage'), [0, 0])
  assert.equal(atLeast('20.3.1', 20, 3), true)
  assert.equal(atLeast('20.2.9', 20, 3), false)
  assert.equal(atLeast('19.17.1', 20, 3), false)
  assert.equal(atLeast('21.1.1', 20, 3), true)
})

test('features come from the version, the settings the server has and the parameter probe', () => {
  assert.deepEqual(featuresOf('18.16.1', new Set(), false), LEGACY_FEATURES)
  assert.deepEqual(featuresOf('24.3.2.23', ALL_SETTINGS, true), {
    version: '24.3.2.23',
    queryParameters: true,
    asyncInsert: true,
    objectsAsStrings: true,
    modernTypes: true,
  })
  const midway = featuresOf('21.3.1', new Set(['async_insert']), true)
  assert.equal(midway.asyncInsert, false, 'async_insert without wait_for_async_insert is not used')
  assert.equal(midway.objectsAsStrings, false)
  assert.equal(midway.modernTypes, true)
})

test('18.16 DDL: plain types, no codecs, ReplacingMergeTree by day, keyed on (event_name, event_id, tenant)', () => {
  const ddl = tableDdl('analytics', 'events', LEGACY_FEATURES)
  assert.equal(
    ddl,
    `CREATE TABLE IF NOT EXISTS \`analytics\`.\`events\` (
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
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(timestamp)
ORDER BY (event_name, event_id, tenant)`,
  )
  assert.doesNotMatch(ddl, /CODEC|LowCardinality|DateTime64/)
})

test('modern DDL: LowCardinality, DateTime64 and codecs, with the same engine and keys', () => {
  const ddl = tableDdl('analytics', 'events', featuresOf('24.3.1', ALL_SETTINGS, true))
  for (const column of [
    'event_id String CODEC(ZSTD(1))',
    'event_name LowCardinality(String)',
    'channel LowCardinality(String)',
    'campaign_id LowCardinality(Nullable(String))',
    "timestamp DateTime('UTC') CODEC(Delta, ZSTD(1))",
    "received_at DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1))",
    'tags Array(LowCardinality(String))',
    'metadata String CODEC(ZSTD(1))',
    'tenant LowCardinality(String)',
  ]) {
    assert.ok(ddl.includes(column), column)
  }
  assert.match(
    ddl,
    /ENGINE = ReplacingMergeTree\nPARTITION BY toDate\(timestamp\)\nORDER BY \(event_name, event_id, tenant\)$/,
  )
})

test('names are quoted identifiers', () => {
  assert.equal(qualifiedName('my-db', 'events'), '`my-db`.`events`')
  assert.equal(qualifiedName('a`b', 'c'), '`a\\`b`.`c`')
})

/**
 * The ClickHouse sink and query backend against a real ClickHouse server (scripts/clickhouse.sh,
 * the Debian 18.16 here; or CLICKHOUSE_URL): the table it creates, rows stored exactly as sent
 * (nasty strings included), re-delivered batches never counted twice before or after a merge,
 * `GET /metrics` for every group_by matching the DuckDB backend's answers on the same data, the
 * 18.16 literal path round-tripping injection attempts, and the mapping of the server's real
 * refusals to verdicts (a poison row, too many parts, a dropped table, a stopped server, a wrong
 * password).
 */
import assert from 'node:assert/strict'
import { after, before, type TestContext, test } from 'node:test'
import { loadConfig } from '../../src/config/load.ts'
import { ClickHouseClient } from '../../src/connectors/clickhouse/client.ts'
import { isSpillwayError } from '../../src/errors.ts'
import { encodeEvents } from '../../src/intake/serialize.ts'
import type { NormalizedEvent } from '../../src/intake/types.ts'
import { MAX_SERIES_BUCKETS } from '../../src/query/explore.ts'
import { quoteIdentifier, quoteString } from '../../src/sinks/clickhouse/escape.ts'
import { ClickHouseQueryBackend } from '../../src/sinks/clickhouse/query.ts'
import { ClickHouseSink } from '../../src/sinks/clickhouse/sink.ts'
import { openQueryStore } from '../../src/sinks/query-store.ts'
import type { SinkBatch } from '../../src/sinks/sink.ts'
import { createLogger } from '../../src/telemetry/logger.ts'
import {
  type ClickHouseServer,
  dropDatabase,
  freePort,
  startClickHouse,
  uniqueDatabase,
} from '../helpers/clickhouse.ts'
import { sparseEvent } from '../helpers/events.ts'
import { assertExploreContract } from '../helpers/explore-contract.ts'
import {
  EXPECTED_GROUPS,
  EXPECTED_RANGES,
  EXPECTED_TOTALS,
  otherEvents,
  signupEvents,
  UNKNOWN_NAMES,
} from '../helpers/metrics-contract.ts'

let clickhouse: ClickHouseServer
before(async () => {
  clickhouse = await startClickHouse()
})
after(async () => {
  await clickhouse?.stop()
})

async function openSink(t: TestContext, options: { database?: string; table?: string } = {}) {
  const database = options.database ?? uniqueDatabase()
  const sink = new ClickHouseSink({ url: clickhouse.url, database, table: options.table })
  t.after(async () => {
    await sink.close()
    await dropDatabase(clickhouse, database)
  })
  await sink.open()
  return {
    sink,
    database,
    table: `${quoteIdentifier(database)}.${quoteIdentifier(options.table ?? 'events')}`,
  }
}

const batchOf = (events: NormalizedEvent[], from = 0, to = 1): SinkBatch => ({
  events,
  ndjson: encodeEvents(events),
  from,
  to,
})

test('open creates the database and a ReplacingMergeTree table partitioned by day, keyed on event_name, event_id and tenant', async (t) => {
  const { sink, database } = await openSink(t)
  const features = await sink.server()
  if (clickhouse.owned) assert.equal(features.version, '18.16.1', 'the Debian server of this machine')
  const [engine, partitionKey, sortingKey] = (
    await clickhouse.query(
      `SELECT engine, partition_key, sorting_key FROM system.tables WHERE database = ${quoteString(database)} AND name = 'events' FORMAT TabSeparated`,
    )
  )
    .trim()
    .split('\t')
  assert.equal(engine, 'ReplacingMergeTree')
  assert.equal(partitionKey, 'toDate(timestamp)')
  assert.equal(sortingKey, 'event_name, event_id, tenant')
  // Opening again (a restart) finds the table and keeps its rows.
  assert.equal((await sink.write(batchOf([sparseEvent('keep')]))).kind, 'delivered')
  const again = new ClickHouseSink({ url: clickhouse.url, database })
  await again.open()
  await again.close()
  assert.equal(
    (await clickhouse.query(`SELECT count() FROM ${quoteIdentifier(database)}.events`)).trim(),
    '1',
  )
})

test('rows are stored exactly as sent, nasty strings and nested metadata included', async (t) => {
  const { sink, table } = await openSink(t)
  const nasty = [
    "it's",
    'back\\slash\\',
    'quote " inside',
    'nul \0 and bell \x07',
    'new\nline\r\ttab',
    'unicode é 漢字 🎉 \u2028',
    "'; DROP TABLE events; --",
    ',"metadata":{"x":1}',
  ]
  const events = nasty.map((text, i) =>
    sparseEvent(`nasty-${i}-${text}`, {
      event_name: text,
      user_id: text,
      campaign_id: i % 2 === 0 ? text : null,
      channel: (['web', 'mobile', 'api', 'email', 'push'] as const)[i % 5],
      tags: [text, 'plain'],
      timestamp: 1_723_475_612 + i,
      received_at: 1_723_475_612_345 + i,
      metadata: i === 3 ? null : { text, nested: { metadata: [text, 1.5, null, true] } },
    }),
  )
  assert.equal((await sink.write(batchOf(events))).kind, 'delivered')
  const rows = (
    await clickhouse.client.query(
      `SELECT event_id, event_name, channel, campaign_id, user_id, toUInt32(timestamp) AS ts, toUInt64(received_at) AS ra, tags, metadata FROM ${table} ORDER BY ts FORMAT JSONEachRow`,
      { settings: { output_format_json_quote_64bit_integers: 0 } },
    )
  )
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line))
  assert.equal(rows.length, events.length)
  rows.forEach((row, i) => {
    const e = events[i]
    assert.deepEqual(
      { ...row, metadata: row.metadata === '' ? null : JSON.parse(row.metadata) },
      {
        event_id: e.event_id,
        event_name: e.event_name,
        channel: e.channel,
        campaign_id: e.campaign_id,
        user_id: e.user_id,
        ts: e.timestamp,
        ra: e.received_at,
        tags: e.tags,
        metadata: e.metadata,
      },
      nasty[i],
    )
  })
  // And each nasty name answers /metrics through the literal path (or parameters on a modern server).
  const query = new ClickHouseQueryBackend(sink)
  for (const text of nasty) {
    assert.deepEqual(await query.totals({ event_name: text }), { total_events: 1, unique_users: 1 }, text)
  }
})

test('quoteString literals round-trip through the real server; injection attempts stay values', async () => {
  const attempts = [
    "' OR '1'='1",
    "\\'; SELECT 1; --",
    'trailing \\',
    '\0\x01\x1f\x7f',
    'line\nbreak',
    '`backquote`',
    '漢字 🎉 é',
    "'), ('x",
  ]
  for (const value of attempts) {
    const answer = await clickhouse.query(
      `SELECT hex(${quoteString(value)}) AS h, length(${quoteString(value)}) FORMAT TabSeparated`,
    )
    const [hex, length] = answer.trim().split('\t')
    assert.equal(hex, Buffer.from(value, 'utf8').toString('hex').toUpperCase(), JSON.stringify(value))
    assert.equal(Number(length), Buffer.byteLength(value), JSON.stringify(value))
  }
  const weird = uniqueDatabase('we`ird\\db')
  await clickhouse.query(`CREATE DATABASE ${quoteIdentifier(weird)}`)
  const listed = await clickhouse.query(
    `SELECT name FROM system.databases WHERE name = ${quoteString(weird)} FORMAT TabSeparated`,
  )
  await clickhouse.query(`DROP DATABASE ${quoteIdentifier(weird)}`)
  assert.equal(listed.trim().replaceAll('\\\\', '\\'), weird)
})

test('a re-delivered batch is never counted twice: not before the merge, not after', async (t) => {
  const { sink, database, table } = await openSink(t)
  await clickhouse.query(`SYSTEM STOP MERGES ${table}`)
  const events = Array.from({ length: 500 }, (_, i) =>
    sparseEvent(`re-${i}`, {
      event_name: 'redelivery',
      user_id: `u${i % 37}`,
      timestamp: 1_723_475_612 + i * 60,
    }),
  )
  const whole = batchOf(events, 0, 10)
  assert.equal((await sink.write(whole)).kind, 'delivered')
  // The same records again (a crash before the cursor moved), then a piece cut inside them.
  assert.equal((await sink.write(batchOf(events, 0, 10))).kind, 'delivered')
  assert.equal((await sink.write({ events: events.slice(100, 200), from: 0, to: 0 })).kind, 'delivered')
  const query = new ClickHouseQueryBackend(sink)
  const expected = { total_events: 500, unique_users: 37 }
  assert.equal(
    (await clickhouse.query(`SELECT count() FROM ${table}`)).trim(),
    '1100',
    'the copies are there',
  )
  assert.deepEqual(await query.totals({ event_name: 'redelivery' }), expected)
  const byDay = await query.groups({ event_name: 'redelivery', group_by: 'day' })
  assert.equal(
    byDay.reduce((sum, g) => sum + g.total_events, 0),
    500,
  )
  const byChannel = await query.groups({ event_name: 'redelivery', group_by: 'channel' })
  assert.deepEqual(byChannel, [{ group: 'web', ...expected }])

  await clickhouse.query(`SYSTEM START MERGES ${table}`)
  await clickhouse.query(`OPTIMIZE TABLE ${table} FINAL`)
  assert.equal(
    (await clickhouse.query(`SELECT count() FROM ${table}`)).trim(),
    '500',
    'merged to one row each',
  )
  assert.deepEqual(await query.totals({ event_name: 'redelivery' }), expected)
  assert.deepEqual(
    await new ClickHouseQueryBackend(sink, { count: 'final' }).totals({ event_name: 'redelivery' }),
    expected,
  )
  void database
})

test('GET /metrics shapes for every group_by match the DuckDB backend, with copies present', async (t) => {
  const { sink, table } = await openSink(t)
  await clickhouse.query(`SYSTEM STOP MERGES ${table}`)
  const signups = signupEvents()
  const others = otherEvents()
  await sink.write(batchOf([...signups.slice(0, 5), others[0]], 0, 10))
  await sink.write(batchOf([...signups.slice(5), ...others.slice(1)], 10, 20))
  await sink.write(batchOf(signups, 0, 20)) // every signup re-delivered once
  const query = new ClickHouseQueryBackend(sink)

  // The same answers as the DuckDB backend (test/helpers/metrics-contract.ts), copies present.
  for (const [name, totals] of EXPECTED_TOTALS)
    assert.deepEqual(await query.totals({ event_name: name }), totals, name)
  for (const [what, range, total, users] of EXPECTED_RANGES) {
    assert.deepEqual(
      await query.totals({ event_name: 'signup', ...range }),
      { total_events: total, unique_users: users },
      what,
    )
  }
  for (const { group_by, range, rows } of EXPECTED_GROUPS) {
    assert.deepEqual(
      await query.groups({ event_name: 'signup', group_by, ...range }),
      rows,
      `${group_by} ${JSON.stringify(range ?? 'all')}`,
    )
  }
  for (const name of UNKNOWN_NAMES) {
    assert.deepEqual(await query.totals({ event_name: name }), { total_events: 0, unique_users: 0 })
    for (const group_by of ['channel', 'hour', 'day'] as const) {
      assert.deepEqual(await query.groups({ event_name: name, group_by }), [])
    }
  }
})

test('the server’s refusals map to verdicts: a poison row is permanent, the rest retries', async (t) => {
  const { sink, table } = await openSink(t)
  const good = Array.from({ length: 20 }, (_, i) => sparseEvent(`good-${i}`))
  const poison = sparseEvent('poison', { user_id: 'lone surrogate \ud800' })

  // A lone UTF-16 surrogate: the intake accepts it, ClickHouse cannot store it (Code 25).
  const refused = await sink.write(batchOf([...good.slice(0, 10), poison, ...good.slice(10)]))
  assert.equal(refused.kind, 'permanent')
  assert.match(
    refused.kind === 'permanent' ? refused.error.message : '',
    /CANNOT_PARSE_ESCAPE_SEQUENCE.*surrogate/,
  )
  assert.equal(
    (await clickhouse.query(`SELECT count() FROM ${table}`)).trim(),
    '0',
    'an insert is all or nothing',
  )
  assert.equal((await sink.write(batchOf(good))).kind, 'delivered', 'the rest goes in once isolated')

  // A timestamp past 2106 is refused by the sink itself (the server would wrap it silently).
  const late = await sink.write(batchOf([sparseEvent('late', { timestamp: 2 ** 32 })]))
  assert.equal(late.kind, 'permanent')

  // A dropped table: retry, and the next attempt creates it again.
  await clickhouse.query(`DROP TABLE ${table}`)
  const dropped = await sink.write(batchOf([sparseEvent('after-drop')]))
  assert.equal(dropped.kind, 'retry')
  assert.match(dropped.kind === 'retry' ? dropped.error.message : '', /Code: 60/)
  assert.equal((await sink.write(batchOf([sparseEvent('after-drop')]))).kind, 'delivered')
})

test('too many parts is a throttled retry (a table that refuses inserts beyond 2 parts)', async (t) => {
  const database = uniqueDatabase()
  const table = `${quoteIdentifier(database)}.tight`
  await clickhouse.query(`CREATE DATABASE ${quoteIdentifier(database)}`)
  t.after(() => dropDatabase(clickhouse, database))
  const { tableDdl, LEGACY_FEATURES } = await import('../../src/sinks/clickhouse/schema.ts')
  await clickhouse.query(
    `${tableDdl(database, 'tight', LEGACY_FEATURES)} SETTINGS parts_to_delay_insert = 1, parts_to_throw_insert = 2`,
  )
  await clickhouse.query(`SYSTEM STOP MERGES ${table}`)
  const sink = new ClickHouseSink({ url: clickhouse.url, database, table: 'tight' })
  t.after(() => sink.close())
  await sink.open()
  let verdict = await sink.write(batchOf([sparseEvent('p1')]))
  for (let i = 2; verdict.kind === 'delivered' && i < 10; i++)
    verdict = await sink.write(batchOf([sparseEvent(`p${i}`)]))
  assert.equal(verdict.kind, 'retry')
  assert.ok(verdict.kind === 'retry' && verdict.afterMs! > 0, 'throttled: wait for the merges')
  assert.match(verdict.kind === 'retry' ? verdict.error.message : '', /TOO_MANY_PARTS/)
})

test('no server, a wrong password: retry, and readiness says why', async (t) => {
  const nowhere = new ClickHouseSink({ url: `http://127.0.0.1:${await freePort()}`, database: 'x' })
  t.after(() => nowhere.close())
  await nowhere.open()
  const down = await nowhere.write(batchOf([sparseEvent('a')]))
  assert.equal(down.kind, 'retry')
  assert.match(down.kind === 'retry' ? down.error.message : '', /ECONNREFUSED/)
  await assert.rejects(nowhere.ping(), /ECONNREFUSED/)

  if (!clickhouse.owned) return t.skip('the CLICKHOUSE_URL server may accept any password')
  const wrong = new ClickHouseSink({ url: clickhouse.url, database: 'x', user: 'default', password: 'wrong' })
  t.after(() => wrong.close())
  await wrong.open()
  const refused = await wrong.write(batchOf([sparseEvent('a')]))
  assert.equal(refused.kind, 'retry', 'a configuration to fix, not data to drop')
  await assert.rejects(wrong.ping(), /Code: 19[23]|Code: 516/)
  const client = new ClickHouseClient({ url: clickhouse.url.replace('//', '//default:wrong@') })
  t.after(() => client.close())
  await assert.rejects(client.query('SELECT 1'), /HTTP 401/)
})

test('explore: topEvents and series answer the contract with copies present, in both count strategies', async (t) => {
  const { sink, table } = await openSink(t)
  await clickhouse.query(`SYSTEM STOP MERGES ${table}`)
  const signups = signupEvents()
  const others = otherEvents()
  await sink.write(batchOf([...signups.slice(0, 5), others[0]], 0, 10))
  await sink.write(batchOf([...signups.slice(5), ...others.slice(1)], 10, 20))
  await sink.write(batchOf([...signups, ...others], 0, 20)) // every event re-delivered once
  await assertExploreContract(new ClickHouseQueryBackend(sink))
  await clickhouse.query(`SYSTEM START MERGES ${table}`)
  await clickhouse.query(`OPTIMIZE TABLE ${table} FINAL`)
  await assertExploreContract(new ClickHouseQueryBackend(sink, { count: 'final' }))
})

test('explore: an open-ended minute series past the bucket bound is refused; hours of it answer', async (t) => {
  const { sink } = await openSink(t)
  const minutes = Array.from({ length: MAX_SERIES_BUCKETS + 1 }, (_, i) =>
    sparseEvent(`m-${i}`, { event_name: 'every_minute', timestamp: 1_723_420_800 + i * 60 }),
  )
  await sink.write(batchOf(minutes))
  const query = new ClickHouseQueryBackend(sink)
  await assert.rejects(query.series({ event_name: 'every_minute', bucket: 'minute' }), (e) => {
    assert.ok(isSpillwayError(e, 'SPW_ERR_QUERY_INVALID'))
    assert.match((e as Error).message, /more than 10000 minute buckets; give from and to/)
    return true
  })
  const hours = await query.series({ event_name: 'every_minute', bucket: 'hour' })
  assert.equal(hours.length, Math.ceil((MAX_SERIES_BUCKETS + 1) / 60))
  assert.equal(hours[0].time, '2024-08-12T00:00:00Z')
  assert.equal(
    hours.reduce((sum, row) => sum + row.total_events, 0),
    MAX_SERIES_BUCKETS + 1,
  )
})

test('queryStore clickhouse on a node without the sink: read-only, says when the table is not there yet, then answers', async (t) => {
  const database = uniqueDatabase()
  t.after(() => dropDatabase(clickhouse, database))
  const config = loadConfig({
    env: {},
    overrides: {
      sinks: ['memory'],
      queryStore: 'clickhouse',
      clickhouseUrl: clickhouse.url,
      clickhouseDatabase: database,
    },
  })
  const store = openQueryStore(config, [], {}, createLogger('silent'))
  t.after(() => store.close?.())
  assert.equal(store.own?.store, 'clickhouse')
  await store.own?.ping()
  for (const ask of [() => store.totals({ event_name: 'signup' }), () => store.topEvents({ limit: 3 })]) {
    await assert.rejects(ask(), (e) => {
      assert.ok(isSpillwayError(e, 'SPW_ERR_QUERY_FAILED'), String(e))
      assert.match((e as Error).message, new RegExp(`table ${database}\\.events does not exist \\(yet\\)`))
      return true
    })
  }
  assert.equal(
    (
      await clickhouse.query(`SELECT count() FROM system.databases WHERE name = ${quoteString(database)}`)
    ).trim(),
    '0',
    'the read-only store created nothing',
  )
  const { sink } = await openSink(t, { database })
  await sink.write(batchOf([...signupEvents(), ...otherEvents()]))
  await sink.write(batchOf(signupEvents())) // copies
  assert.deepEqual(await store.totals({ event_name: 'signup' }), { total_events: 9, unique_users: 5 })
  await assertExploreContract(store)
})

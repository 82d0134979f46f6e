import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isSpillwayError } from '../../../../src/errors.ts'
import { checkBounds, isoSeconds, parseTsv, sqlFor } from '../../../../src/sinks/clickhouse/query.ts'
import { MAX_DATETIME } from '../../../../src/sinks/clickhouse/rows.ts'

const T = '`db`.`events`'

test('18.16: values are literals; the name is quoted, bounds are integers', () => {
  const { sql, params } = sqlFor('totals', T, { name: "it's", from: 10, to: 20 }, { parameters: false })
  assert.equal(
    sql,
    "SELECT uniqExact(tenant, event_id) AS total_events, uniqExact(user_id) AS unique_users FROM `db`.`events` WHERE event_name = 'it\\'s' AND timestamp >= toDateTime(10) AND timestamp <= toDateTime(20) FORMAT TabSeparated",
  )
  assert.deepEqual(params, {})
})

test('with query parameters no value reaches the SQL text', () => {
  const name = "x' OR 1=1 --"
  const { sql, params } = sqlFor('channel', T, { name, from: 10 }, { parameters: true })
  assert.equal(
    sql,
    'SELECT channel, uniqExact(tenant, event_id) AS total_events, uniqExact(user_id) AS unique_users FROM `db`.`events` WHERE event_name = {name:String} AND timestamp >= toDateTime({from:UInt32}) GROUP BY channel ORDER BY total_events DESC, channel FORMAT TabSeparated',
  )
  assert.deepEqual(params, { name, from: 10 })
  assert.ok(!sql.includes(name))
})

test('hour/day group by the UTC bucket start; FINAL counts rows instead of distinct ids', () => {
  const hour = sqlFor('hour', T, { name: 'a' }, { parameters: false }).sql
  assert.match(
    hour,
    /^SELECT toUInt32\(toStartOfHour\(timestamp, 'UTC'\)\) AS bucket, .* GROUP BY bucket ORDER BY bucket FORMAT TabSeparated$/,
  )
  const day = sqlFor('day', T, { name: 'a' }, { parameters: false, count: 'final' }).sql
  assert.match(day, /toStartOfDay\(timestamp, 'UTC'\)/)
  assert.match(
    day,
    /count\(\) AS total_events, uniqExact\(user_id\) AS unique_users FROM `db`\.`events` FINAL WHERE/,
  )
})

test('bounds: checked, clamped to DateTime, and empty when nothing can match', () => {
  assert.deepEqual(checkBounds({ event_name: 'a' }), { name: 'a' })
  assert.deepEqual(checkBounds({ event_name: 'a', from: 0, to: 99_999_999_999 }), { name: 'a' })
  assert.deepEqual(checkBounds({ event_name: 'a', from: -5, to: 7 }), { name: 'a', to: 7 })
  assert.deepEqual(checkBounds({ event_name: 'a', from: 5, to: MAX_DATETIME - 1 }), {
    name: 'a',
    from: 5,
    to: MAX_DATETIME - 1,
  })
  assert.equal(checkBounds({ event_name: 'a', from: MAX_DATETIME + 1 }), null)
  assert.equal(checkBounds({ event_name: 'a', to: -1 }), null)
  assert.equal(checkBounds({ event_name: 'a', from: 10, to: 9 }), null)
  assert.equal(checkBounds({ event_name: 'lone \ud800' }), null, 'ClickHouse cannot hold it')
  assert.throws(
    () => checkBounds({ event_name: 'a', from: 1.5 }),
    (e) => isSpillwayError(e, 'SPW_ERR_QUERY_INVALID'),
  )
  assert.throws(
    () => checkBounds({ event_name: 5 as unknown as string }),
    (e) => isSpillwayError(e, 'SPW_ERR_QUERY_INVALID'),
  )
})

test('TabSeparated answers are split and unescaped; buckets format as ISO-8601 UTC', () => {
  assert.deepEqual(parseTsv('web\t4\t2\nmo\\tbile\t1\t1\n'), [
    ['web', '4', '2'],
    ['mo\tbile', '1', '1'],
  ])
  assert.deepEqual(parseTsv(''), [])
  assert.equal(isoSeconds(1_723_474_800), '2024-08-12T15:00:00Z')
  assert.equal(isoSeconds(0), '1970-01-01T00:00:00Z')
})

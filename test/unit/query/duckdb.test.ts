import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { isSpillwayError } from '../../../src/errors.ts'
import type { NormalizedEvent } from '../../../src/intake/types.ts'
import { DuckDbQueryBackend } from '../../../src/query/duckdb.ts'
import { openDuckDb } from '../../../src/sinks/duckdb/database.ts'
import { DuckDbSink } from '../../../src/sinks/duckdb/sink.ts'
import { event } from '../sinks/duckdb/fixtures/events.ts'

/** 2024-08-12T00:00:00Z */
const DAY = 1_723_420_800
const H = 3600

/** Hand-made data set; the expectations below are counted by hand from this table. */
const SIGNUPS: [id: string, channel: NormalizedEvent['channel'], user: string, timestamp: number][] = [
  ['e1', 'web', 'u1', DAY + 15 * H], // 2024-08-12 15:00:00
  ['e2', 'web', 'u2', DAY + 16 * H - 1], // 15:59:59
  ['e3', 'mobile', 'u1', DAY + 16 * H], // 16:00:00
  ['e4', 'api', 'u3', DAY + 24 * H - 1], // 23:59:59
  ['e5', 'web', 'u1', DAY + 24 * H], // 2024-08-13 00:00:00
  ['e6', 'mobile', 'u4', DAY + 29 * H], // 2024-08-13 05:00:00
  ['e7', 'web', 'u2', DAY - 1], // 2024-08-11 23:59:59
  ['e8', 'email', 'u5', DAY + 16 * H + 30 * 60], // 16:30:00
  ['e9', 'email', 'u5', DAY + 17 * H], // 17:00:00
]

const OTHERS: NormalizedEvent[] = [
  event('o1', { event_name: 'login', user_id: 'u9', timestamp: DAY + 15 * H }),
  event('o2', { event_name: 'signup ', user_id: 'u9', timestamp: DAY + 15 * H }),
  event('o3', { event_name: 'SIGNUP', channel: 'push', user_id: 'u8', timestamp: DAY + 15 * H }),
]

async function setUp(t: TestContext): Promise<{ sink: DuckDbSink; query: DuckDbQueryBackend }> {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-query-'))
  const sink = new DuckDbSink({ path: join(dir, 'db.duckdb') })
  const query = new DuckDbQueryBackend(sink)
  t.after(async () => {
    await query.close()
    await sink.close()
    await rm(dir, { recursive: true, force: true })
  })
  await sink.open()
  const signups = SIGNUPS.map(([id, channel, user, timestamp]) =>
    event(id, { event_name: 'signup', channel, user_id: user, timestamp }),
  )
  // Two batches, so the data spans more than one append.
  await sink.write({ events: [...signups.slice(0, 5), OTHERS[0]], from: 0, to: 10 })
  await sink.write({ events: [...signups.slice(5), ...OTHERS.slice(1)], from: 10, to: 20 })
  return { sink, query }
}

test('totals count every event and each user once, filtered by exact event_name', async (t) => {
  const { query } = await setUp(t)
  assert.deepEqual(await query.totals({ event_name: 'signup' }), { total_events: 9, unique_users: 5 })
  assert.deepEqual(await query.totals({ event_name: 'login' }), { total_events: 1, unique_users: 1 })
  assert.deepEqual(await query.totals({ event_name: 'SIGNUP' }), { total_events: 1, unique_users: 1 })
})

test('from and to are inclusive Unix seconds on the event timestamp', async (t) => {
  const { query } = await setUp(t)
  const cases: [string, { from?: number; to?: number }, number, number][] = [
    ['both bounds hit events exactly', { from: DAY + 15 * H, to: DAY + 16 * H }, 3, 2],
    ['from = to', { from: DAY + 15 * H, to: DAY + 15 * H }, 1, 1],
    ['one second inside each bound', { from: DAY + 15 * H + 1, to: DAY + 16 * H - 1 }, 1, 1],
    ['only from', { from: DAY + 24 * H - 1 }, 3, 3],
    ['only to', { to: DAY - 1 }, 1, 1],
    ['a range with no event', { from: DAY + 18 * H, to: DAY + 23 * H }, 0, 0],
    ['a range around everything', { from: 0, to: 99_999_999_999 }, 9, 5],
  ]
  for (const [what, range, total, users] of cases) {
    assert.deepEqual(
      await query.totals({ event_name: 'signup', ...range }),
      { total_events: total, unique_users: users },
      what,
    )
  }
})

test('group_by channel: busiest channel first, ties by name', async (t) => {
  const { query } = await setUp(t)
  assert.deepEqual(await query.groups({ event_name: 'signup', group_by: 'channel' }), [
    { group: 'web', total_events: 4, unique_users: 2 },
    { group: 'email', total_events: 2, unique_users: 1 },
    { group: 'mobile', total_events: 2, unique_users: 2 },
    { group: 'api', total_events: 1, unique_users: 1 },
  ])
  assert.deepEqual(
    await query.groups({ event_name: 'signup', group_by: 'channel', from: DAY + 15 * H, to: DAY + 16 * H }),
    [
      { group: 'web', total_events: 2, unique_users: 2 },
      { group: 'mobile', total_events: 1, unique_users: 1 },
    ],
  )
})

test('group_by hour: UTC hour starts as ISO-8601, ascending', async (t) => {
  const { query } = await setUp(t)
  assert.deepEqual(await query.groups({ event_name: 'signup', group_by: 'hour' }), [
    { group: '2024-08-11T23:00:00Z', total_events: 1, unique_users: 1 },
    { group: '2024-08-12T15:00:00Z', total_events: 2, unique_users: 2 },
    { group: '2024-08-12T16:00:00Z', total_events: 2, unique_users: 2 },
    { group: '2024-08-12T17:00:00Z', total_events: 1, unique_users: 1 },
    { group: '2024-08-12T23:00:00Z', total_events: 1, unique_users: 1 },
    { group: '2024-08-13T00:00:00Z', total_events: 1, unique_users: 1 },
    { group: '2024-08-13T05:00:00Z', total_events: 1, unique_users: 1 },
  ])
  assert.deepEqual(
    await query.groups({ event_name: 'signup', group_by: 'hour', from: DAY + 16 * H, to: DAY + 17 * H }),
    [
      { group: '2024-08-12T16:00:00Z', total_events: 2, unique_users: 2 },
      { group: '2024-08-12T17:00:00Z', total_events: 1, unique_users: 1 },
    ],
  )
})

test('group_by day: UTC day starts as ISO-8601, ascending', async (t) => {
  const { query } = await setUp(t)
  assert.deepEqual(await query.groups({ event_name: 'signup', group_by: 'day' }), [
    { group: '2024-08-11T00:00:00Z', total_events: 1, unique_users: 1 },
    { group: '2024-08-12T00:00:00Z', total_events: 6, unique_users: 4 },
    { group: '2024-08-13T00:00:00Z', total_events: 2, unique_users: 2 },
  ])
  assert.deepEqual(
    await query.groups({ event_name: 'signup', group_by: 'day', from: DAY, to: DAY + 24 * H }),
    [
      { group: '2024-08-12T00:00:00Z', total_events: 6, unique_users: 4 },
      { group: '2024-08-13T00:00:00Z', total_events: 1, unique_users: 1 },
    ],
  )
})

test('an unknown event_name gives zeros and empty groups, and is never spliced into SQL', async (t) => {
  const { query } = await setUp(t)
  for (const name of ['nope', "signup' OR '1'='1", 'signup"; DROP TABLE events; --', '']) {
    assert.deepEqual(await query.totals({ event_name: name }), { total_events: 0, unique_users: 0 }, name)
    for (const group_by of ['channel', 'hour', 'day'] as const) {
      assert.deepEqual(await query.groups({ event_name: name, group_by }), [], `${name} by ${group_by}`)
    }
  }
  assert.deepEqual(await query.totals({ event_name: 'signup' }), { total_events: 9, unique_users: 5 })
})

test('unique_users is exact on a large set (no approximate distinct)', async (t) => {
  const { sink, query } = await setUp(t)
  const events = Array.from({ length: 30_000 }, (_, i) =>
    event(`big-${i}`, {
      event_name: 'big',
      user_id: `user-${(i * 7919) % 12_347}`,
      timestamp: DAY + (i % 86_400),
    }),
  )
  await sink.write({ events, from: 20, to: 30 })
  assert.deepEqual(await query.totals({ event_name: 'big' }), { total_events: 30_000, unique_users: 12_347 })
  const byDay = await query.groups({ event_name: 'big', group_by: 'day' })
  assert.deepEqual(byDay, [{ group: '2024-08-12T00:00:00Z', total_events: 30_000, unique_users: 12_347 }])
})

test('concurrent queries on the one connection all answer correctly', async (t) => {
  const { query } = await setUp(t)
  const answers = await Promise.all(
    Array.from({ length: 24 }, (_, i) =>
      i % 2 === 0
        ? query.totals({ event_name: 'signup', from: DAY + 15 * H, to: DAY + 16 * H })
        : query.groups({ event_name: 'signup', group_by: 'day' }),
    ),
  )
  for (let i = 0; i < answers.length; i++) {
    if (i % 2 === 0) assert.deepEqual(answers[i], { total_events: 3, unique_users: 2 })
    else assert.equal((answers[i] as unknown[]).length, 3)
  }
})

test('bad bounds are SPW_ERR_QUERY_INVALID; a closed store is SPW_ERR_QUERY_FAILED', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-query-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const sink = new DuckDbSink({ path: join(dir, 'db.duckdb') })
  const query = new DuckDbQueryBackend(sink)
  await assert.rejects(query.totals({ event_name: 'x' }), (e) => isSpillwayError(e, 'SPW_ERR_QUERY_FAILED'))
  await sink.open()
  assert.deepEqual(
    await query.totals({ event_name: 'x' }),
    { total_events: 0, unique_users: 0 },
    'works once open',
  )
  await assert.rejects(query.totals({ event_name: 'x', from: 1.5 }), (e) =>
    isSpillwayError(e, 'SPW_ERR_QUERY_INVALID'),
  )
  await assert.rejects(query.groups({ event_name: 'x', group_by: 'week' as 'day' }), (e) =>
    isSpillwayError(e, 'SPW_ERR_QUERY_INVALID'),
  )
  await sink.close()
  await assert.rejects(query.totals({ event_name: 'x' }), (e) => isSpillwayError(e, 'SPW_ERR_QUERY_FAILED'))
  await sink.open()
  assert.deepEqual(
    await query.totals({ event_name: 'x' }),
    { total_events: 0, unique_users: 0 },
    'reconnects',
  )
  await query.close()
  await sink.close()
})

test('a backend on an openDuckDb handle reads what the sink of the same file wrote', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-query-'))
  const path = join(dir, 'db.duckdb')
  const sink = new DuckDbSink({ path })
  await sink.open()
  const handle = await openDuckDb(path)
  const query = new DuckDbQueryBackend(handle)
  t.after(async () => {
    await query.close()
    await handle.release()
    await sink.close()
    await rm(dir, { recursive: true, force: true })
  })
  await sink.write({ events: [event('a'), event('b', { user_id: 'u2' })], from: 0, to: 2 })
  assert.deepEqual(await query.totals({ event_name: 'product_view' }), { total_events: 2, unique_users: 2 })
})

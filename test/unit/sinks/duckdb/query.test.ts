import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { isSpillwayError } from '../../../../src/errors.ts'
import { MAX_SERIES_BUCKETS } from '../../../../src/query/explore.ts'
import { openDuckDb } from '../../../../src/sinks/duckdb/database.ts'
import { DuckDbQueryBackend } from '../../../../src/sinks/duckdb/query.ts'
import { DuckDbSink } from '../../../../src/sinks/duckdb/sink.ts'
import { sparseEvent } from '../../../helpers/events.ts'
import { assertExploreContract } from '../../../helpers/explore-contract.ts'
import {
  DAY,
  EXPECTED_GROUPS,
  EXPECTED_RANGES,
  EXPECTED_TOTALS,
  H,
  otherEvents,
  signupEvents,
  UNKNOWN_NAMES,
} from '../../../helpers/metrics-contract.ts'

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
  const signups = signupEvents()
  const others = otherEvents()
  // Two batches, so the data spans more than one append.
  await sink.write({ events: [...signups.slice(0, 5), others[0]], from: 0, to: 10 })
  await sink.write({ events: [...signups.slice(5), ...others.slice(1)], from: 10, to: 20 })
  return { sink, query }
}

test('totals count every event and each user once, filtered by exact event_name', async (t) => {
  const { query } = await setUp(t)
  for (const [name, totals] of EXPECTED_TOTALS)
    assert.deepEqual(await query.totals({ event_name: name }), totals, name)
})

test('from and to are inclusive Unix seconds on the event timestamp', async (t) => {
  const { query } = await setUp(t)
  for (const [what, range, total, users] of EXPECTED_RANGES) {
    assert.deepEqual(
      await query.totals({ event_name: 'signup', ...range }),
      { total_events: total, unique_users: users },
      what,
    )
  }
})

for (const [group_by, what] of [
  ['channel', 'busiest channel first, ties by name'],
  ['hour', 'UTC hour starts as ISO-8601, ascending'],
  ['day', 'UTC day starts as ISO-8601, ascending'],
] as const) {
  test(`group_by ${group_by}: ${what}`, async (t) => {
    const { query } = await setUp(t)
    for (const expected of EXPECTED_GROUPS.filter((g) => g.group_by === group_by)) {
      assert.deepEqual(
        await query.groups({ event_name: 'signup', group_by, ...expected.range }),
        expected.rows,
        JSON.stringify(expected.range ?? 'all'),
      )
    }
  })
}

test('an unknown event_name gives zeros and empty groups, and is never spliced into SQL', async (t) => {
  const { query } = await setUp(t)
  for (const name of UNKNOWN_NAMES) {
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
    sparseEvent(`big-${i}`, {
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
  await sink.write({ events: [sparseEvent('a'), sparseEvent('b', { user_id: 'u2' })], from: 0, to: 2 })
  assert.deepEqual(await query.totals({ event_name: 'product_view' }), { total_events: 2, unique_users: 2 })
})

test('explore: topEvents and series answer the contract, and a replayed batch is not counted again', async (t) => {
  const { sink, query } = await setUp(t)
  // A restart replays the second batch (the cursor was not committed past it): the anti-join drops it.
  await sink.close()
  await sink.open()
  await sink.write({ events: [...signupEvents().slice(5), ...otherEvents().slice(1)], from: 10, to: 20 })
  await assertExploreContract(query)
})

test('explore: an open-ended series with more buckets than the bound is refused, naming from and to', async (t) => {
  const { sink, query } = await setUp(t)
  const minutes = Array.from({ length: MAX_SERIES_BUCKETS + 1 }, (_, i) =>
    sparseEvent(`m-${i}`, { event_name: 'every_minute', timestamp: DAY + i * 60 }),
  )
  await sink.write({ events: minutes, from: 20, to: 30 })
  await assert.rejects(query.series({ event_name: 'every_minute', bucket: 'minute' }), (e) => {
    assert.ok(isSpillwayError(e, 'SPW_ERR_QUERY_INVALID'))
    assert.match((e as Error).message, /more than 10000 minute buckets; give from and to/)
    return true
  })
  const hours = await query.series({ event_name: 'every_minute', bucket: 'hour' })
  assert.equal(hours.length, Math.ceil((MAX_SERIES_BUCKETS + 1) / 60))
  assert.equal(
    hours.reduce((sum, row) => sum + row.total_events, 0),
    MAX_SERIES_BUCKETS + 1,
  )
})

test('explore queries share the bounds of GET /metrics: past queryQueueSize they are refused at once', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-query-'))
  const sink = new DuckDbSink({ path: join(dir, 'db.duckdb') })
  const query = new DuckDbQueryBackend(sink, { queueSize: 0 })
  t.after(async () => {
    await query.close()
    await sink.close()
    await rm(dir, { recursive: true, force: true })
  })
  await sink.open()
  const answers = await Promise.allSettled([
    query.topEvents({ limit: 5 }),
    query.series({ event_name: 'x', bucket: 'day' }),
    query.topEvents({ limit: 5 }),
  ])
  assert.equal(answers[0].status, 'fulfilled')
  const refused = answers.filter((a) => a.status === 'rejected')
  assert.ok(refused.length >= 1, 'a query beyond the queue is refused')
  for (const a of refused)
    assert.ok(isSpillwayError((a as PromiseRejectedResult).reason, 'SPW_ERR_QUERY_BUSY'))
})

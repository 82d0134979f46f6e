/**
 * The dashboard's event queries (ExploreBackend) as data, over metrics-contract.ts's data set:
 * the answers every backend (memory, DuckDB, ClickHouse) must give, counted by hand from its
 * table, and one function that asks them all. A backend's test stores the data set (with copies
 * of some events, which must not count) and calls `assertExploreContract`.
 */
import assert from 'node:assert/strict'
import { isSpillwayError } from '../../src/errors.ts'
import { MAX_SERIES_BUCKETS } from '../../src/query/explore.ts'
import type { ExploreBackend, SeriesRow, TopEventsRow } from '../../src/query/types.ts'
import { DAY, H, UNKNOWN_NAMES } from './metrics-contract.ts'

const row = (event_name: string, total_events: number, unique_users: number): TopEventsRow => ({
  event_name,
  total_events,
  unique_users,
})
const cell = (time: string, channel: string, total_events: number, unique_users: number): SeriesRow => ({
  time,
  channel,
  total_events,
  unique_users,
})

/** topEvents: most events first, ties by name in byte order ('SIGNUP' < 'login' < 'signup '). */
export const EXPECTED_TOP: {
  what: string
  query: { from?: number; to?: number; limit: number }
  rows: TopEventsRow[]
}[] = [
  {
    what: 'every name',
    query: { limit: 10 },
    rows: [row('signup', 9, 5), row('SIGNUP', 1, 1), row('login', 1, 1), row('signup ', 1, 1)],
  },
  { what: 'limit cuts the tail', query: { limit: 2 }, rows: [row('signup', 9, 5), row('SIGNUP', 1, 1)] },
  {
    what: 'inclusive bounds',
    query: { from: DAY + 15 * H, to: DAY + 16 * H, limit: 100 },
    rows: [row('signup', 3, 2), row('SIGNUP', 1, 1), row('login', 1, 1), row('signup ', 1, 1)],
  },
  { what: 'only from', query: { from: DAY + 17 * H, limit: 5 }, rows: [row('signup', 4, 4)] },
  { what: 'a window with no event', query: { from: DAY + 18 * H, to: DAY + 23 * H, limit: 5 }, rows: [] },
]

/** series of `signup`: bucket start ascending, then channel; a bucket boundary belongs to the later bucket. */
export const EXPECTED_SERIES: {
  what: string
  query: { bucket: 'minute' | 'hour' | 'day'; from?: number; to?: number }
  rows: SeriesRow[]
}[] = [
  {
    what: 'minutes: 15:59:59 and 16:00:00 fall in two buckets',
    query: { bucket: 'minute', from: DAY + 15 * H, to: DAY + 16 * H },
    rows: [
      cell('2024-08-12T15:00:00Z', 'web', 1, 1),
      cell('2024-08-12T15:59:00Z', 'web', 1, 1),
      cell('2024-08-12T16:00:00Z', 'mobile', 1, 1),
    ],
  },
  {
    what: 'hours by channel',
    query: { bucket: 'hour', from: DAY + 15 * H, to: DAY + 17 * H },
    rows: [
      cell('2024-08-12T15:00:00Z', 'web', 2, 2),
      cell('2024-08-12T16:00:00Z', 'email', 1, 1),
      cell('2024-08-12T16:00:00Z', 'mobile', 1, 1),
      cell('2024-08-12T17:00:00Z', 'email', 1, 1),
    ],
  },
  {
    what: 'days, no bounds',
    query: { bucket: 'day' },
    rows: [
      cell('2024-08-11T00:00:00Z', 'web', 1, 1),
      cell('2024-08-12T00:00:00Z', 'api', 1, 1),
      cell('2024-08-12T00:00:00Z', 'email', 2, 1),
      cell('2024-08-12T00:00:00Z', 'mobile', 1, 1),
      cell('2024-08-12T00:00:00Z', 'web', 2, 2),
      cell('2024-08-13T00:00:00Z', 'mobile', 1, 1),
      cell('2024-08-13T00:00:00Z', 'web', 1, 1),
    ],
  },
  {
    what: 'a window with no event',
    query: { bucket: 'hour', from: DAY + 18 * H, to: DAY + 23 * H },
    rows: [],
  },
]

const invalid = (name: string) => (error: unknown) => {
  assert.ok(isSpillwayError(error, 'SPW_ERR_QUERY_INVALID'), String(error))
  assert.match((error as Error).message, new RegExp(name))
  return true
}

/** Asks `query` every expectation above, and the refusals every backend shares. */
export async function assertExploreContract(query: ExploreBackend): Promise<void> {
  for (const { what, query: q, rows } of EXPECTED_TOP) assert.deepEqual(await query.topEvents(q), rows, what)
  for (const { what, query: q, rows } of EXPECTED_SERIES)
    assert.deepEqual(await query.series({ event_name: 'signup', ...q }), rows, what)
  for (const name of UNKNOWN_NAMES)
    assert.deepEqual(await query.series({ event_name: name, bucket: 'day' }), [], name)
  for (const limit of [0, 101, 1.5]) await assert.rejects(query.topEvents({ limit }), invalid('limit'))
  await assert.rejects(
    query.series({ event_name: 'signup', bucket: 'week' as 'day' }),
    invalid('bucket must be one of minute, hour, day'),
  )
  await assert.rejects(
    query.series({ event_name: 'signup', bucket: 'minute', from: 0, to: MAX_SERIES_BUCKETS * 60 }),
    invalid(`from…to spans ${MAX_SERIES_BUCKETS + 1} minute buckets`),
  )
  // Exactly the bound is allowed.
  assert.deepEqual(
    await query.series({ event_name: 'signup', bucket: 'minute', from: 0, to: MAX_SERIES_BUCKETS * 60 - 1 }),
    [],
  )
  await assert.rejects(query.topEvents({ limit: 5, from: 1.5 }), invalid('from'))
}

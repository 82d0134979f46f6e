/**
 * The GET /metrics contract as data: one hand-made data set and the answers every query backend
 * (DuckDB, ClickHouse) must give for it. The expectations are counted by hand from the table.
 */
import type { NormalizedEvent } from '../../src/intake/types.ts'
import type { GroupBy, MetricsRow, Totals } from '../../src/query/types.ts'
import { sparseEvent } from './events.ts'

/** 2024-08-12T00:00:00Z */
export const DAY = 1_723_420_800
export const H = 3600

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

/** The nine `signup` events. */
export const signupEvents = (): NormalizedEvent[] =>
  SIGNUPS.map(([id, channel, user, timestamp]) =>
    sparseEvent(id, { event_name: 'signup', channel, user_id: user, timestamp }),
  )

/** Events of other names, some one character away from `signup`. */
export const otherEvents = (): NormalizedEvent[] => [
  sparseEvent('o1', { event_name: 'login', user_id: 'u9', timestamp: DAY + 15 * H }),
  sparseEvent('o2', { event_name: 'signup ', user_id: 'u9', timestamp: DAY + 15 * H }),
  sparseEvent('o3', { event_name: 'SIGNUP', channel: 'push', user_id: 'u8', timestamp: DAY + 15 * H }),
]

/** event_name → totals: exact names only. */
export const EXPECTED_TOTALS: [eventName: string, totals: Totals][] = [
  ['signup', { total_events: 9, unique_users: 5 }],
  ['login', { total_events: 1, unique_users: 1 }],
  ['SIGNUP', { total_events: 1, unique_users: 1 }],
]

/** `signup` totals in inclusive ranges of Unix seconds. */
export const EXPECTED_RANGES: [
  what: string,
  range: { from?: number; to?: number },
  total: number,
  users: number,
][] = [
  ['both bounds hit events exactly', { from: DAY + 15 * H, to: DAY + 16 * H }, 3, 2],
  ['from = to', { from: DAY + 15 * H, to: DAY + 15 * H }, 1, 1],
  ['one second inside each bound', { from: DAY + 15 * H + 1, to: DAY + 16 * H - 1 }, 1, 1],
  ['only from', { from: DAY + 24 * H - 1 }, 3, 3],
  ['only to', { to: DAY - 1 }, 1, 1],
  ['a range with no event', { from: DAY + 18 * H, to: DAY + 23 * H }, 0, 0],
  ['a range around everything', { from: 0, to: 99_999_999_999 }, 9, 5],
]

/** `signup` groups: channel busiest first (ties by name), hours and days ascending, ISO-8601 UTC. */
export const EXPECTED_GROUPS: {
  group_by: GroupBy
  range?: { from: number; to: number }
  rows: MetricsRow[]
}[] = [
  {
    group_by: 'channel',
    rows: [
      { group: 'web', total_events: 4, unique_users: 2 },
      { group: 'email', total_events: 2, unique_users: 1 },
      { group: 'mobile', total_events: 2, unique_users: 2 },
      { group: 'api', total_events: 1, unique_users: 1 },
    ],
  },
  {
    group_by: 'channel',
    range: { from: DAY + 15 * H, to: DAY + 16 * H },
    rows: [
      { group: 'web', total_events: 2, unique_users: 2 },
      { group: 'mobile', total_events: 1, unique_users: 1 },
    ],
  },
  {
    group_by: 'hour',
    rows: [
      { group: '2024-08-11T23:00:00Z', total_events: 1, unique_users: 1 },
      { group: '2024-08-12T15:00:00Z', total_events: 2, unique_users: 2 },
      { group: '2024-08-12T16:00:00Z', total_events: 2, unique_users: 2 },
      { group: '2024-08-12T17:00:00Z', total_events: 1, unique_users: 1 },
      { group: '2024-08-12T23:00:00Z', total_events: 1, unique_users: 1 },
      { group: '2024-08-13T00:00:00Z', total_events: 1, unique_users: 1 },
      { group: '2024-08-13T05:00:00Z', total_events: 1, unique_users: 1 },
    ],
  },
  {
    group_by: 'hour',
    range: { from: DAY + 16 * H, to: DAY + 17 * H },
    rows: [
      { group: '2024-08-12T16:00:00Z', total_events: 2, unique_users: 2 },
      { group: '2024-08-12T17:00:00Z', total_events: 1, unique_users: 1 },
    ],
  },
  {
    group_by: 'day',
    rows: [
      { group: '2024-08-11T00:00:00Z', total_events: 1, unique_users: 1 },
      { group: '2024-08-12T00:00:00Z', total_events: 6, unique_users: 4 },
      { group: '2024-08-13T00:00:00Z', total_events: 2, unique_users: 2 },
    ],
  },
  {
    group_by: 'day',
    range: { from: DAY, to: DAY + 24 * H },
    rows: [
      { group: '2024-08-12T00:00:00Z', total_events: 6, unique_users: 4 },
      { group: '2024-08-13T00:00:00Z', total_events: 1, unique_users: 1 },
    ],
  },
]

/** Names with no event (some shaped as injections): zeros and no groups. */
export const UNKNOWN_NAMES = ['nope', "signup' OR '1'='1", 'signup"; DROP TABLE events; --', '']

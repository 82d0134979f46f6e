/**
 * The explore queries end to end (issue 17): `GET /metrics/top` and `GET /metrics/series` on the
 * API port, and the same queries on the object the server hands around (`delivery`, for the
 * operations port's dashboard), through the delivery thread to the real DuckDB. Copies are never
 * counted; every bad parameter is a 400 naming it; `queryStore` none/duckdb behave as documented.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { loadConfig } from '../../src/config/load.ts'
import { startServer } from '../../src/server.ts'
import { createLogger } from '../../src/telemetry/logger.ts'
import { destroyAgent, postJson, send } from '../helpers/http.ts'
import { startTestServer } from '../helpers/in-process.ts'

const now = Math.floor(Date.now() / 1000)
const day = Math.floor((now - 3 * 86_400) / 86_400) * 86_400 // midnight UTC, three days ago
const H = 3600
const name = `explore_${process.pid}`

const cleanups: (() => Promise<void>)[] = []
after(async () => {
  destroyAgent()
  for (const fn of cleanups.reverse()) await fn()
})

describe('GET /metrics/top and /metrics/series', () => {
  let url = ''
  let server: Awaited<ReturnType<typeof startTestServer>>
  before(async () => {
    server = await startTestServer({ after: (fn: () => Promise<void>) => cleanups.push(fn) })
    url = server.url
    const events = [
      { event_name: name, channel: 'web', user_id: 'a', timestamp: day + 10 * H },
      { event_name: name, channel: 'web', user_id: 'b', timestamp: day + 11 * H - 1 },
      { event_name: name, channel: 'mobile', user_id: 'a', timestamp: day + 11 * H },
      { event_name: `${name}_other`, channel: 'api', user_id: 'c', timestamp: day + 10 * H },
    ].map((e, i) => ({ event_id: `${name}-${i}`, ...e }))
    assert.equal((await postJson(`${url}/events/batch`, events)).status, 202)
    // The same events again (a client's retry) and one with a new id: copies are not counted.
    assert.equal((await postJson(`${url}/events/batch`, events)).status, 202)
    for (let i = 0; i < 200; i++) {
      const m = await send(`${url}/metrics?event_name=${name}`)
      if (m.body.total_events === 3) return
      await new Promise((r) => setTimeout(r, 50))
    }
    assert.fail('events did not reach the store')
  })

  test('top: most events first, exact users, the window and limit echoed', async () => {
    const answer = await send(`${url}/metrics/top?from=${day}&to=${day + 86_399}&limit=5`)
    assert.equal(answer.status, 200)
    assert.deepEqual(answer.body, {
      from: day,
      to: day + 86_399,
      limit: 5,
      data: [
        { event_name: name, total_events: 3, unique_users: 2 },
        { event_name: `${name}_other`, total_events: 1, unique_users: 1 },
      ],
    })
    const one = await send(`${url}/metrics/top?from=${day}&to=${day + 86_399}&limit=1`)
    assert.deepEqual(one.body.data, [{ event_name: name, total_events: 3, unique_users: 2 }])
    assert.equal((await send(`${url}/metrics/top`)).body.limit, 10, 'limit defaults to 10')
  })

  test('series: a row per bucket and channel, a bucket boundary in the later bucket', async () => {
    const answer = await send(`${url}/metrics/series?event_name=${name}&from=${day}&to=${day + 86_399}`)
    assert.equal(answer.status, 200)
    const iso = (s: number) => new Date(s * 1000).toISOString().replace('.000Z', 'Z')
    assert.deepEqual(answer.body, {
      event_name: name,
      from: day,
      to: day + 86_399,
      bucket: 'hour',
      data: [
        { time: iso(day + 10 * H), channel: 'web', total_events: 2, unique_users: 2 },
        { time: iso(day + 11 * H), channel: 'mobile', total_events: 1, unique_users: 1 },
      ],
    })
    const days = await send(`${url}/metrics/series?event_name=${name}&bucket=day`)
    assert.deepEqual(days.body.data, [
      { time: iso(day), channel: 'mobile', total_events: 1, unique_users: 1 },
      { time: iso(day), channel: 'web', total_events: 2, unique_users: 2 },
    ])
    const none = await send(`${url}/metrics/series?event_name=nothing_${name}&bucket=minute&from=${day}`)
    assert.deepEqual(none.body.data, [])
  })

  test('the object the server hands around answers the same queries (the dashboard calls it)', async () => {
    assert.deepEqual(await server.delivery.topEvents({ from: day, to: day + 86_399, limit: 1 }), [
      { event_name: name, total_events: 3, unique_users: 2 },
    ])
    const rows = await server.delivery.series({ event_name: name, bucket: 'day' })
    assert.equal(
      rows.reduce((sum, row) => sum + row.total_events, 0),
      3,
    )
  })

  test('every bad parameter is a 400 naming it', async () => {
    const cases: [string, RegExp][] = [
      ['/metrics/top?limit=0', /^limit must be a whole number from 1 to 100, got "0"$/],
      ['/metrics/top?limit=101', /^limit must be a whole number from 1 to 100/],
      ['/metrics/top?limit=ten', /^limit must be/],
      ['/metrics/top?limit=1&limit=2', /^limit is given more than once$/],
      ['/metrics/top?from=5&to=4', /^from \(5\) must not be after to \(4\)$/],
      ['/metrics/top?from=yesterday', /^from must be a Unix timestamp in seconds/],
      ['/metrics/top?event_name=x', /^unknown parameter "event_name"; known: from, to, limit$/],
      ['/metrics/series', /^event_name is required$/],
      [
        `/metrics/series?event_name=${name}&bucket=week`,
        /^bucket must be one of minute, hour, day, got "week"$/,
      ],
      [`/metrics/series?event_name=${name}&group_by=hour`, /^unknown parameter "group_by"/],
      [
        `/metrics/series?event_name=${name}&bucket=minute&from=0&to=${now}`,
        /^from…to spans \d+ minute buckets, more than 10000; narrow from\/to or use a larger bucket$/,
      ],
    ]
    for (const [path, message] of cases) {
      const answer = await send(`${url}${path}`)
      assert.equal(answer.status, 400, path)
      assert.match(answer.body.error, message, path)
    }
  })
})

describe('queryStore', () => {
  test('none: the query routes answer 503 naming the option; the node still takes events', async (t) => {
    const server = await startTestServer(t, { queryStore: 'none' })
    for (const path of ['/metrics?event_name=x', '/metrics/top', '/metrics/series?event_name=x']) {
      const answer = await send(`${server.url}${path}`)
      assert.equal(answer.status, 503, path)
      assert.match(answer.body.error, /queries are off on this node \(queryStore none\)/, path)
    }
    assert.equal(
      (
        await postJson(`${server.url}/events`, {
          event_name: 'x',
          channel: 'web',
          user_id: 'u',
          timestamp: now,
        })
      ).status,
      202,
    )
    assert.equal((await send(`${server.url}/ready`)).status, 200)
  })

  test('duckdb without duckdb among the sinks: the start is refused, saying why', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'spillway-test-'))
    t.after(() => rm(dataDir, { recursive: true, force: true }))
    const config = loadConfig({
      env: {},
      overrides: {
        httpPort: 0,
        metricsPort: 0,
        dataDir,
        logLevel: 'silent',
        sinks: ['memory'],
        queryStore: 'duckdb',
      },
    })
    await assert.rejects(startServer(config, createLogger('silent')), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'SPW_ERR_CONFIG_INVALID')
      assert.match(error.message, /queryStore duckdb needs duckdb in sinks \(sinks: memory\)/)
      assert.match(error.message, /not even read-only/)
      return true
    })
  })

  test('duckdb as the query store of a node whose first sink is memory', async (t) => {
    const server = await startTestServer(t, { sinks: ['memory', 'duckdb'], queryStore: 'duckdb' })
    const event = { event_id: 'qs-1', event_name: 'qs', channel: 'web', user_id: 'u', timestamp: now - 60 }
    assert.equal((await postJson(`${server.url}/events`, event)).status, 202)
    for (let i = 0; i < 200; i++) {
      const top = await send(`${server.url}/metrics/top`)
      assert.equal(top.status, 200)
      if (top.body.data.length === 1) {
        assert.deepEqual(top.body.data, [{ event_name: 'qs', total_events: 1, unique_users: 1 }])
        return
      }
      await new Promise((r) => setTimeout(r, 50))
    }
    assert.fail('the event did not reach DuckDB')
  })
})

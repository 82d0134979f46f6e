/**
 * The operations port's dashboard feed and routes against a real server (real WAL, delivery
 * thread, DuckDB, and an HTTP sink the test can make fail): GET /api/stats and its SSE stream,
 * /health and /ready with the API port's answers, a failing sink's breaker and last error, the
 * event-query parameters, API keys off loopback, and `spillway top --once` as a real process.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import type { Stats } from '../../src/dashboard/feed.ts'
import { MAX_FEED_STREAMS } from '../../src/dashboard/operations-server.ts'
import { digestOf } from '../../src/http/auth.ts'
import { startTestServer } from '../helpers/in-process.ts'
import { NdjsonReceiver } from '../helpers/ndjson-receiver.ts'
import { ROOT } from '../helpers/server-process.ts'
import { eventually } from '../helpers/wait.ts'

const run = promisify(execFile)
const KEY = 'spw_dashboard_test_key'
const ENTRY = `ops:${digestOf(KEY).toString('hex')}`

function event(i: number) {
  return {
    event_id: `dash-${i}`,
    event_name: i % 3 === 0 ? 'signup' : 'page_view',
    channel: i % 2 === 0 ? 'web' : 'mobile',
    user_id: `user-${i % 7}`,
    timestamp: Math.floor(Date.now() / 1000) - 5,
  }
}

async function postBatch(url: string, events: unknown[], headers: Record<string, string> = {}) {
  const response = await fetch(`${url}/events/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(events),
  })
  assert.equal(response.status, 202, await response.text())
}

async function stats(metricsUrl: string, headers: Record<string, string> = {}): Promise<Stats> {
  const response = await fetch(`${metricsUrl}/api/stats`, { headers })
  assert.equal(response.status, 200)
  return (await response.json()) as Stats
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

test('the feed counts events, shows every sink, and a failing sink turns its breaker open with its error', async (t) => {
  const receiver = await NdjsonReceiver.start()
  t.after(() => receiver.close())
  const server = await startTestServer(t, {
    sinks: ['duckdb', 'http'],
    httpSinkUrl: receiver.url,
    deliveryLingerMs: 20,
    breakerFailures: 1,
    breakerOpenMs: 60_000,
    breakerMaxOpenMs: 60_000,
    // The failing sink's events stay in the WAL: the close need not wait for them.
    shutdownTimeoutMs: 1000,
  })
  const ops = server.metricsUrl

  // /health and /ready: the API port's answers.
  const health = await fetch(`${ops}/health`)
  assert.equal(health.status, 200)
  assert.deepEqual(await health.json(), { status: 'healthy' })
  const [opsReady, apiReady] = await Promise.all([fetch(`${ops}/ready`), fetch(`${server.url}/ready`)])
  assert.equal(opsReady.status, 200)
  assert.deepEqual(await opsReady.json(), await apiReady.json())

  const N = 37
  await postBatch(
    server.url,
    Array.from({ length: N }, (_, i) => event(i)),
  )
  const seen = await eventually(async () => {
    const s = await stats(ops)
    const http = s.sinks.find((x) => x.name === 'http')
    return s.totals.events.accepted === N && http?.deliveredTotal === N && s.history.length > 0 && s
  }, `${N} accepted and delivered in /api/stats`)
  assert.equal(seen.version, 1)
  assert.deepEqual(
    seen.sinks.map((s) => s.name),
    ['duckdb', 'http'],
  )
  assert.equal(seen.sinks[1].breaker, 'closed')
  assert.equal(seen.totals.requests['202'], 1)
  assert.ok(seen.history.length <= 900)
  assert.ok(
    seen.history.some((s) => s.events.accepted > 0),
    'a sample saw the events arrive',
  )
  assert.ok(seen.process.rssBytes > 0)
  assert.ok(seen.node.version.length > 0)

  // The sink fails: its breaker opens, its last error shows, /ready on both ports says 503.
  receiver.respond = () => ({ status: 500, body: 'store on fire' })
  await postBatch(server.url, [event(1000)])
  const failing = await eventually(async () => {
    const s = await stats(ops)
    const http = s.sinks.find((x) => x.name === 'http')
    return http?.breaker === 'open' && http.lastError !== null && s
  }, 'the http sink breaker open in /api/stats')
  const http = failing.sinks.find((x) => x.name === 'http')!
  assert.ok(http.backlogBytes > 0)
  assert.ok(failing.wal.backlogBytes > 0)
  const [opsAfter, apiAfter] = await Promise.all([fetch(`${ops}/ready`), fetch(`${server.url}/ready`)])
  assert.equal(opsAfter.status, 503)
  assert.equal(apiAfter.status, 503)
  assert.equal(((await opsAfter.json()) as { status: string }).status, 'not ready')
  assert.equal(opsAfter.headers.get('retry-after'), '1')

  // ?since keeps only newer samples.
  const last = failing.history.at(-1)!.t
  const newer = await stats(`${ops}`)
  const since = (await (await fetch(`${ops}/api/stats?since=${last}`)).json()) as Stats
  assert.ok(since.history.every((s) => s.t > last))
  assert.ok(since.history.length < newer.history.length)
})

test('the SSE stream sends the whole feed first, then one sample per message', async (t) => {
  const server = await startTestServer(t)
  const controller = new AbortController()
  t.after(() => controller.abort())
  const response = await fetch(`${server.metricsUrl}/api/stats/stream`, { signal: controller.signal })
  assert.equal(response.status, 200)
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/)
  const messages: Stats[] = []
  let buffer = ''
  const decoder = new TextDecoder()
  for await (const chunk of response.body!) {
    buffer += decoder.decode(chunk, { stream: true })
    let end = buffer.indexOf('\n\n')
    while (end !== -1) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n')
      if (data) messages.push(JSON.parse(data) as Stats)
      end = buffer.indexOf('\n\n')
    }
    if (messages.length >= 3) break
  }
  controller.abort()
  assert.equal(messages[0].version, 1)
  for (const m of messages.slice(1)) {
    assert.equal(m.history.length, 1, 'each later message carries its one new sample')
    assert.deepEqual(m.current, m.history[0])
  }
  assert.ok(messages[2].history[0].t > messages[1].history[0].t)
})

test('event queries validate their parameters, naming the bad one', async (t) => {
  const server = await startTestServer(t)
  const ops = server.metricsUrl
  const cases: [string, RegExp][] = [
    ['/api/events/top?limit=0', /limit must be a whole number from 1 to 100/],
    ['/api/events/top?limit=101', /limit/],
    ['/api/events/top?from=10&to=5', /from \(10\) must not be after to \(5\)/],
    ['/api/events/top?from=yesterday', /from must be a Unix timestamp/],
    ['/api/events/top?colour=red', /unknown parameter "colour"/],
    ['/api/events/series', /event_name is required/],
    ['/api/events/series?event_name=x&bucket=week', /bucket must be one of minute, hour, day/],
    ['/api/events/series?event_name=x&event_name=y', /event_name is given more than once/],
    ['/api/stats?since=soon', /since must be Unix milliseconds/],
  ]
  for (const [path, message] of cases) {
    const response = await fetch(`${ops}${path}`)
    assert.equal(response.status, 400, path)
    assert.match(((await response.json()) as { error: string }).error, message, path)
  }
  const missing = await fetch(`${ops}/nope`)
  assert.equal(missing.status, 404)
  assert.match(((await missing.json()) as { error: string }).error, /no route GET \/nope/)
  const post = await fetch(`${ops}/api/stats`, { method: 'POST' })
  assert.equal(post.status, 405)
})

test('the dashboard page and its files are served from the package with content types and ETags', async (t) => {
  const server = await startTestServer(t)
  const ops = server.metricsUrl
  for (const [path, type] of [
    ['/', /^text\/html/],
    ['/dashboard.js', /^text\/javascript/],
    ['/dashboard.css', /^text\/css/],
    ['/vendor/uplot.js', /^text\/javascript/],
    ['/vendor/uplot.css', /^text\/css/],
  ] as const) {
    const response = await fetch(`${ops}${path}`)
    assert.equal(response.status, 200, path)
    assert.match(response.headers.get('content-type') ?? '', type, path)
    assert.ok((await response.text()).length > 100, path)
    const etag = response.headers.get('etag')!
    const again = await fetch(`${ops}${path}`, { headers: { 'if-none-match': etag } })
    assert.equal(again.status, 304, path)
  }
  const page = await (await fetch(`${ops}/`)).text()
  assert.doesNotMatch(page, /https?:\/\/(?!127)/, 'no CDN: the page loads nothing from elsewhere')
})

test('off loopback with API keys configured, the feed and queries need a key; /metrics, /health and the page do not', async (t) => {
  const server = await startTestServer(t, { metricsHost: '0.0.0.0', apiKeys: ENTRY })
  const ops = server.metricsUrl
  const refused = await fetch(`${ops}/api/stats`)
  assert.equal(refused.status, 401)
  assert.match(refused.headers.get('www-authenticate') ?? '', /Bearer/)
  assert.match(((await refused.json()) as { error: string }).error, /missing API key/)
  assert.equal((await fetch(`${ops}/api/stats`, { headers: { 'x-api-key': 'wrong' } })).status, 401)
  assert.equal((await fetch(`${ops}/api/events/top`)).status, 401)
  assert.equal((await fetch(`${ops}/api/stats/stream`)).status, 401)
  assert.equal((await fetch(`${ops}/api/stats`, { headers: { 'x-api-key': KEY } })).status, 200)
  assert.equal((await fetch(`${ops}/api/stats`, { headers: { authorization: `Bearer ${KEY}` } })).status, 200)
  for (const open of ['/metrics', '/health', '/ready', '/']) {
    assert.equal((await fetch(`${ops}${open}`)).status, 200, open)
  }

  // spillway top: without the key a clear error, with it a frame.
  const top = (args: string[]) =>
    run(process.execPath, [join(ROOT, 'src/cli/main.ts'), 'top', '--url', ops, '--once', ...args], {
      env: { ...process.env, SPILLWAY_API_KEY: '' },
    })
  await assert.rejects(top([]), (error: { code: number; stderr: string }) => {
    assert.notEqual(error.code, 0)
    assert.match(error.stderr, /needs an API key.*--api-key/)
    return true
  })
  const { stdout } = await top(['--api-key', KEY])
  assert.match(stdout, /Spillway/)
})

test('on loopback the feed needs no key even with API keys configured', async (t) => {
  const server = await startTestServer(t, { apiKeys: ENTRY })
  assert.equal((await fetch(`${server.metricsUrl}/api/stats`)).status, 200)
})

test('spillway top --once prints one frame of the live figures; an unreachable server is a clear error', async (t) => {
  const server = await startTestServer(t, { deliveryLingerMs: 20 })
  await postBatch(
    server.url,
    Array.from({ length: 12 }, (_, i) => event(i)),
  )
  await eventually(async () => (await stats(server.metricsUrl)).totals.events.accepted === 12, '12 accepted')
  const { stdout } = await run(process.execPath, [
    join(ROOT, 'src/cli/main.ts'),
    'top',
    '--url',
    server.metricsUrl,
    '--once',
  ])
  assert.match(stdout, /totals: 12 accepted/)
  assert.match(stdout, /^duckdb\s+closed/m)
  assert.doesNotMatch(stdout, /\x1b\[\?1049h/, '--once does not take the alternate screen')

  const port = await freePort()
  await assert.rejects(
    run(process.execPath, [
      join(ROOT, 'src/cli/main.ts'),
      'top',
      '--url',
      `http://127.0.0.1:${port}`,
      '--once',
    ]),
    (error: { code: number; stderr: string }) => {
      assert.notEqual(error.code, 0)
      assert.match(
        error.stderr,
        /cannot reach the operations port at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/,
      )
      return true
    },
  )
})

test('the event queries answer from the store the API queries: top names in a window, one name by channel', async (t) => {
  const server = await startTestServer(t, { deliveryLingerMs: 20 })
  const events = Array.from({ length: 30 }, (_, i) => event(i))
  await postBatch(server.url, events)
  const now = Math.floor(Date.now() / 1000)
  const top = await eventually(async () => {
    const response = await fetch(`${server.metricsUrl}/api/events/top?from=${now - 3600}&to=${now}&limit=5`)
    assert.equal(response.status, 200)
    const body = (await response.json()) as {
      limit: number
      data: { event_name: string; total_events: number }[]
    }
    return body.data.reduce((sum, r) => sum + r.total_events, 0) === 30 && body
  }, 'the 30 events in the top names')
  assert.equal(top.limit, 5)
  assert.deepEqual(
    top.data.map((r) => [r.event_name, r.total_events]),
    [
      ['page_view', 20],
      ['signup', 10],
    ],
  )
  const response = await fetch(
    `${server.metricsUrl}/api/events/series?event_name=page_view&from=${now - 3600}&to=${now}&bucket=hour`,
  )
  assert.equal(response.status, 200)
  const series = (await response.json()) as {
    bucket: string
    data: { channel: string; total_events: number }[]
  }
  assert.equal(series.bucket, 'hour')
  const byChannel = Object.fromEntries(
    ['web', 'mobile'].map((c) => [
      c,
      series.data.filter((r) => r.channel === c).reduce((sum, r) => sum + r.total_events, 0),
    ]),
  )
  assert.deepEqual(byChannel, { web: 10, mobile: 10 })
})

test('a node whose sinks cannot answer queries says so with a 503', async (t) => {
  const receiver = await NdjsonReceiver.start()
  t.after(() => receiver.close())
  const server = await startTestServer(t, { sinks: ['http'], httpSinkUrl: receiver.url })
  const response = await fetch(`${server.metricsUrl}/api/events/top`)
  assert.equal(response.status, 503)
  assert.match(((await response.json()) as { error: string }).error, /quer/)
})

test('live streams are bounded: past MAX_FEED_STREAMS a new one is a 503 naming the bound, and a closed one frees its place', async (t) => {
  const server = await startTestServer(t)
  const { request } = await import('node:http')
  const open = (): Promise<{ status: number; body: string; close: () => void; retryAfter?: string }> =>
    new Promise((resolve, reject) => {
      const req = request(`${server.metricsUrl}/api/stats/stream`, { agent: false }, (res) => {
        if (res.statusCode === 200) {
          res.once('data', () => resolve({ status: 200, body: '', close: () => req.destroy() }))
          return
        }
        let body = ''
        res.on('data', (c) => {
          body += c
        })
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body,
            close: () => req.destroy(),
            ...(res.headers['retry-after'] !== undefined && {
              retryAfter: String(res.headers['retry-after']),
            }),
          }),
        )
      })
      req.on('error', reject)
      req.end()
    })
  const streams: Awaited<ReturnType<typeof open>>[] = []
  t.after(() => {
    for (const s of streams) s.close()
  })
  for (let i = 0; i < MAX_FEED_STREAMS; i++) streams.push(await open())
  assert.ok(streams.every((s) => s.status === 200))
  const refused = await open()
  assert.equal(refused.status, 503)
  assert.ok(refused.retryAfter, 'Retry-After is set')
  assert.match(refused.body, new RegExp(`${MAX_FEED_STREAMS} live streams`))
  streams.pop()!.close()
  const again = await eventually(async () => {
    const s = await open()
    if (s.status === 200) return s
    s.close()
    return undefined
  }, 'a place freed by a closed stream')
  streams.push(again)
})

import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { test } from 'node:test'
import { planFromFlags } from '../../../src/loadgen/plan.ts'
import { runLoad } from '../../../src/loadgen/runner.ts'

async function server(handle: (req: IncomingMessage, res: ServerResponse, n: number) => void) {
  let n = 0
  const s = createServer((req, res) => {
    const body: Buffer[] = []
    req.on('data', (c) => body.push(c))
    req.on('end', () => handle(req, res, n++))
  })
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  const url = `http://127.0.0.1:${(s.address() as { port: number }).port}`
  return {
    url,
    close: async () => {
      s.closeAllConnections()
      s.close()
      await once(s, 'close')
    },
  }
}

test('an open run sends what the schedule says and counts each status', async (t) => {
  const target = await server((_req, res, n) => {
    res.writeHead(n % 10 === 0 ? 503 : n % 10 === 1 ? 429 : n % 10 === 2 ? 400 : n % 10 === 3 ? 418 : 202)
    res.end('{}')
  })
  t.after(target.close)
  const plan = planFromFlags({ url: target.url, stages: '500ms:1000,500ms:1000', 'start-rate': '0' })
  const { result } = await runLoad(plan, { seed: 1 })
  // 0 → 1000/s over 0.5 s is 250 arrivals, then 500 more.
  assert.equal(result.requests.scheduled, 750)
  assert.equal(result.requests.sent, 750)
  assert.equal(result.requests.completed, 750)
  const s = result.requests.summary
  assert.deepEqual(
    { 202: s['202'], 400: s['400'], 429: s['429'], 503: s['503'], other: s.other },
    { 202: 450, 400: 75, 429: 75, 503: 75, other: 75 },
  )
  assert.deepEqual(result.requests.byStatus, { 202: 450, 400: 75, 418: 75, 429: 75, 503: 75 })
  assert.equal(result.requests.ok, 450)
  assert.ok(Math.abs(result.requests.errorRate - 0.4) < 1e-9)
  assert.equal(result.events.sent, 750)
  assert.ok(result.durationSeconds >= 0.99 && result.durationSeconds < 3, `${result.durationSeconds}`)
  assert.ok(result.latencyMs.p50 > 0 && result.latencyMs.p50 <= result.latencyMs.p99)
  assert.ok(result.latencyMs.p99 <= result.latencyMs.max)
  assert.equal(
    result.timeline.reduce((sum, p) => sum + p.sent, 0),
    750,
  )
  assert.equal(
    result.timeline.reduce((sum, p) => sum + p.completed, 0),
    750,
  )
  assert.equal(result.timeline[0].targetRate, 1000) // the middle of the first second
  assert.ok(result.percentiles.length > 5)
  assert.equal(result.pass, true)
})

test('latency runs from the due time: a server that stalls shows in every request queued behind it', async (t) => {
  // One connection, a 1000/s schedule, a server that takes 50 ms for the first request: the
  // requests due meanwhile wait for the connection, and their latency says so.
  const target = await server((_req, res, n) => {
    if (n === 0) setTimeout(() => res.writeHead(202).end(), 50)
    else res.writeHead(202).end()
  })
  t.after(target.close)
  const plan = planFromFlags({ url: target.url, rate: '1000', duration: '200ms', connections: '1' })
  const { result } = await runLoad(plan)
  assert.equal(result.requests.summary['202'], 200)
  assert.ok(result.generator.maxQueued >= 30, `max queued ${result.generator.maxQueued}`)
  // The request due at 1 ms waited ~49 ms: p10 is still tens of ms, not the 0.1 ms the server took.
  assert.ok(result.latencyMs.p90 >= 10, `p90 ${result.latencyMs.p90} ms`)
  assert.ok(result.latencyMs.max >= 45, `max ${result.latencyMs.max} ms`)
})

test('arrivals beyond the queue bound are dropped and count as errors', async (t) => {
  const target = await server((_req, res) => setTimeout(() => res.writeHead(202).end(), 300))
  t.after(target.close)
  const plan = planFromFlags(
    {
      url: target.url,
      rate: '1000',
      duration: '100ms',
      connections: '2',
      'max-queued': '10',
      threshold: 'errors<1%',
    },
    { threshold: ['errors<1%'] },
  )
  const { result } = await runLoad(plan)
  assert.equal(result.requests.summary.dropped, 100 - 2 - 10)
  assert.equal(result.requests.summary['202'], 12)
  assert.ok(Math.abs(result.requests.errorRate - 88 / 100) < 1e-9)
  assert.equal(result.pass, false)
  assert.equal(result.thresholds[0].pass, false)
})

test('a request unanswered within the timeout is a timeout and its connection is replaced', async (t) => {
  const target = await server((_req, res, n) => {
    if (n % 2 === 0) return // never answers
    res.writeHead(202).end()
  })
  t.after(target.close)
  const plan = planFromFlags({ url: target.url, connections: '2', duration: '400ms', timeout: '150ms' })
  const { result } = await runLoad(plan)
  assert.ok(result.requests.summary.timeouts >= 2, JSON.stringify(result.requests.summary))
  assert.ok(result.requests.summary['202'] >= 2)
  assert.equal(result.requests.summary.connectionErrors, 0)
  assert.ok(result.generator.connectionsOpened > 2)
})

test('a closed run keeps N requests in flight and stops at --requests', async (t) => {
  let inFlight = 0
  let most = 0
  const target = await server((_req, res) => {
    inFlight++
    most = Math.max(most, inFlight)
    setTimeout(() => {
      inFlight--
      res.writeHead(202).end()
    }, 2)
  })
  t.after(target.close)
  const plan = planFromFlags({
    url: target.url,
    connections: '4',
    duration: '10s',
    requests: '300',
    batch: '10',
  })
  const { result } = await runLoad(plan)
  assert.equal(result.requests.sent, 300)
  assert.equal(result.requests.summary['202'], 300)
  assert.equal(result.events.sent, 3000)
  assert.equal(most, 4)
  assert.ok(result.durationSeconds < 5)
})

test('a server that is down gives connection errors, not a hang', async (t) => {
  const target = await server((_req, res) => res.writeHead(202).end())
  await target.close()
  const closed = planFromFlags({ url: target.url, connections: '2', duration: '300ms' })
  const { result } = await runLoad(closed)
  assert.ok(result.requests.summary.connectionErrors >= 2)
  assert.equal(result.requests.ok, 0)
  assert.ok(result.requests.summary.connectionErrors < 100, 'retries are paced')
  const open = planFromFlags({ url: target.url, rate: '200', duration: '250ms' })
  const { result: openResult } = await runLoad(open)
  assert.equal(openResult.requests.summary.connectionErrors + openResult.requests.summary.dropped, 50)
  t.diagnostic(JSON.stringify(openResult.requests.summary))
})

test('credentials in headers stay out of the result', async (t) => {
  const target = await server((_req, res) => res.writeHead(202).end())
  t.after(target.close)
  const plan = planFromFlags(
    { url: target.url, requests: '5', 'api-key': 'secret', header: 'X-Trace: on' },
    { header: ['X-Trace: on'] },
  )
  const { result } = await runLoad(plan)
  assert.deepEqual(result.plan.headers, { 'X-Trace': 'on', Authorization: '<redacted>' })
  assert.ok(!JSON.stringify(result).includes('secret'))
})

test('arrivals queued behind a slow connection are all sent after the last one is due, none dropped', async (t) => {
  // The producer tool's shape: 100 requests due within 100 ms, one connection, 5 ms each: the
  // queue takes ~500 ms to drain, longer than the request timeout, and no request takes that long.
  const target = await server((_req, res) => setTimeout(() => res.writeHead(202).end(), 5))
  t.after(target.close)
  const plan = planFromFlags({ url: target.url, rate: '1000', burst: '100', workers: '1', timeout: '200ms' })
  const { result } = await runLoad(plan)
  assert.equal(result.requests.summary['202'], 100)
  assert.equal(result.requests.summary.dropped, 0)
  assert.equal(result.requests.summary.timeouts, 0)
  assert.ok(result.latencyMs.max >= 300, `the last one waited: max ${result.latencyMs.max} ms`)
})

test('every request is accounted for: unanswered ones are timeouts in the result', async (t) => {
  const target = await server(() => {}) // never answers
  t.after(target.close)
  const plan = planFromFlags({ url: target.url, rate: '100', duration: '200ms', timeout: '150ms' })
  const { result } = await runLoad(plan)
  assert.equal(result.requests.sent, 20)
  assert.equal(result.requests.completed, 20)
  assert.equal(result.requests.summary.timeouts, 20)
  assert.equal(result.requests.errorRate, 1)
})

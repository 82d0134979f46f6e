import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  CLIENT_ERRORS,
  type ClientOptions,
  type RetryInfo,
  SpillwayClient,
  SpillwayClientError,
} from '../../../packages/client/src/index.ts'
import {
  type Answer,
  acceptAll,
  type Received,
  type ScriptedServer,
  startScriptedServer,
} from './scripted-server.ts'

const now = () => Math.floor(Date.now() / 1000)
const event = (i: number, pad = 0) => ({
  event_name: 'unit',
  user_id: `u${i}`,
  channel: 'web' as const,
  timestamp: now(),
  metadata: { i, ...(pad > 0 && { pad: 'p'.repeat(pad) }) },
})
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const FAST_RETRY = { minMs: 10, maxMs: 40 }

interface Rig {
  server: ScriptedServer
  client: SpillwayClient
  errors: SpillwayClientError[]
  retries: RetryInfo[]
}

async function rig(
  t: { after(fn: () => unknown): void },
  options: Partial<ClientOptions> = {},
  answer?: (r: Received, i: number) => Answer,
): Promise<Rig> {
  const server = await startScriptedServer(answer)
  const errors: SpillwayClientError[] = []
  const retries: RetryInfo[] = []
  const client = new SpillwayClient({
    url: server.url,
    retry: FAST_RETRY,
    onError: (e) => errors.push(e),
    onRetry: (r) => retries.push(r),
    ...options,
  })
  t.after(async () => {
    await client.close({ timeoutMs: 2000 }).catch(() => {})
    await server.close()
  })
  return { server, client, errors, retries }
}

const ids = (events: Record<string, unknown>[]) => events.map((e) => e['event_id'])
const userIds = (events: Record<string, unknown>[]) => events.map((e) => e['user_id'])

describe('batching', () => {
  test('a batch leaves when batchEvents are queued; flush() sends the rest at once', async (t) => {
    const { server, client } = await rig(t, { batchEvents: 10, flushIntervalMs: 60_000 })
    for (let i = 0; i < 25; i++) await client.track(event(i))
    await client.flush()
    assert.deepEqual(
      server.requests.map((r) => r.events.length),
      [10, 10, 5],
    )
    const first = server.requests[0]
    assert.equal(first.url, '/events/batch?results=full')
    assert.equal(first.headers['content-type'], 'application/x-ndjson')
    assert.deepEqual(
      userIds(server.accepted),
      Array.from({ length: 25 }, (_, i) => `u${i}`),
    )
    assert.equal(client.stats.sent, 25)
    assert.equal(client.stats.queued, 0)
  })

  test('a batch leaves when batchBytes are queued, and no request is larger', async (t) => {
    const { server, client } = await rig(t, { batchEvents: 1000, batchBytes: 2048, flushIntervalMs: 60_000 })
    for (let i = 0; i < 40; i++) await client.track(event(i, 200))
    await client.flush()
    assert.ok(server.requests.length >= 4, `${server.requests.length} requests`)
    for (const r of server.requests) {
      const lineBytes = r.events.reduce((n, e) => {
        const { sent_at: _, ...line } = e
        return n + Buffer.byteLength(JSON.stringify(line))
      }, 0)
      assert.ok(lineBytes <= 2048, `a request of ${lineBytes} bytes of events`)
    }
    assert.equal(server.accepted.length, 40)
  })

  test('a batch leaves flushIntervalMs after its oldest event, without flush()', async (t) => {
    const { server, client } = await rig(t, { batchEvents: 1000, flushIntervalMs: 150 })
    const start = Date.now()
    await client.track(event(1))
    await client.track(event(2))
    while (server.requests.length === 0 && Date.now() - start < 10_000) await sleep(10)
    assert.equal(server.requests.length, 1)
    assert.ok(server.requests[0].at - start >= 140, `sent after ${server.requests[0].at - start} ms`)
    assert.equal(server.requests[0].events.length, 2)
  })

  test('at most `concurrency` requests are in flight', async (t) => {
    const slow = (r: Received): Answer => ({ ...(acceptAll(r) as object), status: 202, delayMs: 40 })
    const one = await rig(t, { batchEvents: 5, concurrency: 1 }, slow)
    for (let i = 0; i < 30; i++) await one.client.track(event(i))
    await one.client.flush()
    assert.equal(Math.max(...one.server.requests.map((r) => r.concurrent)), 1)
    const three = await rig(t, { batchEvents: 5, concurrency: 3 }, slow)
    for (let i = 0; i < 60; i++) await three.client.track(event(i))
    await three.client.flush()
    const most = Math.max(...three.server.requests.map((r) => r.concurrent))
    assert.ok(most > 1 && most <= 3, `${most} in flight at once`)
    assert.equal(three.server.accepted.length, 60)
  })

  test('bodies above gzipAboveBytes are gzip’d, smaller ones are not', async (t) => {
    const { server, client } = await rig(t, {
      batchEvents: 1000,
      gzipAboveBytes: 4096,
      flushIntervalMs: 60_000,
    })
    await client.track(event(1))
    await client.flush()
    for (let i = 0; i < 50; i++) await client.track(event(i, 100))
    await client.flush()
    assert.deepEqual(
      server.requests.map((r) => r.gzip),
      [false, true],
    )
    assert.ok(server.requests[1].bytes < 4096, `gzip'd to ${server.requests[1].bytes} bytes`)
    assert.equal(server.accepted.length, 51)
  })

  test('the API key goes as a Bearer token', async (t) => {
    const { server, client } = await rig(t, { apiKey: 'spw_secret' })
    await client.track(event(1))
    await client.flush()
    assert.equal(server.requests[0].headers['authorization'], 'Bearer spw_secret')
  })
})

describe('retries', () => {
  test('the event_id is fixed at track(); sent_at is stamped again on each attempt; Retry-After is a floor', async (t) => {
    const { server, client, retries } = await rig(t, {}, (r, i) =>
      i === 0
        ? { status: 503, headers: { 'retry-after': '1' }, body: { error: 'queue full' } }
        : acceptAll(r),
    )
    const tracked = await client.track(event(1))
    await client.flush()
    const [first, second] = server.requests
    assert.deepEqual(ids(first.events), [tracked.event_id])
    assert.deepEqual(ids(second.events), [tracked.event_id])
    assert.match(tracked.event_id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    for (const r of [first, second]) {
      assert.ok(Math.abs((r.events[0]['sent_at'] as number) - r.at / 1000) <= 1.5, 'sent_at is the send time')
    }
    assert.ok(second.at - first.at >= 990, `retried after ${second.at - first.at} ms`)
    assert.deepEqual(
      retries.map((r) => [r.attempt, r.status]),
      [[1, 503]],
    )
    assert.ok(retries[0].delayMs >= 1000)
    assert.equal(client.stats.retried, 1)
    assert.equal(client.stats.sent, 1)
  })

  test('429 with RateLimit-Remaining 0 waits for RateLimit-Reset; a 202 that spends the budget holds the next request', async (t) => {
    const { server, client } = await rig(t, { batchEvents: 1 }, (r, i): Answer => {
      if (i === 0) {
        return {
          status: 429,
          headers: { 'ratelimit-limit': '2', 'ratelimit-remaining': '0', 'ratelimit-reset': '1' },
          body: { error: 'rate limit' },
        }
      }
      const answer = acceptAll(r) as { status: number; body: unknown }
      return i === 1 ? { ...answer, headers: { 'ratelimit-remaining': '0', 'ratelimit-reset': '1' } } : answer
    })
    await client.track(event(1))
    await client.track(event(2))
    await client.flush()
    const at = server.requests.map((r) => r.at)
    assert.equal(at.length, 3)
    assert.ok(at[1] - at[0] >= 990, `429 retried after ${at[1] - at[0]} ms`)
    assert.ok(at[2] - at[1] >= 990, `the next request waited ${at[2] - at[1]} ms`)
  })

  test('network errors, timeouts and 5xx are retried with capped, jittered backoff', async (t) => {
    const script: Answer[] = ['destroy', 'destroy', { status: 500, body: { error: 'boom' } }, 'destroy']
    const { server, client, retries } = await rig(
      t,
      { retry: { minMs: 20, maxMs: 40 } },
      (r, i) => script[i] ?? acceptAll(r),
    )
    const tracked = await client.track(event(1))
    await client.flush()
    assert.deepEqual(
      retries.map((r) => r.status),
      [undefined, undefined, 500, undefined],
    )
    const bounds = [
      [10, 20],
      [20, 40],
      [20, 40],
      [20, 40],
    ]
    retries.forEach((r, i) => {
      assert.ok(
        r.delayMs >= bounds[i][0] && r.delayMs <= bounds[i][1],
        `retry ${i + 1} after ${r.delayMs} ms`,
      )
    })
    assert.deepEqual(ids(server.accepted), [tracked.event_id])
    assert.equal(server.requests.length, 5)
    assert.equal(client.stats.retried, 4)
  })

  test('a request not answered within requestTimeoutMs is retried', async (t) => {
    const { server, client, retries } = await rig(t, { requestTimeoutMs: 300 }, (r, i) =>
      i === 0 ? { status: 202, body: {}, delayMs: 5000 } : acceptAll(r),
    )
    await client.track(event(1))
    await client.flush()
    assert.ok(retries.length >= 1)
    assert.match(retries[0].error, /no answer within 300 ms/)
    assert.equal(server.requests.length, retries.length + 1)
    assert.equal(client.stats.sent, 1)
  })
})

describe('refusals are reported, never retried', () => {
  test('events the server rejects by index are reported with its reasons; the others count as sent', async (t) => {
    const { server, client, errors } = await rig(t, {}, () => ({
      status: 202,
      body: {
        accepted: 2,
        duplicates: 0,
        rejected: [{ index: 1, error: 'timestamp is 900 seconds in the future' }],
      },
    }))
    const tracked = []
    for (let i = 0; i < 3; i++) tracked.push(await client.track(event(i)))
    await client.flush()
    assert.equal(server.requests.length, 1)
    assert.equal(errors.length, 1)
    assert.equal(errors[0].code, 'SPW_ERR_CLIENT_REJECTED')
    assert.equal(errors[0].status, 202)
    assert.deepEqual(
      errors[0].events.map((e) => [e.event_id, e.error, e.event['user_id']]),
      [[tracked[1].event_id, 'timestamp is 900 seconds in the future', 'u1']],
    )
    assert.equal(client.stats.sent, 2)
    assert.equal(client.stats.rejected, 1)
  })

  test('per-event `results`, when the server sends them, are what counts', async (t) => {
    const { client, errors } = await rig(t, {}, (r) => ({
      status: 202,
      body: {
        accepted: 1,
        duplicates: 1,
        rejected: [{ index: 2, error: 'bad' }],
        results: r.events.map((e, index) => ({
          index,
          event_id: e['event_id'],
          status: ['accepted', 'duplicate', 'rejected'][index],
          ...(index === 2 && { error: 'bad' }),
        })),
      },
    }))
    for (let i = 0; i < 3; i++) await client.track(event(i))
    await client.flush()
    assert.deepEqual(
      errors.flatMap((e) => e.events.map((f) => f.error)),
      ['bad'],
    )
    assert.equal(client.stats.sent, 2)
    assert.equal(client.stats.duplicates, 1)
  })

  for (const [status, body] of [
    [
      400,
      {
        error: 'all 2 events were rejected',
        accepted: 0,
        duplicates: 0,
        rejected: [
          { index: 0, error: 'a' },
          { index: 1, error: 'b' },
        ],
      },
    ],
    [400, { error: 'body is not valid gzip' }],
    [401, { error: 'missing API key' }],
    [413, { error: 'event is larger than 65536 bytes' }],
    [409, { error: 'event_id "x" was used for another event' }],
  ] as const) {
    test(`${status} ${body.error}: reported once, not retried`, async (t) => {
      const { server, client, errors, retries } = await rig(
        t,
        { batchEvents: status === 413 ? 1 : 500 },
        () => ({
          status,
          body,
        }),
      )
      await client.track(event(0))
      if (status !== 413) await client.track(event(1))
      await client.flush()
      const n = status === 413 ? 1 : 2
      assert.equal(server.requests.length, 1)
      assert.equal(retries.length, 0)
      assert.equal(client.stats.rejected, n)
      assert.equal(client.stats.sent, 0)
      assert.equal(errors.length, 1)
      assert.equal(errors[0].status, status)
      const reasons = errors[0].events.map((e) => e.error)
      assert.deepEqual(reasons, 'rejected' in body ? ['a', 'b'] : Array(n).fill(body.error))
    })
  }

  test('a 413 for a batch splits it in halves until it fits', async (t) => {
    const { server, client, errors } = await rig(t, { batchEvents: 10, flushIntervalMs: 60_000 }, (r) =>
      r.events.length > 3 ? { status: 413, body: { error: 'batch has 10 events; at most 3' } } : acceptAll(r),
    )
    for (let i = 0; i < 10; i++) await client.track(event(i))
    await client.flush()
    assert.deepEqual(errors, [])
    assert.deepEqual(
      userIds(server.accepted),
      Array.from({ length: 10 }, (_, i) => `u${i}`),
    )
    assert.equal(client.stats.sent, 10)
  })

  test('an invalid event throws at track() with the server’s reason and is never queued', async (t) => {
    const { client } = await rig(t)
    assert.throws(
      () => client.track({ ...event(1), channel: 'fax' as 'web' }),
      (e: SpillwayClientError) =>
        e.code === 'SPW_ERR_CLIENT_INVALID_EVENT' &&
        e.message === 'channel must be one of web, mobile, api, email, push, got "fax"',
    )
    assert.equal(client.stats.queued, 0)
  })

  test('a callback that throws does not stop delivery', async (t) => {
    const { server, client } = await rig(t, {
      onResult: () => {
        throw new Error('user bug')
      },
    })
    await client.track(event(1))
    await client.flush()
    await client.track(event(2))
    await client.flush()
    assert.equal(server.accepted.length, 2)
  })
})

describe('the queue bound', () => {
  // While the server answers 503, nothing leaves the queue.
  const closed = (r: Received, _i: number, open: { value: boolean }): Answer =>
    open.value ? acceptAll(r) : { status: 503, headers: { 'retry-after': '0' }, body: { error: 'busy' } }

  test('drop-newest: a full queue drops the new event, counts and reports it', async (t) => {
    const open = { value: false }
    const { server, client, errors } = await rig(
      t,
      { maxQueueEvents: 5, overflow: 'drop-newest', batchEvents: 100, flushIntervalMs: 60_000 },
      (r, i) => closed(r, i, open),
    )
    const results = []
    for (let i = 0; i < 8; i++) results.push(await client.track(event(i)))
    assert.deepEqual(
      results.map((r) => r.status),
      ['queued', 'queued', 'queued', 'queued', 'queued', 'dropped', 'dropped', 'dropped'],
    )
    assert.deepEqual(
      errors.map((e) => [e.code, e.events[0].event['user_id']]),
      [
        ['SPW_ERR_CLIENT_DROPPED', 'u5'],
        ['SPW_ERR_CLIENT_DROPPED', 'u6'],
        ['SPW_ERR_CLIENT_DROPPED', 'u7'],
      ],
    )
    assert.match(errors[0].message, /the queue is full \(5 events/)
    open.value = true
    await client.flush()
    assert.deepEqual(userIds(server.accepted), ['u0', 'u1', 'u2', 'u3', 'u4'])
    assert.equal(client.stats.dropped, 3)
  })

  test('drop-oldest: a full queue drops the oldest queued events', async (t) => {
    const { server, client, errors } = await rig(t, {
      maxQueueEvents: 5,
      overflow: 'drop-oldest',
      batchEvents: 100,
      flushIntervalMs: 60_000,
    })
    for (let i = 0; i < 8; i++) assert.equal((await client.track(event(i))).status, 'queued')
    await client.flush()
    assert.deepEqual(userIds(server.accepted), ['u3', 'u4', 'u5', 'u6', 'u7'])
    assert.deepEqual(
      errors.flatMap((e) => e.events.map((f) => f.event['user_id'])),
      ['u0', 'u1', 'u2'],
    )
    assert.equal(client.stats.dropped, 3)
  })

  test('the byte bound counts too', async (t) => {
    const { client } = await rig(t, {
      maxQueueEvents: 1000,
      maxQueueBytes: 4096,
      overflow: 'drop-newest',
      flushIntervalMs: 60_000,
    })
    let queued = 0
    for (let i = 0; i < 40; i++) if ((await client.track(event(i, 200))).status === 'queued') queued++
    assert.ok(queued > 5 && queued < 40, `${queued} queued`)
    assert.ok(client.stats.queuedBytes <= 4096)
    assert.equal(client.stats.dropped, 40 - queued)
  })

  test('block: track() waits for room, nothing is dropped, order is kept', async (t) => {
    const open = { value: false }
    const { server, client } = await rig(
      t,
      { maxQueueEvents: 5, overflow: 'block', batchEvents: 2, flushIntervalMs: 0 },
      (r, i) => closed(r, i, open),
    )
    const settled: number[] = []
    const tracks = Array.from({ length: 12 }, (_, i) => client.track(event(i)).then(() => settled.push(i)))
    await sleep(200)
    assert.deepEqual(settled, [0, 1, 2, 3, 4])
    open.value = true
    await Promise.all(tracks)
    await client.flush()
    assert.deepEqual(
      userIds(server.accepted),
      Array.from({ length: 12 }, (_, i) => `u${i}`),
    )
    assert.equal(client.stats.dropped, 0)
  })

  test('close({timeoutMs}) without a store drops what it could not deliver, and says so', async (t) => {
    const { client, errors } = await rig(t, { flushIntervalMs: 0 }, () => ({
      status: 503,
      headers: { 'retry-after': '1' },
      body: { error: 'busy' },
    }))
    for (let i = 0; i < 3; i++) await client.track(event(i))
    await assert.rejects(
      client.close({ timeoutMs: 300 }),
      (e: SpillwayClientError) => e.code === 'SPW_ERR_CLIENT_TIMEOUT',
    )
    assert.equal(client.stats.dropped, 3)
    assert.deepEqual(
      errors.map((e) => [e.code, e.events.length]),
      [['SPW_ERR_CLIENT_DROPPED', 3]],
    )
    assert.throws(
      () => client.track(event(9)),
      (e: SpillwayClientError) => e.code === 'SPW_ERR_CLIENT_CLOSED',
    )
  })

  test('flush({timeoutMs}) rejects when the server stays away, and keeps the events', async (t) => {
    const open = { value: false }
    const { server, client } = await rig(t, { flushIntervalMs: 0 }, (r, i) => closed(r, i, open))
    await client.track(event(1))
    await assert.rejects(
      client.flush({ timeoutMs: 200 }),
      (e: SpillwayClientError) => e.code === 'SPW_ERR_CLIENT_TIMEOUT',
    )
    open.value = true
    await client.flush()
    assert.equal(server.accepted.length, 1)
  })
})

describe('options and errors', () => {
  test('a wrong option fails the constructor, naming the option', () => {
    const cases: [Partial<ClientOptions>, RegExp][] = [
      [{ url: '' }, /^url must be the base URL/],
      [{ url: 'ftp://x' }, /^url must use http or https/],
      [{ url: 'http://x/?a=1' }, /^url must not have a query/],
      [{ batchEvents: 0 }, /^batchEvents must be an integer ≥ 1, got 0/],
      [
        { overflow: 'spill' as 'block' },
        /^overflow must be one of "drop-oldest", "drop-newest", "block", got "spill"/,
      ],
      [{ limits: { maxTag: 3 } as object }, /^limits.maxTag is not a limit/],
      [{ retry: { minMs: 100, maxMs: 10 } }, /^retry.maxMs must be at least retry.minMs/],
      [{ apiKey: 'a b' }, /^apiKey must be a string of printable ASCII/],
      [{ apiKey: 'k', unload: 'beacon' }, /sendBeacon cannot send an Authorization header/],
      [{ onError: 'x' as never }, /^onError must be a function/],
    ]
    for (const [options, message] of cases) {
      assert.throws(
        () => new SpillwayClient({ url: 'http://127.0.0.1:1', ...options }),
        (e: SpillwayClientError) => e.code === 'SPW_ERR_CLIENT_INVALID_OPTION' && message.test(e.message),
        String(message),
      )
    }
  })

  test('every error code is SPW_ERR_CLIENT_* and carries its retryable flag', () => {
    for (const [code, spec] of Object.entries(CLIENT_ERRORS)) {
      assert.match(code, /^SPW_ERR_CLIENT_[A-Z_]+$/)
      const error = new SpillwayClientError(code as keyof typeof CLIENT_ERRORS, 'm')
      assert.equal(error.retryable, spec.retryable)
      assert.equal(error.name, 'SpillwayClientError')
      assert.ok(error instanceof Error)
    }
  })
})

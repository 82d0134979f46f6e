/**
 * The `http` sink against a real node:http receiver on 127.0.0.1.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { isSpillwayError } from '../../../../src/errors.ts'
import { encodeEvents } from '../../../../src/intake/serialize.ts'
import { DuckDbSink } from '../../../../src/sinks/duckdb/sink.ts'
import type { HttpSinkOptions } from '../../../../src/sinks/http/config.ts'
import { HttpSink, idempotencyKey } from '../../../../src/sinks/http/sink.ts'
import { createQueryBackend } from '../../../../src/sinks/registry.ts'
import { numberedEvents } from '../../../helpers/events.ts'
import { NdjsonReceiver } from '../../../helpers/ndjson-receiver.ts'
import { silent } from '../../delivery/helpers.ts'

type After = { after: (fn: () => Promise<void> | void) => void }

async function setup(t: After, options: Partial<HttpSinkOptions> = {}) {
  const receiver = await NdjsonReceiver.start()
  const sink = new HttpSink({ url: receiver.url, logger: silent, ...options })
  await sink.open()
  t.after(async () => {
    await sink.close()
    await receiver.close()
  })
  return { receiver, sink }
}

const wholeRecords = (from: number, count: number) => {
  const list = numberedEvents(from, count)
  return { events: list, ndjson: encodeEvents(list), from: 1000 + from * 10, to: 1000 + (from + count) * 10 }
}

test("POSTs the batch's NDJSON gzip'd, with an Idempotency-Key and the configured headers", async (t) => {
  const { receiver, sink } = await setup(t, { headers: { authorization: 'Bearer s3cret' } })
  const batch = wholeRecords(0, 3)
  assert.deepEqual(await sink.write(batch), { kind: 'delivered' })
  const [request] = receiver.posts
  assert.equal(request.headers['content-type'], 'application/x-ndjson')
  assert.equal(request.headers['content-encoding'], 'gzip')
  assert.equal(request.headers['idempotency-key'], `http-${batch.from}-${batch.to}`)
  assert.equal(request.headers['authorization'], 'Bearer s3cret')
  assert.deepEqual(gunzipSync(request.raw), batch.ndjson, 'the WAL bytes as they are')
  assert.deepEqual(
    request.events.map((e) => e['event_id']),
    ['e0', 'e1', 'e2'],
  )
})

test('gzip: false sends plain NDJSON; without ndjson the events are encoded', async (t) => {
  const { receiver, sink } = await setup(t, { gzip: false })
  const list = numberedEvents(5, 2)
  assert.equal((await sink.write({ events: list, from: 50, to: 70 })).kind, 'delivered')
  const [request] = receiver.posts
  assert.equal(request.headers['content-encoding'], undefined)
  assert.deepEqual(request.raw, encodeEvents(list))
})

test('a piece cut inside records gets a key of its own: siblings that share a WAL range differ', () => {
  const a = { events: numberedEvents(0, 2), from: 100, to: 100 }
  const b = { events: numberedEvents(2, 2), from: 100, to: 100 }
  assert.notEqual(idempotencyKey('http', a), idempotencyKey('http', b))
  assert.equal(
    idempotencyKey('http', a),
    idempotencyKey('http', { ...a, events: numberedEvents(0, 2) }),
    'stable',
  )
  assert.match(idempotencyKey('http', a), /^http-100-100-[0-9a-f]{16}$/)
  assert.equal(idempotencyKey('http', wholeRecords(0, 2)), 'http-1000-1020')
})

test('an empty batch is delivered without a request', async (t) => {
  const { receiver, sink } = await setup(t)
  assert.equal((await sink.write({ events: [], from: 7, to: 7 })).kind, 'delivered')
  assert.equal(receiver.requests.length, 0)
})

test("the receiver's answer decides: 500 and 429 retry (with Retry-After), 400 is permanent with its body", async (t) => {
  const { receiver, sink } = await setup(t)
  const batch = wholeRecords(0, 2)
  receiver.respond = () => ({ status: 500, body: 'db down' })
  const failed = await sink.write(batch)
  assert.equal(failed.kind, 'retry')
  assert.ok(failed.kind === 'retry' && isSpillwayError(failed.error, 'SPW_ERR_SINK_UNAVAILABLE'))
  assert.match(failed.kind === 'retry' ? failed.error.message : '', /HTTP 500 Internal Server Error: db down/)

  receiver.respond = () => ({ status: 429, headers: { 'retry-after': '3' } })
  const throttled = await sink.write(batch)
  assert.equal(throttled.kind, 'retry')
  assert.equal(throttled.kind === 'retry' && throttled.afterMs, 3000)

  receiver.respond = () => ({ status: 400, body: '{"error":"poison"}' })
  const refused = await sink.write(batch)
  assert.equal(refused.kind, 'permanent')
  assert.ok(refused.kind === 'permanent' && isSpillwayError(refused.error, 'SPW_ERR_SINK_REJECTED'))
  assert.match(
    refused.kind === 'permanent' ? refused.error.message : '',
    /HTTP 400 Bad Request: \{"error":"poison"\}/,
  )
  assert.equal(receiver.stored.size, 0, 'nothing was stored')
  const keys = new Set(receiver.posts.map((r) => r.headers['idempotency-key']))
  assert.equal(keys.size, 1, 'every retry of one batch carries the same key')
})

test('a socket closed without an answer is a retry, and the next write works on a new connection', async (t) => {
  const { receiver, sink } = await setup(t)
  receiver.respond = () => 'destroy'
  const verdict = await sink.write(wholeRecords(0, 2))
  assert.equal(verdict.kind, 'retry')
  assert.match(
    verdict.kind === 'retry' ? verdict.error.message : '',
    /no answer from .*(ECONNRESET|socket hang up)/,
  )
  receiver.respond = () => ({ status: 200 })
  assert.equal((await sink.write(wholeRecords(0, 2))).kind, 'delivered')
})

test('no answer within timeoutMs is a retry (ETIMEDOUT); the sink keeps working', async (t) => {
  const { receiver, sink } = await setup(t, { timeoutMs: 100 })
  receiver.respond = () => 'hang'
  const started = Date.now()
  const verdict = await sink.write(wholeRecords(0, 1))
  assert.ok(Date.now() - started < 2000)
  assert.equal(verdict.kind, 'retry')
  assert.match(verdict.kind === 'retry' ? verdict.error.message : '', /ETIMEDOUT: no answer within 100 ms/)
  receiver.respond = () => ({ status: 204 })
  assert.equal((await sink.write(wholeRecords(1, 1))).kind, 'delivered')
})

test('a receiver that is not listening is a retry (ECONNREFUSED)', async () => {
  const port = await freePort()
  const sink = new HttpSink({ url: `http://127.0.0.1:${port}/x`, logger: silent })
  await sink.open()
  const verdict = await sink.write(wholeRecords(0, 1))
  assert.equal(verdict.kind, 'retry')
  assert.match(verdict.kind === 'retry' ? verdict.error.message : '', /ECONNREFUSED/)
  await assert.rejects(sink.ping(), /ECONNREFUSED/)
  await sink.close()
})

test('consecutive writes reuse one keep-alive connection', async (t) => {
  const { receiver, sink } = await setup(t)
  for (let i = 0; i < 5; i++) assert.equal((await sink.write(wholeRecords(i, 1))).kind, 'delivered')
  assert.equal(receiver.posts.length, 5)
  assert.equal(receiver.connections, 1)
})

test('ping: any answer below 500 is alive (even 404 or 405), a 5xx is not', async (t) => {
  const { receiver, sink } = await setup(t)
  for (const status of [200, 204, 404, 405]) {
    receiver.respond = () => ({ status })
    await sink.ping()
  }
  assert.ok(receiver.requests.every((r) => r.method === 'HEAD'))
  receiver.respond = () => ({ status: 503 })
  await assert.rejects(sink.ping(), /answered HTTP 503/)
  receiver.respond = () => 'destroy'
  await assert.rejects(sink.ping(), /no answer from/)
})

test('GET /metrics needs a store: http is skipped, and http alone answers with a clear error', async () => {
  const http = new HttpSink({ url: 'http://127.0.0.1:1/x' })
  const duckdb = new DuckDbSink({ path: ':memory:', name: 'duckdb', logger: silent })
  assert.equal(createQueryBackend([http, duckdb]).constructor.name, 'DuckDbQueryBackend')
  assert.equal(createQueryBackend([duckdb, http]).constructor.name, 'DuckDbQueryBackend')
  const none = createQueryBackend([http])
  await assert.rejects(none.totals({ event_name: 'x' }), (error: Error) => {
    assert.ok(isSpillwayError(error, 'SPW_ERR_QUERY_NO_STORE'))
    assert.equal((error as { statusCode?: number }).statusCode, 503)
    assert.match(
      error.message,
      /no configured sink can answer queries \(sinks: http\); add a store such as duckdb/,
    )
    return true
  })
})

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

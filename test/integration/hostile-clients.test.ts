/**
 * Hostile clients against the real server (real WAL, delivery thread and DuckDB, on a socket):
 * oversize bodies, gzip bombs, pathological JSON, huge headers and slow clients are each answered
 * with a clear 4xx (JSON `{"error": …}`, or node's 408/431 written by fastify's client-error
 * handler) or a closed connection — never a 5xx, never a crash — and the server keeps serving
 * well-behaved clients meanwhile.
 */
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { destroyAgent, postJson, send } from '../helpers/http.ts'
import { startTestServer } from '../helpers/in-process.ts'

const REQUEST_TIMEOUT_MS = 1500
const HEADERS_TIMEOUT_MS = 700
const MAX_BATCH_BYTES = 2 * 1024 * 1024

const now = Math.floor(Date.now() / 1000)
let seq = 0
const valid = (over: Record<string, unknown> = {}) => ({
  event_id: `hostile-${process.pid}-${seq++}`,
  event_name: 'hostile_test',
  channel: 'web',
  user_id: 'user_1',
  timestamp: now - 10,
  ...over,
})

let url = ''
let port = 0
const cleanups: (() => Promise<void>)[] = []
before(async () => {
  const server = await startTestServer(
    { after: (fn: () => Promise<void>) => cleanups.push(fn) },
    {
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
      maxBatchBytes: MAX_BATCH_BYTES,
    },
  )
  url = server.url
  port = Number(new URL(url).port)
})
after(async () => {
  destroyAgent()
  for (const fn of cleanups) await fn()
})

/** The server still answers a well-behaved client, quickly. */
async function assertServing(): Promise<void> {
  const started = performance.now()
  const answer = await postJson(`${url}/events`, valid())
  assert.equal(answer.status, 202, JSON.stringify(answer.body))
  assert.ok(performance.now() - started < 2000, 'a normal request is answered promptly')
}

function assertJsonError(answer: { status: number; body: unknown }, status: number, pattern?: RegExp) {
  assert.equal(answer.status, status, JSON.stringify(answer.body)?.slice(0, 300))
  const body = answer.body as { error?: unknown }
  assert.equal(typeof body, 'object', `the body is JSON: ${String(answer.body).slice(0, 200)}`)
  assert.equal(typeof body.error, 'string')
  if (pattern) assert.match(body.error as string, pattern)
}

interface RawAnswer {
  /** 0 when the server closed the connection without answering. */
  readonly status: number
  readonly headers: string
  readonly body: string
  readonly closedAfterMs: number
}

/**
 * Writes `head` on a raw socket, then `trickle` one chunk per `everyMs` until the server answers or
 * closes; resolves with what the server sent.
 */
function rawExchange(head: string | Buffer, trickle: string[] = [], everyMs = 0): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const socket: Socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let timer: NodeJS.Timeout | undefined
    socket.on('connect', () => {
      socket.write(head)
      let i = 0
      if (trickle.length > 0) {
        timer = setInterval(() => {
          if (i < trickle.length && !socket.destroyed) socket.write(trickle[i++])
        }, everyMs)
      }
    })
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // A reset after the answer (the server destroys the socket) is how node ends these.
      if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') reject(error)
    })
    socket.on('close', () => {
      clearInterval(timer)
      const text = Buffer.concat(chunks).toString('latin1')
      const split = text.indexOf('\r\n\r\n')
      const head = split === -1 ? text : text.slice(0, split)
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0)
      resolve({
        status,
        headers: head,
        body: split === -1 ? '' : text.slice(split + 4),
        closedAfterMs: performance.now() - started,
      })
    })
    socket.setTimeout(20_000, () => socket.destroy(new Error('the server neither answered nor closed')))
  })
}

/** The JSON body of a raw answer (node/fastify close with Content-Length, no chunking). */
function rawJson(answer: RawAnswer): { error?: unknown } {
  return JSON.parse(answer.body)
}

describe('oversize bodies', () => {
  test('a body over the limit by Content-Length is 413 before it is read', async () => {
    const head = `POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n`
    const answer = await rawExchange(head + '{"event_name":"')
    assert.equal(answer.status, 413, answer.headers)
    assert.match(String(rawJson(answer).error), /larger than 1048576 bytes/)
    await assertServing()
  })

  test('a chunked body that grows past the limit is 413', async () => {
    const answer = await send(`${url}/events/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', 'transfer-encoding': 'chunked' },
      body: Buffer.alloc(MAX_BATCH_BYTES + 4096, 0x20),
    })
    assertJsonError(answer, 413, /larger than/)
    await assertServing()
  })

  test('a gzip bomb is cut off at the inflated limit and answered 413', async () => {
    // 64 MiB of JSON-ish text compresses to ~64 KiB, well under the wire limit.
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20))
    assert.ok(bomb.length < 100 * 1024, `the bomb is small on the wire (${bomb.length} bytes)`)
    const rssBefore = process.memoryUsage().rss
    for (const path of ['/events', '/events/batch']) {
      const answer = await send(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: bomb,
      })
      assertJsonError(answer, 413, /after gzip inflation/)
    }
    const grownMiB = (process.memoryUsage().rss - rssBefore) / 1024 / 1024
    assert.ok(grownMiB < 48, `inflation stopped at the limit (rss grew ${grownMiB.toFixed(1)} MiB)`)
    await assertServing()
  })
})

describe('pathological JSON', () => {
  test('100k nested arrays in metadata are a 400 naming the depth, not a stack overflow', async () => {
    const depth = 100_000
    const body = `{"event_name":"deep","channel":"web","user_id":"u","timestamp":${now},"metadata":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}`
    const answer = await send(`${url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    })
    assertJsonError(
      answer,
      400,
      /nested more than 10 levels deep.*metadata must be nested at most 8 levels deep/,
    )
    await assertServing()
  })

  test('a batch body nested a million levels deep is a 400 naming the limit, refused before parsing', async () => {
    // Refused whole, like a body that is not JSON: nothing was parsed, so nothing is dead-lettered.
    const depth = 1_000_000
    const answer = await send(`${url}/events/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `[${'['.repeat(depth)}${']'.repeat(depth)}]`,
    })
    assertJsonError(answer, 400, /^body is nested more than 12 levels deep.*\(maxDepth\)/)
    await assertServing()
  })

  test('an object nested 150k levels deep as a single event is a 400', async () => {
    const depth = 150_000
    const answer = await send(`${url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
    })
    assertJsonError(answer, 400, /^body is nested more than 10 levels deep/)
    await assertServing()
  })

  test('very long strings are 400 (a field over its limit) or 413 (an event or body over its size)', async () => {
    assertJsonError(
      await postJson(`${url}/events`, valid({ event_name: 'e'.repeat(100_000) })),
      400,
      /event_name must be at most 1024 characters, got 100000/,
    )
    assertJsonError(
      await postJson(`${url}/events`, valid({ tags: ['t'.repeat(5000)] })),
      400,
      /tags\[0\] must be at most 1024 characters/,
    )
    assertJsonError(
      await postJson(`${url}/events`, valid({ metadata: { blob: 'x'.repeat(900_000) } })),
      413,
      /event is larger than 65536 bytes/,
    )
    assertJsonError(
      await postJson(`${url}/events`, valid({ metadata: { blob: 'x'.repeat(2_000_000) } })),
      413,
      /body is larger than 1048576 bytes/,
    )
    assertJsonError(
      await postJson(`${url}/events`, valid({ event_id: 'i'.repeat(129) })),
      400,
      /event_id must be at most 128 characters/,
    )
    await assertServing()
  })

  test('invalid UTF-8 and NUL bytes are a clear 400, not a crash', async () => {
    const answer = await send(`${url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from([0x7b, 0x00, 0xff, 0xfe, 0x22, 0x7d]),
    })
    assertJsonError(answer, 400, /^body is not valid UTF-8: byte 2 \(0xff\)/)
    const nul = await send(`${url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from([0x7b, 0x00, 0x7d]),
    })
    assertJsonError(nul, 400, /not valid JSON/)
    await assertServing()
  })
})

describe('headers', () => {
  test('a header larger than node’s 16 KiB limit is 431 with a JSON body, and the connection is closed', async () => {
    const head = `POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\nContent-Length: 2\r\n\r\n{}`
    const answer = await rawExchange(head)
    assert.equal(answer.status, 431, answer.headers)
    assert.match(answer.headers, /content-type: application\/json/i)
    assert.deepEqual(rawJson(answer), {
      error: 'Request Header Fields Too Large',
      message: 'Exceeded maximum allowed HTTP header size',
      statusCode: 431,
    })
    await assertServing()
  })

  test('thousands of small headers (over 16 KiB in all) are 431 too', async () => {
    const many = Array.from({ length: 3000 }, (_, i) => `X-H${i}: v\r\n`).join('')
    const answer = await rawExchange(`GET /health HTTP/1.1\r\nHost: x\r\n${many}\r\n`)
    assert.equal(answer.status, 431, answer.headers)
    await assertServing()
  })

  test('five hundred small headers under the size limit are served normally', async () => {
    // Measured on node 24: 800 headers like `x-h1: v` pass, 1000 already count as over 16 KiB.
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    for (let i = 0; i < 500; i++) headers[`x-h${i}`] = 'v'
    const answer = await send(`${url}/events`, { method: 'POST', headers, body: JSON.stringify(valid()) })
    assert.equal(answer.status, 202, JSON.stringify(answer.body))
  })

  test('a malformed request line is a 400 with a JSON body', async () => {
    const answer = await rawExchange('BLAH\x01 / HTTP/9\r\n\r\n')
    assert.equal(answer.status, 400, answer.headers)
    assert.equal(typeof rawJson(answer).error, 'string')
  })
})

describe('slow clients', () => {
  test('a body trickled slower than the request timeout is answered 408 and closed; others are served meanwhile', async (t) => {
    const head =
      'POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{'
    const slow = Array.from({ length: 10 }, () =>
      rawExchange(
        head,
        Array.from({ length: 200 }, () => ' '),
        200,
      ),
    )
    // While ten slow clients hold their connections, normal requests keep getting answered.
    for (let i = 0; i < 20; i++) await assertServing()
    const answers = await Promise.all(slow)
    t.diagnostic(
      `slow bodies: ${answers.map((a) => `${a.status || 'closed'} after ${a.closedAfterMs.toFixed(0)} ms`).join(', ')}`,
    )
    for (const answer of answers) {
      assert.ok(answer.status === 408 || answer.status === 0, `408 or closed, got ${answer.headers}`)
      if (answer.status === 408) assert.match(answer.body, /"statusCode":408/)
      assert.ok(
        answer.closedAfterMs >= REQUEST_TIMEOUT_MS - 100,
        `not before the timeout (${answer.closedAfterMs})`,
      )
      assert.ok(
        answer.closedAfterMs < REQUEST_TIMEOUT_MS + 3000,
        `soon after the timeout (${answer.closedAfterMs.toFixed(0)} ms)`,
      )
    }
    await assertServing()
  })

  test('headers trickled slower than the headers timeout are answered 408 (slowloris)', async (t) => {
    const answer = await rawExchange(
      'POST /events HTTP/1.1\r\nHost: x\r\n',
      Array.from({ length: 100 }, (_, i) => `X-S${i}: v\r\n`),
      150,
    )
    t.diagnostic(`slow headers: ${answer.status || 'closed'} after ${answer.closedAfterMs.toFixed(0)} ms`)
    assert.ok(answer.status === 408 || answer.status === 0, `408 or closed, got ${answer.headers}`)
    assert.ok(
      answer.closedAfterMs < HEADERS_TIMEOUT_MS + 3000,
      `closed soon after the headers timeout (${answer.closedAfterMs.toFixed(0)} ms)`,
    )
    await assertServing()
  })

  test('a client that connects and sends nothing is closed', async () => {
    const answer = await rawExchange('')
    assert.ok(answer.status === 408 || answer.status === 0, answer.headers)
    assert.ok(
      answer.closedAfterMs < HEADERS_TIMEOUT_MS + 3000,
      `closed (${answer.closedAfterMs.toFixed(0)} ms)`,
    )
  })
})

test('the server is alive and healthy after all of it', async () => {
  const health = await send(`${url}/health`)
  assert.equal(health.status, 200)
  await assertServing()
})

/**
 * Input the real `spillway serve` must refuse at the door rather than store altered or choke on
 * (issue 15, items 7, 17 and 18): bodies nested deeper than any event can be, lone UTF-16
 * surrogates, metadata integers JSON.parse has rounded, invalid UTF-8; and a UTF-8 BOM read the
 * same way on every route. A separate process, so its peak RSS (VmHWM) is its own.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { after, before, describe, test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { destroyAgent, postJson, send } from '../helpers/http.ts'
import { type ServerProcess, startServerProcess } from '../helpers/server-process.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'

const MiB = 1024 * 1024
/** Peak RSS allowed after every hostile body; the unguarded server reached 1.3 GB on one. */
const PEAK_RSS_BOUND = 640 * MiB

const now = Math.floor(Date.now() / 1000)
let seq = 0
const valid = (over: Record<string, unknown> = {}) => ({
  event_id: `fidelity-${process.pid}-${seq++}`,
  event_name: 'fidelity_test',
  channel: 'web',
  user_id: 'user_1',
  timestamp: now - 10,
  ...over,
})

let server: ServerProcess
let url = ''
let dataDir = ''
before(async () => {
  dataDir = await makeTempDir('spillway-fidelity-')
  server = await startServerProcess(dataDir)
  url = server.url
})
after(async () => {
  destroyAgent()
  server.kill('SIGTERM')
  await server.exited()
  await removeTempDir(dataDir)
})

async function peakRss(): Promise<number> {
  const status = await readFile(`/proc/${server.proc.pid}/status`, 'utf8')
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]) * 1024
}

function post(path: string, body: string | Buffer, headers: Record<string, string> = {}) {
  return send(`${url}${path}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...headers },
  })
}

function assertError(answer: { status: number; body: unknown }, status: number, pattern: RegExp): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body).slice(0, 300))
  assert.match((answer.body as { error: string }).error, pattern)
}

async function assertServing(): Promise<void> {
  const answer = await postJson(`${url}/events`, valid())
  assert.equal(answer.status, 202, JSON.stringify(answer.body))
}

describe('nesting is refused before the value is built', () => {
  const brackets = (bytes: number) => '['.repeat(bytes / 2) + ']'.repeat(bytes / 2)
  const deepLimit =
    /nested more than 12 levels deep.*metadata must be nested at most 8 levels deep \(maxDepth\)/

  test('a 16 MB body of [[[[…]]]] to /events/batch is a 400 naming the limit, and RSS stays flat', async () => {
    const answer = await post('/events/batch', brackets(16_000_000))
    assertError(answer, 400, deepLimit)
    await assertServing()
    const peak = await peakRss()
    assert.ok(peak < PEAK_RSS_BOUND, `peak RSS ${Math.round(peak / MiB)} MiB`)
  })

  test('the same as gzip, as {"events": […]}, as NDJSON, and to /events', async () => {
    assertError(
      await post('/events/batch', gzipSync(brackets(16_000_000)), { 'content-encoding': 'gzip' }),
      400,
      deepLimit,
    )
    assertError(await post('/events/batch', `{"events":${brackets(8_000_000)}}`), 400, deepLimit)
    const line = JSON.stringify(valid())
    assertError(
      await post('/events/batch', `${line}\n${brackets(16_000_000)}\n${line}`, {
        'content-type': 'application/x-ndjson',
      }),
      400,
      /^line 2 is nested more than 10 levels deep/,
    )
    const event = JSON.stringify(valid()).replace(/}$/, `,"metadata":{"a":${brackets(1_000_000)}}}`)
    assertError(await post('/events', event), 400, /^body is nested more than 10 levels deep/)
    await assertServing()
    const peak = await peakRss()
    assert.ok(peak < PEAK_RSS_BOUND, `peak RSS ${Math.round(peak / MiB)} MiB`)
  })

  test('metadata as deep as maxDepth allows is still accepted on both routes', async () => {
    let metadata: unknown = 1
    for (let i = 0; i < 8; i++) metadata = [metadata]
    assert.equal((await postJson(`${url}/events`, valid({ metadata: { a: metadata } }))).status, 202)
    const batch = await postJson(`${url}/events/batch`, { events: [valid({ metadata: { a: metadata } })] })
    assert.equal(batch.status, 202, JSON.stringify(batch.body))
    assert.equal(batch.body.accepted, 1)
  })
})

describe('strings and numbers that would be stored altered', () => {
  test('a lone surrogate is a 400 naming the field on /events, and a rejection by index in a batch', async () => {
    const body = JSON.stringify(valid()).replace(/}$/, ',"metadata":{"note":"x\\ud800y"}}')
    assertError(await post('/events', body), 400, /^metadata\.note contains a lone UTF-16 surrogate/)
    const named = JSON.stringify(valid()).replace('"fidelity_test"', '"name\\udc00"')
    assertError(await post('/events', named), 400, /^event_name contains a lone UTF-16 surrogate/)
    const batch = await post('/events/batch', `[${JSON.stringify(valid())},${body}]`)
    assert.equal(batch.status, 202, JSON.stringify(batch.body))
    assert.deepEqual(batch.body.rejected, [
      { index: 1, error: 'metadata.note contains a lone UTF-16 surrogate; send well-formed Unicode' },
    ])
  })

  test('an emoji (a surrogate pair) is accepted', async () => {
    const answer = await postJson(
      `${url}/events`,
      valid({ event_name: 'smile 😀', metadata: { '😀': '😀' } }),
    )
    assert.equal(answer.status, 202, JSON.stringify(answer.body))
  })

  test('a metadata integer beyond 2^53 is a 400 naming the field, not stored rounded', async () => {
    const body = JSON.stringify(valid()).replace(/}$/, ',"metadata":{"order_id":12345678901234567890}}')
    assertError(
      await post('/events', body),
      400,
      /^metadata\.order_id is an integer beyond ±9007199254740991 .*send it as a string/,
    )
    const safe = JSON.stringify(valid()).replace(/}$/, ',"metadata":{"order_id":9007199254740991}}')
    assert.equal((await post('/events', safe)).status, 202)
  })

  test('invalid UTF-8 is a 400 naming the byte on every route, never U+FFFD', async () => {
    const text = JSON.stringify(valid({ user_id: 'u-XX' }))
    const at = text.indexOf('XX')
    const bytes = Buffer.from(text)
    bytes[at] = 0xc3
    bytes[at + 1] = 0x28
    assertError(
      await post('/events', bytes),
      400,
      new RegExp(`^body is not valid UTF-8: byte ${at} \\(0xc3\\)`),
    )
    assertError(
      await post('/events/batch', Buffer.concat([Buffer.from('['), bytes, Buffer.from(']')])),
      400,
      /not valid UTF-8: byte/,
    )
    assertError(
      await post('/events/batch', gzipSync(bytes), {
        'content-type': 'application/x-ndjson',
        'content-encoding': 'gzip',
      }),
      400,
      /not valid UTF-8: byte \d+ \(0xc3\), line 1/,
    )
  })

  test('a UTF-8 BOM is dropped on /events as on the batch routes', async () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf])
    const one = await post('/events', Buffer.concat([bom, Buffer.from(JSON.stringify(valid()))]))
    assert.equal(one.status, 202, JSON.stringify(one.body))
    const batch = await post('/events/batch', Buffer.concat([bom, Buffer.from(JSON.stringify([valid()]))]))
    assert.equal(batch.status, 202, JSON.stringify(batch.body))
    const ndjson = await post('/events/batch', Buffer.concat([bom, Buffer.from(JSON.stringify(valid()))]), {
      'content-type': 'application/x-ndjson',
    })
    assert.equal(ndjson.status, 202, JSON.stringify(ndjson.body))
    assert.equal(ndjson.body.accepted, 1)
  })
})

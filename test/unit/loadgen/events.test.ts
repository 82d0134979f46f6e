import assert from 'node:assert/strict'
import { test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { validateEvent } from '../../../src/intake/validate.ts'
import { RequestFactory, targetUrl } from '../../../src/loadgen/events.ts'
import { DEFAULT_PAYLOAD } from '../../../src/loadgen/plan.ts'
import { LIMITS } from '../intake/fixtures.ts'

/** Splits a serialised request into its head lines and body bytes. */
function split(bytes: string | Buffer): { lines: string[]; body: Buffer } {
  const buffer = typeof bytes === 'string' ? Buffer.from(bytes) : bytes
  const end = buffer.indexOf('\r\n\r\n')
  return { lines: buffer.subarray(0, end).toString('latin1').split('\r\n'), body: buffer.subarray(end + 4) }
}

test('a single-event request is a whole HTTP/1.1 POST whose event Spillway accepts', () => {
  const factory = new RequestFactory(
    targetUrl('http://127.0.0.1:8080', 0),
    DEFAULT_PAYLOAD,
    { 'X-API-Key': 'k' },
    7,
  )
  for (let i = 0; i < 200; i++) {
    const request = factory.next()
    const { lines, body } = split(request.bytes)
    assert.equal(lines[0], 'POST /events HTTP/1.1')
    assert.ok(lines.includes('Host: 127.0.0.1:8080'))
    assert.ok(lines.includes('Content-Type: application/json'))
    assert.ok(lines.includes('X-API-Key: k'))
    assert.ok(lines.includes(`Content-Length: ${body.length}`))
    const event = JSON.parse(body.toString())
    const verdict = validateEvent(event, { receivedAt: Date.now() }, LIMITS)
    assert.equal(verdict.ok, true, JSON.stringify(verdict))
    assert.match(event.user_id, /^user_\d+$/)
    assert.ok(Number(event.user_id.slice(5)) < 100_000)
    assert.ok(DEFAULT_PAYLOAD.eventNames.includes(event.event_name))
    assert.ok(DEFAULT_PAYLOAD.channels.includes(event.channel))
    assert.match(event.campaign_id, /^cmp_\d+$/)
    assert.equal(request.events, 1)
    assert.equal(request.duplicates, 0)
  }
})

test('batches are NDJSON to /events/batch, gzip when asked, and every id is new without duplicates', () => {
  const plan = { ...DEFAULT_PAYLOAD, batch: 50, gzip: true, eventNames: ['é_vent'] }
  const factory = new RequestFactory(targetUrl('http://h:1/', 50), plan, {}, 1)
  const ids = new Set<string>()
  for (let i = 0; i < 20; i++) {
    const request = factory.next()
    const { lines, body } = split(request.bytes)
    assert.equal(lines[0], 'POST /events/batch HTTP/1.1')
    assert.ok(lines.includes('Content-Type: application/x-ndjson'))
    assert.ok(lines.includes('Content-Encoding: gzip'))
    assert.ok(lines.includes(`Content-Length: ${body.length}`))
    const events = gunzipSync(body)
      .toString()
      .split('\n')
      .map((line) => JSON.parse(line))
    assert.equal(events.length, 50)
    assert.equal(request.events, 50)
    for (const e of events) {
      assert.equal(e.event_name, 'é_vent')
      ids.add(e.event_id)
    }
  }
  assert.equal(ids.size, 1000)
})

test('the duplicate ratio re-sends that share of recent events, byte for byte', () => {
  const factory = new RequestFactory(
    targetUrl('http://h:1', 0),
    { ...DEFAULT_PAYLOAD, duplicateRatio: 0.2 },
    {},
    3,
  )
  const seen = new Set<string>()
  let duplicates = 0
  let repeated = 0
  const n = 20_000
  for (let i = 0; i < n; i++) {
    const request = factory.next()
    const body = split(request.bytes).body.toString()
    duplicates += request.duplicates
    if (seen.has(body)) repeated++
    seen.add(body)
  }
  assert.equal(repeated, duplicates)
  assert.ok(Math.abs(duplicates / n - 0.2) < 0.015, `${duplicates} of ${n}`)
})

test('the same seed draws the same names, users and duplicates', () => {
  const draw = (seed: number) => {
    const factory = new RequestFactory(
      targetUrl('http://h:1', 0),
      { ...DEFAULT_PAYLOAD, duplicateRatio: 0.1 },
      {},
      seed,
    )
    return Array.from({ length: 100 }, () => {
      const e = JSON.parse(split(factory.next().bytes).body.toString())
      return `${e.event_name}/${e.user_id}/${e.channel}/${e.campaign_id}`
    })
  }
  assert.deepEqual(draw(42), draw(42))
  assert.notDeepEqual(draw(42), draw(43))
})

test('a URL that is not plain http, or a header with a line break, is refused', () => {
  assert.throws(() => targetUrl('https://x', 0), /must be http:\/\//)
  assert.throws(() => targetUrl('nope', 0), /--url "nope" is not a URL/)
  assert.equal(targetUrl('http://x:9/custom/path?x=1', 0).pathname, '/custom/path')
  assert.throws(
    () => new RequestFactory(targetUrl('http://h:1', 0), DEFAULT_PAYLOAD, { 'X-A': 'a\r\nX-B: b' }),
    /line break/,
  )
})

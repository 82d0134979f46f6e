/**
 * The HTTP API (docs/ARCHITECTURE.md "The API") end to end: real server, real WAL, real delivery
 * thread, real DuckDB.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { destroyAgent, postJson, send } from '../helpers/http.ts'
import { startTestServer } from '../helpers/in-process.ts'

const now = Math.floor(Date.now() / 1000)
const valid = (over: Record<string, unknown> = {}) => ({
  event_name: 'product_view',
  channel: 'web',
  campaign_id: 'cmp_987',
  user_id: 'user_123',
  timestamp: now - 60,
  tags: ['electronics', 'homepage'],
  metadata: { product_id: 'prod-789', price: 129.99 },
  ...over,
})

const nested = (depth: number): Record<string, unknown> =>
  depth === 0 ? { leaf: 1 } : { d: nested(depth - 1) }

let url = ''
const cleanups: (() => Promise<void>)[] = []
before(async () => {
  const server = await startTestServer(
    { after: (fn: () => Promise<void>) => cleanups.push(fn) },
    { maxBodyBytes: 4096, maxBatchEvents: 50 },
  )
  url = server.url
})
after(async () => {
  destroyAgent()
  for (const fn of cleanups) await fn()
})

describe('POST /events', () => {
  test('a valid event is answered 202 with its event_id', async () => {
    const answer = await postJson(`${url}/events`, valid({ event_id: 'evt-1' }))
    assert.equal(answer.status, 202)
    assert.deepEqual(answer.body, { status: 'accepted', event_id: 'evt-1' })
  })

  test('without event_id the id is a hash of the event, the same for an exact retry', async () => {
    const a = await postJson(`${url}/events`, valid({ user_id: 'hash-user', sent_at: now }))
    const b = await postJson(`${url}/events`, valid({ user_id: 'hash-user', sent_at: now + 1 }))
    assert.equal(a.status, 202)
    assert.equal(a.body.event_id, b.body.event_id)
    assert.equal(b.status, 202)
    assert.equal(b.body.duplicate, true, 'the retry is answered as a duplicate')
    const c = await postJson(`${url}/events`, valid({ user_id: 'other-user' }))
    assert.notEqual(c.body.event_id, a.body.event_id)
  })

  test('a repeated event_id is answered 202 with duplicate: true; reused for other content, 409', async () => {
    const first = await postJson(`${url}/events`, valid({ event_id: 'dup-1' }))
    assert.deepEqual(first.body, { status: 'accepted', event_id: 'dup-1' })
    const again = await postJson(`${url}/events`, valid({ event_id: 'dup-1' }))
    assert.equal(again.status, 202)
    assert.deepEqual(again.body, { status: 'accepted', event_id: 'dup-1', duplicate: true })
    const other = await postJson(`${url}/events`, valid({ event_id: 'dup-1', user_id: 'someone else' }))
    assert.equal(other.status, 409)
    assert.match(other.body.error, /event_id "dup-1" was already used for a different event/)
  })

  test('the Idempotency-Key header is the key when the body has no event_id', async () => {
    const answer = await postJson(`${url}/events`, valid(), { 'idempotency-key': 'idem-42' })
    assert.equal(answer.status, 202)
    assert.equal(answer.body.event_id, 'idem-42')
  })

  test('?wait=false is accepted, and a bad wait value is a 400 naming it', async () => {
    assert.equal((await postJson(`${url}/events?wait=false`, valid())).status, 202)
    const bad = await postJson(`${url}/events?wait=maybe`, valid())
    assert.equal(bad.status, 400)
    assert.match(bad.body.error, /wait/)
  })

  const invalid: [string, Record<string, unknown> | unknown, RegExp][] = [
    ['event_name missing', valid({ event_name: undefined }), /event_name/],
    ['event_name empty', valid({ event_name: '' }), /event_name/],
    ['event_name not a string', valid({ event_name: 5 }), /event_name/],
    ['user_id missing', valid({ user_id: undefined }), /user_id/],
    ['user_id empty', valid({ user_id: '   ' }), /user_id/],
    ['timestamp missing', valid({ timestamp: undefined }), /timestamp/],
    ['timestamp a string', valid({ timestamp: '1723475612' }), /timestamp/],
    ['timestamp a float', valid({ timestamp: 1723475612.5 }), /timestamp/],
    ['timestamp zero', valid({ timestamp: 0 }), /timestamp/],
    ['timestamp negative', valid({ timestamp: -5 }), /timestamp/],
    ['timestamp in the future', valid({ timestamp: now + 86_400 }), /timestamp/],
    ['timestamp in milliseconds', valid({ timestamp: Date.now() }), /timestamp/],
    ['channel missing', valid({ channel: undefined }), /channel/],
    ['channel unknown', valid({ channel: 'fax' }), /channel/],
    ['campaign_id not a string', valid({ campaign_id: 7 }), /campaign_id/],
    ['tags not an array', valid({ tags: 'a,b' }), /tags/],
    ['tags with a number', valid({ tags: ['a', 1] }), /tags/],
    ['metadata an array', valid({ metadata: [1, 2] }), /metadata/],
    ['metadata too deep', valid({ metadata: nested(12) }), /metadata/],
    ['event_id too long', valid({ event_id: 'x'.repeat(129) }), /event_id/],
    ['event_id not a string', valid({ event_id: 12 }), /event_id/],
    ['sent_at not an integer', valid({ sent_at: 'yesterday' }), /sent_at/],
    ['unknown field', valid({ colour: 'red' }), /colour/],
    ['body an array', [valid()], /object/],
    ['body null', null, /object/],
  ]
  for (const [name, body, field] of invalid) {
    test(`400 when ${name}, naming the field`, async () => {
      const answer = await postJson(`${url}/events`, body)
      assert.equal(answer.status, 400, JSON.stringify(answer.body))
      assert.equal(typeof answer.body.error, 'string')
      assert.match(answer.body.error, field)
    })
  }

  test('400 on malformed JSON, saying it is not valid JSON', async () => {
    const answer = await send(`${url}/events`, {
      method: 'POST',
      body: '{"event_name": ',
      headers: { 'content-type': 'application/json' },
    })
    assert.equal(answer.status, 400)
    assert.match(answer.body.error, /not valid JSON/)
  })

  test('400 on an empty body', async () => {
    const answer = await send(`${url}/events`, {
      method: 'POST',
      body: '',
      headers: { 'content-type': 'application/json' },
    })
    assert.equal(answer.status, 400)
    assert.match(answer.body.error, /empty/)
  })

  test('413 when the body is larger than the limit', async () => {
    const answer = await postJson(`${url}/events`, valid({ metadata: { blob: 'x'.repeat(5000) } }))
    assert.equal(answer.status, 413)
    assert.match(answer.body.error, /larger than 4096 bytes/)
  })

  test('415 on a content type that is not JSON', async () => {
    const answer = await send(`${url}/events`, {
      method: 'POST',
      body: 'hello',
      headers: { 'content-type': 'text/plain' },
    })
    assert.equal(answer.status, 415)
    assert.match(answer.body.error, /text\/plain/)
  })

  test('gzip bodies are inflated and accepted', async () => {
    const answer = await send(`${url}/events`, {
      method: 'POST',
      body: gzipSync(JSON.stringify(valid({ event_id: 'gz-1' }))),
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    })
    assert.equal(answer.status, 202)
    assert.equal(answer.body.event_id, 'gz-1')
  })

  test('a gzip bomb is refused with 413 by its inflated size', async () => {
    const bomb = gzipSync(Buffer.alloc(3 * 1024 * 1024, 0x20))
    assert.ok(bomb.length < 4096, 'the compressed bomb fits under the raw limit')
    const answer = await send(`${url}/events`, {
      method: 'POST',
      body: bomb,
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    })
    assert.equal(answer.status, 413)
    assert.match(answer.body.error, /after gzip inflation/)
  })

  test('400 on a body that claims gzip but is not', async () => {
    const answer = await send(`${url}/events`, {
      method: 'POST',
      body: 'not gzip at all',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    })
    assert.equal(answer.status, 400)
    assert.match(answer.body.error, /gzip/)
  })

  test('415 on an unsupported Content-Encoding', async () => {
    const answer = await send(`${url}/events`, {
      method: 'POST',
      body: JSON.stringify(valid()),
      headers: { 'content-type': 'application/json', 'content-encoding': 'br' },
    })
    assert.equal(answer.status, 415)
    assert.match(answer.body.error, /br/)
  })
})

describe('POST /events/batch', () => {
  test('a JSON array is accepted', async () => {
    const answer = await postJson(`${url}/events/batch`, [
      valid({ event_id: 'arr-1' }),
      valid({ user_id: 'u2' }),
    ])
    assert.equal(answer.status, 202)
    assert.deepEqual(answer.body, { accepted: 2, duplicates: 0, rejected: [] })
  })

  test('repeats are answered as duplicates: within the batch and of events accepted before', async () => {
    const first = await postJson(`${url}/events/batch`, [valid({ event_id: 'rep-1' })])
    assert.deepEqual(first.body, { accepted: 1, duplicates: 0, rejected: [] })
    const answer = await postJson(`${url}/events/batch`, [
      valid({ event_id: 'rep-1' }),
      valid({ event_id: 'rep-2' }),
      valid({ event_id: 'rep-2' }),
      valid({ event_id: 'rep-3', channel: 'fax' }),
    ])
    assert.equal(answer.status, 202)
    assert.equal(answer.body.accepted, 1)
    assert.equal(answer.body.duplicates, 2)
    assert.equal(answer.body.rejected.length, 1)
    const again = await postJson(`${url}/events/batch`, [
      valid({ event_id: 'rep-1' }),
      valid({ event_id: 'rep-2' }),
    ])
    assert.equal(again.status, 202, 'all duplicates is still a 202')
    assert.deepEqual(again.body, { accepted: 0, duplicates: 2, rejected: [] })
  })

  test('{"events": [...]} is accepted, and /events/bulk is an alias', async () => {
    const answer = await postJson(`${url}/events/bulk`, { events: [valid({ event_id: 'bulk-1' })] })
    assert.equal(answer.status, 202)
    assert.equal(answer.body.accepted, 1)
  })

  test('NDJSON with gzip is accepted; bad lines are rejected by index', async () => {
    const body = [
      JSON.stringify(valid({ event_id: 'nd-1' })),
      '{nope',
      '',
      JSON.stringify(valid({ channel: 'fax' })),
    ].join('\n')
    const answer = await send(`${url}/events/batch`, {
      method: 'POST',
      body: gzipSync(body),
      headers: { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' },
    })
    assert.equal(answer.status, 202, JSON.stringify(answer.body))
    assert.equal(answer.body.accepted, 1)
    assert.deepEqual(
      answer.body.rejected.map((r: { index: number }) => r.index),
      [1, 2],
    )
    assert.match(answer.body.rejected[1].error, /channel/)
  })

  test('valid events are accepted and invalid ones reported by index', async () => {
    const answer = await postJson(`${url}/events/batch`, [
      valid({ event_id: 'mix-1' }),
      valid({ timestamp: 'x' }),
      valid({ event_id: 'mix-2' }),
    ])
    assert.equal(answer.status, 202)
    assert.equal(answer.body.accepted, 2)
    assert.deepEqual(answer.body.rejected.length, 1)
    assert.equal(answer.body.rejected[0].index, 1)
    assert.match(answer.body.rejected[0].error, /timestamp/)
  })

  test('all invalid is a 400 with the same body', async () => {
    const answer = await postJson(`${url}/events/batch`, [valid({ channel: 'x' }), valid({ user_id: '' })])
    assert.equal(answer.status, 400)
    assert.equal(answer.body.accepted, 0)
    assert.equal(answer.body.rejected.length, 2)
  })

  test('a gzip bomb under the raw batch limit is cut off at the inflated limit with 413', async () => {
    const bomb = gzipSync(Buffer.alloc(256 * 1024 * 1024, 0x20), { level: 9 })
    assert.ok(bomb.length < 1024 * 1024, `the compressed bomb is small (${bomb.length} bytes)`)
    const answer = await send(`${url}/events/batch`, {
      method: 'POST',
      body: bomb,
      headers: { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' },
    })
    assert.equal(answer.status, 413)
    assert.match(answer.body.error, /larger than 16777216 bytes after gzip inflation/)
  })

  test('an empty batch is a 400', async () => {
    const answer = await postJson(`${url}/events/batch`, [])
    assert.equal(answer.status, 400)
  })

  test('more events than the limit is a 413', async () => {
    const answer = await postJson(
      `${url}/events/batch`,
      Array.from({ length: 51 }, () => valid()),
    )
    assert.equal(answer.status, 413)
    assert.match(answer.body.error, /50/)
  })

  test('an object without events is a 400 naming the shape', async () => {
    const answer = await postJson(`${url}/events/batch`, { items: [] })
    assert.equal(answer.status, 400)
    assert.match(answer.body.error, /events/)
  })
})

describe('GET /metrics', () => {
  const hour = 3600
  const base = Math.floor((now - 3 * 86_400) / 86_400) * 86_400 // midnight UTC, three days ago
  const name = `metrics_${process.pid}`
  before(async () => {
    const events = [
      { channel: 'web', user_id: 'a', timestamp: base + 10 },
      { channel: 'web', user_id: 'a', timestamp: base + 20 },
      { channel: 'web', user_id: 'b', timestamp: base + hour + 5 },
      { channel: 'mobile', user_id: 'c', timestamp: base + hour + 6 },
      { channel: 'api', user_id: 'a', timestamp: base + 86_400 + 1 },
    ].map((e, i) => ({ event_name: name, event_id: `${name}-${i}`, ...e }))
    const answer = await postJson(`${url}/events/batch`, events)
    assert.equal(answer.status, 202)
    // Delivery is asynchronous: wait until the store has them all.
    for (let i = 0; i < 200; i++) {
      const m = await send(`${url}/metrics?event_name=${name}`)
      if (m.body.total_events === 5) return
      await new Promise((r) => setTimeout(r, 50))
    }
    assert.fail('events did not reach the store')
  })

  test('ungrouped totals count events and exact unique users', async () => {
    const answer = await send(`${url}/metrics?event_name=${name}`)
    assert.equal(answer.status, 200)
    assert.deepEqual(answer.body, { event_name: name, total_events: 5, unique_users: 3 })
  })

  test('from and to are inclusive and echoed', async () => {
    const answer = await send(`${url}/metrics?event_name=${name}&from=${base + 20}&to=${base + hour + 5}`)
    assert.deepEqual(answer.body, {
      event_name: name,
      from: base + 20,
      to: base + hour + 5,
      total_events: 2,
      unique_users: 2,
    })
  })

  test('group_by=channel', async () => {
    const answer = await send(`${url}/metrics?event_name=${name}&group_by=channel`)
    assert.equal(answer.body.grouped_by, 'channel')
    const byGroup = Object.fromEntries(answer.body.data.map((d: { group: string }) => [d.group, d]))
    assert.deepEqual(byGroup['web'], { group: 'web', total_events: 3, unique_users: 2 })
    assert.deepEqual(byGroup['mobile'], { group: 'mobile', total_events: 1, unique_users: 1 })
    assert.deepEqual(byGroup['api'], { group: 'api', total_events: 1, unique_users: 1 })
    assert.equal(answer.body.data.length, 3)
  })

  test('group_by=hour gives ISO-8601 UTC hours', async () => {
    const answer = await send(
      `${url}/metrics?event_name=${name}&group_by=hour&from=${base}&to=${base + 2 * hour}`,
    )
    const iso = (s: number) => new Date(s * 1000).toISOString().replace('.000Z', 'Z')
    assert.deepEqual(answer.body, {
      event_name: name,
      from: base,
      to: base + 2 * hour,
      grouped_by: 'hour',
      data: [
        { group: iso(base), total_events: 2, unique_users: 1 },
        { group: iso(base + hour), total_events: 2, unique_users: 2 },
      ],
    })
  })

  test('group_by=day gives ISO-8601 UTC days', async () => {
    const answer = await send(`${url}/metrics?event_name=${name}&group_by=day`)
    const iso = (s: number) => new Date(s * 1000).toISOString().replace('.000Z', 'Z')
    assert.deepEqual(answer.body.data, [
      { group: iso(base), total_events: 4, unique_users: 3 },
      { group: iso(base + 86_400), total_events: 1, unique_users: 1 },
    ])
  })

  test('an unknown event name is zero', async () => {
    const answer = await send(`${url}/metrics?event_name=never_sent`)
    assert.deepEqual(answer.body, { event_name: 'never_sent', total_events: 0, unique_users: 0 })
  })

  const bad: [string, RegExp][] = [
    ['', /event_name/],
    ['event_name=', /event_name/],
    ['event_name=x&from=yesterday', /from/],
    ['event_name=x&to=-1', /to/],
    ['event_name=x&from=10&to=5', /from/],
    ['event_name=x&group_by=week', /group_by/],
    ['event_name=x&groupby=day', /groupby/],
  ]
  for (const [qs, field] of bad) {
    test(`400 for ?${qs}, naming the parameter`, async () => {
      const answer = await send(`${url}/metrics?${qs}`)
      assert.equal(answer.status, 400)
      assert.match(answer.body.error, field)
    })
  }
})

describe('service routes', () => {
  test('/health', async () => {
    assert.deepEqual((await send(`${url}/health`)).body, { status: 'healthy' })
  })
  test('/ready once recovery finished and the sink answers', async () => {
    const answer = await send(`${url}/ready`)
    assert.equal(answer.status, 200)
    assert.equal(answer.body.status, 'ready')
  })
  test('/openapi.json describes every route', async () => {
    const answer = await send(`${url}/openapi.json`)
    assert.equal(answer.status, 200)
    for (const path of ['/events', '/events/batch', '/metrics', '/health', '/ready'])
      assert.ok(answer.body.paths[path], path)
  })
  test('/docs serves the API reference page', async () => {
    const answer = await send(`${url}/docs/`)
    assert.equal(answer.status, 200)
    assert.match(String(answer.body), /swagger/i)
  })
  test('an unknown route is a JSON 404', async () => {
    const answer = await send(`${url}/nope`)
    assert.equal(answer.status, 404)
    assert.match(answer.body.error, /no route GET \/nope/)
  })
})

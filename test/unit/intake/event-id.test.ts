import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, test } from 'node:test'
import { batchIdempotencyKey, canonicalJson } from '../../../src/intake/event-id.ts'
import type { IntakeContext } from '../../../src/intake/types.ts'
import { validateEvent } from '../../../src/intake/validate.ts'
import { CTX, LIMITS, NOW_SECONDS, RECEIVED_AT, validBody, without } from './fixtures.ts'

const UUID_V8 = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

function idOf(body: unknown, ctx: IntakeContext = CTX, index?: number): string {
  const result = validateEvent(body, ctx, LIMITS, index)
  if (!result.ok) assert.fail(result.error)
  return result.event.event_id
}

/** The example event (docs/ARCHITECTURE.md "The event") without an event_id: its id is a content hash. */
const anonymous = () => without(validBody(), 'event_id')

describe('dedup key precedence', () => {
  test("the client's event_id wins over the Idempotency-Key", () => {
    assert.equal(
      idOf(validBody({ event_id: 'evt-1' }), { receivedAt: RECEIVED_AT, idempotencyKey: 'key-1' }),
      'evt-1',
    )
  })

  test('without event_id the Idempotency-Key is the dedup key', () => {
    assert.equal(idOf(anonymous(), { receivedAt: RECEIVED_AT, idempotencyKey: 'key-1' }), 'key-1')
  })

  test('event i of a batch gets <key>:<i>', () => {
    const ctx = { receivedAt: RECEIVED_AT, idempotencyKey: 'key-1' }
    assert.equal(idOf(anonymous(), ctx, 0), 'key-1:0')
    assert.equal(idOf(anonymous(), ctx, 7), 'key-1:7')
    assert.equal(batchIdempotencyKey('key-1', 7), 'key-1:7')
  })

  test('an empty Idempotency-Key is ignored', () => {
    assert.match(idOf(anonymous(), { receivedAt: RECEIVED_AT, idempotencyKey: '' }), UUID_V8)
  })

  test('without event_id or key the id is a UUID-shaped content hash', () => {
    assert.match(idOf(anonymous()), UUID_V8)
  })
})

describe('content hash', () => {
  test('the content id is sha256 of the documented canonical JSON', () => {
    const canonical =
      '{"campaign_id":"cmp_987","channel":"web","event_name":"product_view",' +
      '"metadata":{"price":129.99,"product_id":"prod-789"},"tags":["electronics","homepage"],' +
      `"timestamp":${NOW_SECONDS - 60},"user_id":"user_123"}`
    const hex = createHash('sha256').update(canonical).digest('hex')
    const variant = '89ab'[Number.parseInt(hex[16], 16) & 3]
    const expected = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`
    assert.equal(idOf(anonymous()), expected)
  })

  test('an exact retry gets the same id, even sent later with a new sent_at', () => {
    const first = idOf({ ...anonymous(), sent_at: NOW_SECONDS - 5 })
    const retry = idOf({ ...anonymous(), sent_at: NOW_SECONDS + 120 }, { receivedAt: RECEIVED_AT + 125_000 })
    const plain = idOf(anonymous(), { receivedAt: RECEIVED_AT + 999_000 })
    assert.equal(retry, first)
    assert.equal(plain, first)
  })

  test('the id hashes the timestamp as sent, not as corrected', () => {
    const a = validateEvent({ ...anonymous(), sent_at: NOW_SECONDS }, CTX, LIMITS)
    const b = validateEvent({ ...anonymous(), sent_at: NOW_SECONDS - 100 }, CTX, LIMITS)
    assert.ok(a.ok && b.ok)
    assert.notEqual(a.event.timestamp, b.event.timestamp)
    assert.equal(a.event.event_id, b.event.event_id)
  })

  test('key order does not change the id, at any depth', () => {
    const body = anonymous()
    const reordered = Object.fromEntries(Object.entries(body).reverse())
    reordered.metadata = { price: 129.99, product_id: 'prod-789' }
    assert.equal(idOf(reordered), idOf(body))
    const nested = { ...body, metadata: { z: { b: 1, a: [{ y: 1, x: 2 }] }, a: 0 } }
    const nestedReordered = { ...body, metadata: { a: 0, z: { a: [{ x: 2, y: 1 }], b: 1 } } }
    assert.equal(idOf(nestedReordered), idOf(nested))
  })

  test('absent, null and default optional fields hash alike', () => {
    const bare = { event_name: 'e', user_id: 'u', channel: 'web', timestamp: NOW_SECONDS }
    const id = idOf(bare)
    assert.equal(idOf({ ...bare, campaign_id: null, tags: null, metadata: null }), id)
    assert.equal(idOf({ ...bare, tags: [] }), id)
    assert.notEqual(idOf({ ...bare, metadata: {} }), id)
    assert.notEqual(idOf({ ...bare, campaign_id: '' }), id)
  })

  test('any change of content changes the id', () => {
    const id = idOf(anonymous())
    const changes: Record<string, unknown>[] = [
      { event_name: 'product_click' },
      { channel: 'mobile' },
      { campaign_id: 'cmp_988' },
      { user_id: 'user_124' },
      { timestamp: NOW_SECONDS - 59 },
      { tags: ['homepage', 'electronics'] },
      { tags: ['electronics'] },
      { metadata: { product_id: 'prod-789', price: 129.98 } },
      { metadata: { product_id: 'prod-789', price: '129.99' } },
      { metadata: { product_id: 'prod-789', price: 129.99, extra: null } },
    ]
    const seen = new Set([id])
    for (const change of changes) {
      const other = idOf({ ...anonymous(), ...change })
      assert.ok(!seen.has(other), `changing ${JSON.stringify(change)} kept the id`)
      seen.add(other)
    }
  })

  test('values that look alike across fields do not collide', () => {
    const a = idOf({ ...anonymous(), event_name: 'a","channel":"web', user_id: 'u' })
    const b = idOf({ ...anonymous(), event_name: 'a', user_id: 'u' })
    assert.notEqual(a, b)
  })
})

describe('canonicalJson', () => {
  test('sorts object keys at every level and keeps array order', () => {
    assert.equal(
      canonicalJson({ b: 1, a: [{ d: 1, c: 2 }, 3], c: { z: null, y: 'x' } }),
      '{"a":[{"c":2,"d":1},3],"b":1,"c":{"y":"x","z":null}}',
    )
  })

  test('sorts many keys like Array.prototype.sort', () => {
    const keys = Array.from({ length: 60 }, (_, i) => `k${(i * 37) % 60}`)
    const object = Object.fromEntries(keys.map((k) => [k, 1]))
    assert.deepEqual(Object.keys(JSON.parse(canonicalJson(object))), [...keys].sort())
    const few = { b: 1, B: 2, a: 3, é: 4, _: 5 }
    assert.deepEqual(Object.keys(JSON.parse(canonicalJson(few))), Object.keys(few).sort())
  })

  test('writes strings and numbers exactly as JSON.stringify does', () => {
    for (const value of ['a"b\\c\n\u0001', '\ud800', '😀', 0, -0, 1e21, 1.5e-7, 129.99, true, false, null]) {
      assert.equal(canonicalJson(value), JSON.stringify(value))
    }
  })
})

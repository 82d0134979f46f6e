import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { serializeEvent } from '../../../src/intake/serialize.ts'
import type { IntakeContext, IntakeLimits, NormalizedEvent } from '../../../src/intake/types.ts'
import { MAX_METADATA_KEYS, validateEvent } from '../../../src/intake/validate.ts'
import { CTX, LIMITS, NOW_SECONDS, RECEIVED_AT, validBody, without } from './fixtures.ts'

function accept(body: unknown, ctx: IntakeContext = CTX, limits: IntakeLimits = LIMITS): NormalizedEvent {
  const result = validateEvent(body, ctx, limits)
  if (!result.ok) assert.fail(`expected the event to be accepted, got: ${result.error}`)
  return result.event
}

function reject(body: unknown, ctx: IntakeContext = CTX, limits: IntakeLimits = LIMITS): string {
  const result = validateEvent(body, ctx, limits)
  if (result.ok) assert.fail(`expected a rejection, got ${JSON.stringify(result.event)}`)
  return result.error
}

describe('event shape', () => {
  test('the example of docs/ARCHITECTURE.md "The event" is accepted and normalised in the fixed field order', () => {
    const event = accept(validBody())
    assert.deepEqual(Object.keys(event), [
      'event_id',
      'event_name',
      'channel',
      'campaign_id',
      'user_id',
      'timestamp',
      'received_at',
      'tags',
      'metadata',
    ])
    assert.deepEqual(event, {
      event_id: '0b6c9f0e-5a43-4d1e-9a9d-6f8b2f1c7e21',
      event_name: 'product_view',
      channel: 'web',
      campaign_id: 'cmp_987',
      user_id: 'user_123',
      timestamp: NOW_SECONDS - 60,
      received_at: RECEIVED_AT,
      tags: ['electronics', 'homepage'],
      metadata: { product_id: 'prod-789', price: 129.99 },
    })
  })

  test('received_at is the server clock of the context', () => {
    assert.equal(accept(validBody(), { receivedAt: RECEIVED_AT + 5 }).received_at, RECEIVED_AT + 5)
  })

  test('a body that is not a JSON object is rejected', () => {
    assert.equal(reject([validBody()]), 'event must be a JSON object, got an array')
    assert.equal(reject(null), 'event must be a JSON object, got null')
    assert.equal(reject('hello'), 'event must be a JSON object, got "hello"')
    assert.equal(reject(42), 'event must be a JSON object, got 42')
    assert.equal(reject(undefined), 'event must be a JSON object, got nothing')
  })

  test('an unknown top-level field is rejected by name rather than dropped', () => {
    const error = reject(validBody({ foo: 1 }))
    assert.match(error, /^unknown field "foo"; the fields are event_id, event_name, /)
    assert.match(reject(validBody({ userId: 'u' })), /^unknown field "userId"/)
    assert.match(reject(validBody({ properties: {} })), /^unknown field "properties"/)
  })

  test('an unknown field is reported before a missing one', () => {
    assert.match(reject({ userId: 'u' }), /^unknown field "userId"/)
  })

  test('a top-level "__proto__" key from JSON.parse is an unknown field, not a prototype', () => {
    const body = JSON.parse(`{"__proto__":{"event_name":"x"},${JSON.stringify(validBody()).slice(1)}`)
    assert.match(reject(body), /^unknown field "__proto__"/)
  })

  test('sent_at is a known field', () => {
    accept(validBody({ sent_at: NOW_SECONDS }))
  })

  test('null means absent for every optional field', () => {
    const event = accept(
      validBody({ event_id: null, campaign_id: null, tags: null, metadata: null, sent_at: null }),
    )
    assert.equal(event.campaign_id, null)
    assert.deepEqual(event.tags, [])
    assert.equal(event.metadata, null)
    assert.match(event.event_id, /^[0-9a-f-]{36}$/)
  })

  test('the smallest event has defaults for every optional field', () => {
    const event = accept({ event_name: 'e', user_id: 'u', channel: 'api', timestamp: NOW_SECONDS })
    assert.equal(event.campaign_id, null)
    assert.deepEqual(event.tags, [])
    assert.equal(event.metadata, null)
  })
})

for (const field of ['event_name', 'user_id'] as const) {
  describe(field, () => {
    test(`${field} is required`, () => {
      assert.equal(reject(without(validBody(), field)), `${field} is required`)
      assert.equal(reject(validBody({ [field]: null })), `${field} is required`)
    })

    test(`${field} must be a string`, () => {
      assert.equal(reject(validBody({ [field]: 5 })), `${field} must be a string, got 5`)
      assert.equal(reject(validBody({ [field]: ['a'] })), `${field} must be a string, got an array`)
      assert.equal(reject(validBody({ [field]: { a: 1 } })), `${field} must be a string, got an object`)
      assert.equal(reject(validBody({ [field]: false })), `${field} must be a string, got false`)
    })

    test(`${field} must not be empty or whitespace only`, () => {
      for (const blank of ['', ' ', '\t\n\r ', '\u00a0', '\u3000\u2028', '\ufeff']) {
        assert.equal(reject(validBody({ [field]: blank })), `${field} must not be empty or only whitespace`)
      }
    })

    test(`${field} is kept as sent, surrounding whitespace included`, () => {
      assert.equal(accept(validBody({ [field]: ' a b ' }))[field], ' a b ')
      assert.equal(accept(validBody({ [field]: '\u00a0x' }))[field], '\u00a0x')
    })

    test(`${field} is bounded by maxStringLength`, () => {
      const limits = { ...LIMITS, maxStringLength: 16 }
      assert.equal(accept(validBody({ [field]: 'x'.repeat(16) }), CTX, limits)[field], 'x'.repeat(16))
      assert.equal(
        reject(validBody({ [field]: 'x'.repeat(17) }), CTX, limits),
        `${field} must be at most 16 characters, got 17`,
      )
    })
  })
}

describe('channel', () => {
  test('each of web, mobile, api, email and push is accepted', () => {
    for (const channel of ['web', 'mobile', 'api', 'email', 'push']) {
      assert.equal(accept(validBody({ channel })).channel, channel)
    }
  })

  test('another channel is rejected, listing the accepted ones', () => {
    assert.equal(
      reject(validBody({ channel: 'fax' })),
      'channel must be one of web, mobile, api, email, push, got "fax"',
    )
  })

  test('channel is exact and lowercase', () => {
    assert.match(reject(validBody({ channel: 'Web' })), /^channel must be one of .*, got "Web"$/)
    assert.match(reject(validBody({ channel: ' web' })), /^channel must be one of .*, got " web"$/)
    assert.match(reject(validBody({ channel: 1 })), /^channel must be one of .*, got 1$/)
  })

  test('channel is required', () => {
    assert.equal(
      reject(without(validBody(), 'channel')),
      'channel is required, one of web, mobile, api, email, push',
    )
    assert.equal(
      reject(validBody({ channel: null })),
      'channel is required, one of web, mobile, api, email, push',
    )
  })
})

describe('campaign_id', () => {
  test('campaign_id is optional and null when absent', () => {
    assert.equal(accept(without(validBody(), 'campaign_id')).campaign_id, null)
  })

  test('campaign_id is kept as sent, even empty', () => {
    assert.equal(accept(validBody({ campaign_id: 'cmp_1' })).campaign_id, 'cmp_1')
    assert.equal(accept(validBody({ campaign_id: '' })).campaign_id, '')
  })

  test('campaign_id must be a string', () => {
    assert.equal(reject(validBody({ campaign_id: 987 })), 'campaign_id must be a string, got 987')
  })

  test('campaign_id is bounded by maxStringLength', () => {
    const limits = { ...LIMITS, maxStringLength: 16 }
    accept(validBody({ campaign_id: 'c'.repeat(16) }), CTX, limits)
    assert.equal(
      reject(validBody({ campaign_id: 'c'.repeat(17) }), CTX, limits),
      'campaign_id must be at most 16 characters, got 17',
    )
  })
})

describe('tags', () => {
  test('tags are optional and [] when absent', () => {
    assert.deepEqual(accept(without(validBody(), 'tags')).tags, [])
  })

  test('tags keep their order', () => {
    assert.deepEqual(accept(validBody({ tags: ['b', 'a', 'b'] })).tags, ['b', 'a', 'b'])
  })

  test('tags must be an array', () => {
    assert.equal(reject(validBody({ tags: 'a,b' })), 'tags must be an array of strings, got "a,b"')
    assert.equal(reject(validBody({ tags: { 0: 'a' } })), 'tags must be an array of strings, got an object')
  })

  test('every tag must be a string, named by its index', () => {
    assert.equal(reject(validBody({ tags: ['a', 2] })), 'tags[1] must be a string, got 2')
    assert.equal(reject(validBody({ tags: ['a', 'b', null] })), 'tags[2] must be a string, got null')
  })

  test('tags are bounded by maxTags', () => {
    const limits = { ...LIMITS, maxTags: 3 }
    accept(validBody({ tags: ['a', 'b', 'c'] }), CTX, limits)
    assert.equal(
      reject(validBody({ tags: ['a', 'b', 'c', 'd'] }), CTX, limits),
      'tags must have at most 3 entries, got 4',
    )
    assert.equal(
      reject(validBody({ tags: ['a'] }), CTX, { ...LIMITS, maxTags: 0 }),
      'tags must have at most 0 entries, got 1',
    )
  })

  test('each tag is bounded by maxStringLength', () => {
    const limits = { ...LIMITS, maxStringLength: 16 }
    accept(validBody({ tags: ['t'.repeat(16)] }), CTX, limits)
    assert.equal(
      reject(validBody({ tags: ['ok', 't'.repeat(17)] }), CTX, limits),
      'tags[1] must be at most 16 characters, got 17',
    )
  })
})

describe('metadata', () => {
  test('metadata is optional and null when absent', () => {
    assert.equal(accept(without(validBody(), 'metadata')).metadata, null)
  })

  test('metadata may hold any JSON values', () => {
    const metadata = { s: 'x', n: -1.5e-7, b: true, z: null, a: [1, 'two', { three: 3 }], o: {}, e: [] }
    assert.deepEqual(accept(validBody({ metadata })).metadata, metadata)
  })

  test('metadata must be an object, not an array or a scalar', () => {
    assert.equal(reject(validBody({ metadata: [1] })), 'metadata must be a JSON object, got an array')
    assert.equal(reject(validBody({ metadata: 'x' })), 'metadata must be a JSON object, got "x"')
    assert.equal(reject(validBody({ metadata: 3 })), 'metadata must be a JSON object, got 3')
  })

  test('metadata depth counts the object and array levels inside it', () => {
    const limits = { ...LIMITS, maxDepth: 2 }
    accept(validBody({ metadata: { a: 1 } }), CTX, { ...LIMITS, maxDepth: 1 })
    accept(validBody({ metadata: { a: { b: { c: 1 } } } }), CTX, limits)
    accept(validBody({ metadata: { a: [[1]] } }), CTX, limits)
    assert.equal(
      reject(validBody({ metadata: { a: { b: { c: {} } } } }), CTX, limits),
      'metadata must be nested at most 2 levels deep, metadata.a.b.c is deeper',
    )
    assert.equal(
      reject(validBody({ metadata: { list: [{ ok: 1 }, { deep: [[]] }] } }), CTX, limits),
      'metadata must be nested at most 2 levels deep, metadata.list[1].deep is deeper',
    )
  })

  test('a path with unusual keys is quoted in the depth error', () => {
    const error = reject(validBody({ metadata: { 'a key': { b: 1 } } }), CTX, { ...LIMITS, maxDepth: 0 })
    assert.equal(error, 'metadata must be nested at most 0 levels deep, metadata["a key"] is deeper')
  })

  test('a deeply nested (or cyclic) value is refused without exhausting the stack', () => {
    let deep: Record<string, unknown> = {}
    for (let i = 0; i < 100_000; i++) deep = { d: deep }
    assert.match(reject(validBody({ metadata: deep })), /^metadata must be nested at most 8 levels deep/)
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    assert.match(reject(validBody({ metadata: cyclic })), /^metadata must be nested at most 8 levels deep/)
  })

  test('metadata holds at most MAX_METADATA_KEYS keys in all', () => {
    const flat = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))
    accept(validBody({ metadata: flat(MAX_METADATA_KEYS) }))
    assert.equal(
      reject(validBody({ metadata: flat(MAX_METADATA_KEYS + 1) })),
      `metadata must have at most ${MAX_METADATA_KEYS} keys in all`,
    )
    const nested = { a: flat(MAX_METADATA_KEYS / 2), b: flat(MAX_METADATA_KEYS / 2) }
    assert.match(reject(validBody({ metadata: nested })), /^metadata must have at most/)
  })

  test('metadata values that JSON cannot carry are rejected by path', () => {
    assert.equal(
      reject(validBody({ metadata: { x: Number.NaN } })),
      'metadata.x must be a JSON value, got NaN',
    )
    assert.equal(
      reject(validBody({ metadata: { a: [1, undefined] } })),
      'metadata.a[1] must be a JSON value, got nothing',
    )
    assert.equal(reject(validBody({ metadata: { big: 10n } })), 'metadata.big must be a JSON value, got 10n')
  })

  test('__proto__ and constructor keys in metadata stay inert own data', () => {
    const body = JSON.parse(
      JSON.stringify(validBody()).replace(
        '"metadata":{',
        '"metadata":{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}},',
      ),
    )
    const event = accept(body)
    assert.deepEqual(Object.keys(event.metadata ?? {}), ['__proto__', 'constructor', 'product_id', 'price'])
    assert.equal(Object.getPrototypeOf(event.metadata), Object.prototype)
    assert.equal(Object.getPrototypeOf(event), Object.prototype)
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
    assert.match(serializeEvent(event), /"metadata":\{"__proto__":\{"polluted":1\},"constructor":/)
    // Without event_id the content hash walks the same keys; it must not pollute either.
    const hashed = accept(without(body, 'event_id'))
    assert.match(hashed.event_id, /^[0-9a-f]{8}-/)
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
  })
})

describe('event_id', () => {
  test("the client's event_id is the dedup key", () => {
    assert.equal(accept(validBody({ event_id: 'evt-1' })).event_id, 'evt-1')
  })

  test('event_id may be 128 characters but not 129', () => {
    assert.equal(accept(validBody({ event_id: 'i'.repeat(128) })).event_id, 'i'.repeat(128))
    assert.equal(
      reject(validBody({ event_id: 'i'.repeat(129) })),
      'event_id must be at most 128 characters, got 129',
    )
  })

  test('event_id is bounded at 128 even when maxStringLength is larger or smaller', () => {
    accept(validBody({ event_id: 'i'.repeat(128) }), CTX, { ...LIMITS, maxStringLength: 16 })
  })

  test('event_id must be a non-empty string', () => {
    assert.equal(reject(validBody({ event_id: '' })), 'event_id must not be empty or only whitespace')
    assert.equal(reject(validBody({ event_id: '  ' })), 'event_id must not be empty or only whitespace')
    assert.equal(reject(validBody({ event_id: 42 })), 'event_id must be a string, got 42')
  })
})

describe('timestamp', () => {
  test('timestamp is required', () => {
    assert.equal(
      reject(without(validBody(), 'timestamp')),
      'timestamp is required, as an integer of Unix seconds',
    )
    assert.equal(
      reject(validBody({ timestamp: null })),
      'timestamp is required, as an integer of Unix seconds',
    )
  })

  test('timestamp must be an integer number or an ISO-8601 string, not another string, a float or a boolean', () => {
    assert.equal(
      reject(validBody({ timestamp: 'abc' })),
      'timestamp must be an integer of Unix seconds or an ISO-8601 string with a zone, got "abc"',
    )
    assert.equal(
      reject(validBody({ timestamp: String(NOW_SECONDS) })),
      `timestamp must be an integer of Unix seconds or an ISO-8601 string with a zone, got "${NOW_SECONDS}"`,
    )
    assert.equal(
      reject(validBody({ timestamp: NOW_SECONDS + 0.5 })),
      `timestamp must be an integer of Unix seconds, got ${NOW_SECONDS + 0.5}`,
    )
    assert.equal(
      reject(validBody({ timestamp: true })),
      'timestamp must be an integer of Unix seconds, got true',
    )
  })

  test('timestamp must be positive', () => {
    assert.equal(
      reject(validBody({ timestamp: 0 })),
      'timestamp must be a positive integer of Unix seconds, got 0',
    )
    assert.equal(
      reject(validBody({ timestamp: -5 })),
      'timestamp must be a positive integer of Unix seconds, got -5',
    )
    assert.equal(accept(validBody({ timestamp: 1 })).timestamp, 1)
  })

  test('timestamp may be up to clockSkewSeconds in the future, not more', () => {
    assert.equal(accept(validBody({ timestamp: NOW_SECONDS + 300 })).timestamp, NOW_SECONDS + 300)
    assert.equal(
      reject(validBody({ timestamp: NOW_SECONDS + 301 })),
      'timestamp is 301 seconds in the future, more than the 300 allowed for clock skew',
    )
    assert.match(
      reject(validBody({ timestamp: NOW_SECONDS + 1 }), CTX, { ...LIMITS, clockSkewSeconds: 0 }),
      /^timestamp is 1 seconds in the future/,
    )
  })

  test('the server clock is rounded to the nearest second', () => {
    const ctx = { receivedAt: NOW_SECONDS * 1000 + 600 }
    accept(validBody({ timestamp: NOW_SECONDS + 1 }), ctx, { ...LIMITS, clockSkewSeconds: 0 })
  })

  test('a timestamp in milliseconds (or finer) is rejected with a hint', () => {
    assert.equal(
      reject(validBody({ timestamp: NOW_SECONDS * 1000 })),
      `timestamp must be Unix seconds, got ${NOW_SECONDS * 1000}, which looks like milliseconds`,
    )
    assert.match(reject(validBody({ timestamp: NOW_SECONDS * 1_000_000 })), /which looks like microseconds$/)
    assert.match(reject(validBody({ timestamp: NOW_SECONDS * 1e9 })), /which looks like nanoseconds$/)
    assert.match(reject(validBody({ timestamp: 1e300 })), /^timestamp is \d.* seconds in the future/)
  })

  test('without sent_at the timestamp is kept and no skew is reported', () => {
    const result = validateEvent(validBody(), CTX, LIMITS)
    assert.ok(result.ok)
    assert.equal(result.event.timestamp, NOW_SECONDS - 60)
    assert.equal(result.skewSeconds, null)
  })
})

describe('sent_at clock-skew correction', () => {
  test('a client clock one hour slow is corrected by received − sent_at', () => {
    const result = validateEvent(
      validBody({ timestamp: NOW_SECONDS - 3600 - 10, sent_at: NOW_SECONDS - 3600 }),
      CTX,
      LIMITS,
    )
    assert.ok(result.ok)
    assert.equal(result.event.timestamp, NOW_SECONDS - 10)
    assert.equal(result.skewSeconds, 3600)
  })

  test('a client clock two hours fast is corrected, so its "future" timestamp is accepted', () => {
    const result = validateEvent(
      validBody({ timestamp: NOW_SECONDS + 7190, sent_at: NOW_SECONDS + 7200 }),
      CTX,
      LIMITS,
    )
    assert.ok(result.ok)
    assert.equal(result.event.timestamp, NOW_SECONDS - 10)
    assert.equal(result.skewSeconds, -7200)
  })

  test('the corrected value is validated: a future one is rejected', () => {
    assert.equal(
      reject(validBody({ timestamp: NOW_SECONDS, sent_at: NOW_SECONDS - 1000 })),
      'timestamp is 1000 seconds in the future after clock-skew correction by sent_at, more than the 300 allowed for clock skew',
    )
  })

  test('the corrected value is validated: a non-positive one is rejected', () => {
    assert.equal(
      reject(validBody({ timestamp: 100, sent_at: NOW_SECONDS + 200 })),
      'timestamp is not positive after clock-skew correction by sent_at (100 + -200 = -100)',
    )
  })

  test('sent_at must be a positive integer of Unix seconds', () => {
    assert.equal(
      reject(validBody({ sent_at: 'now' })),
      'sent_at must be an integer of Unix seconds, got "now"',
    )
    assert.equal(reject(validBody({ sent_at: 1.5 })), 'sent_at must be an integer of Unix seconds, got 1.5')
    assert.equal(
      reject(validBody({ sent_at: 0 })),
      'sent_at must be a positive integer of Unix seconds, got 0',
    )
    assert.equal(
      reject(validBody({ sent_at: NOW_SECONDS * 1000 })),
      `sent_at must be Unix seconds, got ${NOW_SECONDS * 1000}, which looks like milliseconds`,
    )
  })
})

describe('event size', () => {
  const limits = { ...LIMITS, maxEventBytes: 1024, maxStringLength: 4096 }
  /** A body whose normalised event serialises to exactly `bytes` bytes, padded in metadata. */
  function bodyOfSize(bytes: number, pad = 'x'): Record<string, unknown> {
    const base = serializeEvent(accept(validBody({ metadata: { pad: '' } }), CTX, limits))
    const padBytes = Buffer.byteLength(JSON.stringify(pad)) - 2
    const missing = bytes - Buffer.byteLength(base)
    const count = Math.floor(missing / padBytes)
    const body = validBody({ metadata: { pad: pad.repeat(count) + 'x'.repeat(missing - count * padBytes) } })
    assert.equal(Buffer.byteLength(JSON.stringify({ ...body, received_at: RECEIVED_AT })), bytes)
    return body
  }

  test('an event of exactly maxEventBytes is accepted', () => {
    const event = accept(bodyOfSize(1024), CTX, limits)
    assert.equal(Buffer.byteLength(serializeEvent(event)), 1024)
  })

  test('an event one byte over maxEventBytes is rejected and marked too large', () => {
    const result = validateEvent(bodyOfSize(1025), CTX, limits)
    assert.ok(!result.ok)
    assert.equal(result.error, 'event is larger than 1024 bytes (got 1025)')
    assert.equal(result.tooLarge, true)
  })

  test('size counts UTF-8 bytes, not characters', () => {
    accept(bodyOfSize(1024, 'é'), CTX, limits)
    accept(bodyOfSize(1024, '😀'), CTX, limits)
    const result = validateEvent(bodyOfSize(1025, 'é'), CTX, limits)
    assert.ok(!result.ok && result.tooLarge)
  })

  test('size counts escapes as they are written', () => {
    // '\n' is written as two bytes, '\u0001' as six.
    accept(bodyOfSize(1024, '\n'), CTX, limits)
    accept(bodyOfSize(1024, '\u0001'), CTX, limits)
    assert.ok(!validateEvent(bodyOfSize(1025, '\n'), CTX, limits).ok)
    assert.ok(!validateEvent(bodyOfSize(1025, '\u0001'), CTX, limits).ok)
  })

  test('other rejections are not marked too large', () => {
    const result = validateEvent(validBody({ channel: 'fax' }), CTX, LIMITS)
    assert.ok(!result.ok)
    assert.equal(result.tooLarge, false)
  })
})

describe('error messages', () => {
  test('long values are quoted and cut to 40 characters', () => {
    const error = reject(validBody({ channel: 'x'.repeat(500) }))
    assert.equal(error, `channel must be one of web, mobile, api, email, push, got "${'x'.repeat(39)}…"`)
  })

  test('control characters in quoted values are escaped', () => {
    assert.equal(
      reject(validBody({ channel: 'a\nb' })),
      'channel must be one of web, mobile, api, email, push, got "a\\nb"',
    )
  })

  test('long unknown field names are cut too', () => {
    assert.match(
      reject(validBody({ ['k'.repeat(100)]: 1 })),
      new RegExp(`^unknown field "${'k'.repeat(39)}…";`),
    )
  })
})

describe('text that cannot be stored as sent', () => {
  const LONE_HIGH = '\ud83d'
  const LONE_LOW = '\ude00'

  test('a lone UTF-16 surrogate is refused in every string, naming the field', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ event_id: `id${LONE_HIGH}` }, 'event_id'],
      [{ event_name: `view${LONE_LOW}` }, 'event_name'],
      [{ user_id: `${LONE_HIGH}u` }, 'user_id'],
      [{ campaign_id: LONE_LOW }, 'campaign_id'],
      [{ tags: ['ok', `t${LONE_HIGH}`] }, 'tags[1]'],
      [{ metadata: { note: `x${LONE_HIGH}y` } }, 'metadata.note'],
      [{ metadata: { a: [{ b: `${LONE_LOW}${LONE_HIGH}` }] } }, 'metadata.a[0].b'],
    ]
    for (const [override, field] of cases) {
      assert.equal(
        reject(validBody(override)),
        `${field} contains a lone UTF-16 surrogate; send well-formed Unicode`,
      )
    }
  })

  test('a metadata key with a lone surrogate is refused, naming where it is', () => {
    assert.equal(
      reject(validBody({ metadata: { a: { [`k${LONE_HIGH}`]: 1 } } })),
      'metadata.a has a key that contains a lone UTF-16 surrogate ("k\\ud83d"); send well-formed Unicode',
    )
  })

  test('paired surrogates (astral characters) are accepted', () => {
    const smile = '\ud83d\ude00'
    const event = accept(validBody({ event_name: smile, tags: [smile], metadata: { [smile]: smile } }))
    assert.equal(event.event_name, smile)
    assert.deepEqual(event.metadata, { [smile]: smile })
  })

  test('a metadata integer beyond 2^53 - 1 is refused naming the field, not stored rounded', () => {
    assert.equal(
      reject(validBody(JSON.parse('{"metadata":{"order":{"id":12345678901234567890}}}'))),
      'metadata.order.id is an integer beyond ±9007199254740991 (got 12345678901234567000), which may not be stored exactly; send it as a string',
    )
    assert.match(
      reject(validBody({ metadata: { n: [-(2 ** 53)] } })),
      /^metadata\.n\[0\] is an integer beyond/,
    )
    assert.match(reject(validBody({ metadata: { n: 1e300 } })), /^metadata\.n is an integer beyond/)
  })

  test('safe integers and fractions are kept (every double beyond 2^53 is whole, so 1e300 is refused above)', () => {
    const metadata = { max: Number.MAX_SAFE_INTEGER, min: Number.MIN_SAFE_INTEGER, f: -123456.789, g: 0.1 }
    assert.deepEqual(accept(validBody({ metadata })).metadata, metadata)
  })
})

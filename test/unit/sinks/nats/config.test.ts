import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadConfig } from '../../../../src/config/load.ts'
import { encodeEvents } from '../../../../src/intake/serialize.ts'
import { natsSinkOptions } from '../../../../src/sinks/nats/config.ts'
import { itemsOf, msgIdOf } from '../../../../src/sinks/nats/sink.ts'
import { sparseEvent } from '../../../helpers/events.ts'

test('the sink options come from the configuration; a missing URL names the option', () => {
  const config = loadConfig({
    env: { NATS_URL: 'nats://127.0.0.1:4333', SPILLWAY_NATS_STREAM: 'S', SPILLWAY_NATS_ACK_WINDOW: '64' },
  })
  const options = natsSinkOptions(config, 'nats')
  assert.deepEqual(
    { ...options, logger: undefined },
    {
      servers: ['127.0.0.1:4333'],
      stream: 'S',
      subject: 'events',
      duplicateWindowMs: 120_000,
      timeoutMs: 10_000,
      name: 'nats',
      ackWindow: 64,
      logger: undefined,
    },
  )
  assert.throws(
    () => natsSinkOptions(loadConfig({ env: {} }), 'nats'),
    /sink nats needs a server: set natsUrl/,
  )
})

test('one publish per NDJSON line, sliced as is; decoded events serialised the same way', () => {
  const events = [sparseEvent('a'), sparseEvent('b "quoted"', { metadata: { x: 1 } }), sparseEvent('c')]
  const ndjson = encodeEvents(events)
  const items = itemsOf({ events, ndjson, from: 0, to: 1 })
  const decoded = itemsOf({ events, from: 0, to: 1 })
  assert.deepEqual(
    items.map((i) => i.id),
    ['a', 'b "quoted"', 'c'],
  )
  for (let i = 0; i < 3; i++) {
    assert.equal(Buffer.from(items[i].data).toString(), ndjson.toString().split('\n')[i])
    assert.deepEqual(Buffer.from(decoded[i].data), Buffer.from(items[i].data))
  }
  assert.equal(itemsOf({ events: [], ndjson: Buffer.alloc(0), from: 0, to: 0 }).length, 0)
})

test('Nats-Msg-Id: plain ids as they are, anything NATS would trim or refuse percent-encoded, one-to-one', () => {
  assert.equal(msgIdOf('0b6c9f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b'), '0b6c9f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b')
  assert.equal(msgIdOf('a:b/c?d=e&f#g'), 'a:b/c?d=e&f#g')
  assert.equal(msgIdOf(' a'), '%20a')
  assert.equal(msgIdOf('a\r\n'), 'a%0D%0A')
  assert.equal(msgIdOf('100%'), '100%25')
  assert.equal(msgIdOf('é'), '%C3%A9')
  const ids = ['a', ' a', 'a ', '%20a', '%2520a', 'a\t', 'é', '%C3%A9', 'A']
  assert.equal(new Set(ids.map(msgIdOf)).size, ids.length)
  for (const id of ids) assert.doesNotMatch(msgIdOf(id), /[\s]/)
})

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadConfig } from '../../../../src/config/load.ts'
import { checkName, checkSubject, parseNatsUrl } from '../../../../src/connectors/nats/config.ts'
import { subjectMatches } from '../../../../src/connectors/nats/connection.ts'
import { encodeEvents } from '../../../../src/intake/serialize.ts'
import { natsSinkOptions } from '../../../../src/sinks/nats/config.ts'
import { itemsOf, msgIdOf } from '../../../../src/sinks/nats/sink.ts'
import { sparseEvent } from '../../../helpers/events.ts'

test('natsUrl: servers without credentials, credentials lifted out', () => {
  assert.deepEqual(parseNatsUrl('nats://127.0.0.1:4222'), { servers: ['127.0.0.1:4222'] })
  assert.deepEqual(parseNatsUrl('nats://u:p%40ss@a:1, b:2 ,nats://c'), {
    servers: ['a:1', 'b:2', 'c:4222'],
    user: 'u',
    pass: 'p@ss',
  })
  assert.deepEqual(parseNatsUrl('nats://s3cr3t@a:1'), { servers: ['a:1'], token: 's3cr3t' })
  assert.throws(() => parseNatsUrl('http://a:1'), /natsUrl: expected nats:\/\/host:port/)
  assert.throws(() => parseNatsUrl(' , '), /no server/)
  assert.throws(
    () => parseNatsUrl('nats://user:secret@[bad'),
    (error: Error) => !error.message.includes('secret'),
    'credentials never appear in the error',
  )
})

test('stream, consumer and subject names are checked naming the option', () => {
  assert.equal(checkName('natsStream', 'EVENTS_2'), 'EVENTS_2')
  for (const bad of ['', 'a.b', 'a b', 'a*', 'a>', 'a/b']) {
    assert.throws(() => checkName('natsStream', bad), /option natsStream/)
  }
  assert.equal(checkSubject('events.web'), 'events.web')
  for (const bad of ['', 'events.*', 'events.>', 'a..b', 'a b', '.a']) {
    assert.throws(() => checkSubject(bad), /option natsSubject/)
  }
})

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

test('subject matching: * is one token, > the rest', () => {
  const cases: [string, string, boolean][] = [
    ['events', 'events', true],
    ['events', 'events.web', false],
    ['events.*', 'events.web', true],
    ['events.*', 'events', false],
    ['events.*', 'events.web.x', false],
    ['events.>', 'events.web.x', true],
    ['events.>', 'events', false],
    ['>', 'anything.at.all', true],
    ['*.web', 'events.web', true],
    ['other', 'events', false],
  ]
  for (const [filter, subject, expected] of cases) {
    assert.equal(subjectMatches(filter, subject), expected, `${filter} ~ ${subject}`)
  }
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

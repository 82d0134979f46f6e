import assert from 'node:assert/strict'
import { test } from 'node:test'
import { checkName, checkSubject, parseNatsUrl } from '../../../../src/connectors/nats/config.ts'

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

import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadConfig } from '../../../../src/config/load.ts'
import { clientOptions } from '../../../../src/connectors/kafka/client.ts'
import { deadLetterTopic, kafkaConnection } from '../../../../src/connectors/kafka/config.ts'
import { kafkaSinkOptions } from '../../../../src/sinks/kafka/config.ts'

const base = { sinks: ['kafka'] }

test('the kafka sink needs kafkaBrokers, host:port each', () => {
  assert.throws(
    () => kafkaSinkOptions(loadConfig({ env: {}, overrides: base }), 'kafka'),
    /sink kafka needs brokers: set kafkaBrokers \(KAFKA_BROKERS, --kafka-brokers\)/,
  )
  for (const bad of ['localhost', 'http://b:9092', 'b:0', 'b:99999', 'b:9092/x']) {
    assert.throws(
      () => kafkaSinkOptions(loadConfig({ env: { KAFKA_BROKERS: bad }, overrides: base }), 'kafka'),
      /option kafkaBrokers: expected host:port/,
      bad,
    )
  }
  const config = loadConfig({
    env: { KAFKA_BROKERS: ' b1:9092, [::1]:9093 ,', KAFKA_TOPIC: 'ev' },
    overrides: base,
  })
  const options = kafkaSinkOptions(config, 'kafka')
  assert.deepEqual(options.connection, {
    brokers: ['b1:9092', '[::1]:9093'],
    clientId: 'spillway',
    timeoutMs: 10_000,
    sasl: undefined,
    tls: undefined,
  })
  assert.equal(options.topic, 'ev')
  assert.equal(options.deadLetterTopic, 'ev.dead-letter')
  assert.equal(options.compression, 'lz4')
  assert.equal(options.partitions, 6)
  assert.equal(options.replicationFactor, 1)
})

test('the dead-letter topic is <topic>.dead-letter unless named', () => {
  assert.equal(deadLetterTopic({ kafkaTopic: 'a', kafkaDeadLetterTopic: '' }), 'a.dead-letter')
  assert.equal(deadLetterTopic({ kafkaTopic: 'a', kafkaDeadLetterTopic: 'dlq' }), 'dlq')
})

test('SASL needs a user name; TLS reads the CA file at start, failing naming the option', async (t) => {
  const env = { KAFKA_BROKERS: 'b:9093' }
  assert.throws(
    () => kafkaConnection(loadConfig({ env: { ...env, SPILLWAY_KAFKA_SASL: 'scram-sha-512' } }), 'x'),
    /option kafkaSasl is scram-sha-512: set kafkaUsername and kafkaPassword/,
  )
  const sasl = kafkaConnection(
    loadConfig({
      env: {
        ...env,
        SPILLWAY_KAFKA_SASL: 'scram-sha-256',
        SPILLWAY_KAFKA_USERNAME: 'u',
        SPILLWAY_KAFKA_PASSWORD: 'p',
        SPILLWAY_KAFKA_TLS: 'true',
      },
    }),
    'x',
  )
  assert.deepEqual(sasl.sasl, { mechanism: 'SCRAM-SHA-256', username: 'u', password: 'p' })
  assert.deepEqual(sasl.tls, {})
  assert.deepEqual(clientOptions(sasl).sasl, { mechanism: 'SCRAM-SHA-256', username: 'u', password: 'p' })
  assert.deepEqual(clientOptions(sasl).tls, {})

  assert.throws(
    () =>
      kafkaConnection(
        loadConfig({ env: { ...env, SPILLWAY_KAFKA_TLS_CA_FILE: '/nonexistent/ca.pem' } }),
        'x',
      ),
    /option kafkaTlsCaFile: cannot read \/nonexistent\/ca.pem/,
  )
  const dir = await mkdtemp(join(tmpdir(), 'spillway-kafka-ca-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'ca.pem'), 'PEM')
  const tls = kafkaConnection(
    loadConfig({ env: { ...env, SPILLWAY_KAFKA_TLS_CA_FILE: join(dir, 'ca.pem') } }),
    'x',
  )
  assert.deepEqual(tls.tls, { ca: 'PEM' })
  assert.deepEqual(clientOptions(tls).tls, { ca: 'PEM' })
  assert.equal(clientOptions(tls).sasl, undefined)
})

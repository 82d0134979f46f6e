import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadConfig } from '../../../../src/config/load.ts'
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

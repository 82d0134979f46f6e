import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadConfig } from '../../../../src/config/load.ts'
import { clientOptions } from '../../../../src/connectors/kafka/client.ts'
import { deadLetterTopic, kafkaConnection } from '../../../../src/connectors/kafka/config.ts'
import { tempDir } from '../../../helpers/temp-dir.ts'

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
  const dir = await tempDir(t, 'spillway-kafka-ca-')
  writeFileSync(join(dir, 'ca.pem'), 'PEM')
  const tls = kafkaConnection(
    loadConfig({ env: { ...env, SPILLWAY_KAFKA_TLS_CA_FILE: join(dir, 'ca.pem') } }),
    'x',
  )
  assert.deepEqual(tls.tls, { ca: 'PEM' })
  assert.deepEqual(clientOptions(tls).tls, { ca: 'PEM' })
  assert.equal(clientOptions(tls).sasl, undefined)
})

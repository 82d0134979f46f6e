import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadConfig } from '../../../src/config/load.ts'
import { OPTIONS } from '../../../src/config/schema.ts'
import { isSpillwayError } from '../../../src/errors.ts'

test('defaults apply when nothing is given, and the result is frozen', () => {
  const config = loadConfig({ env: {} })
  assert.equal(config.httpPort, 8080)
  assert.equal(config.metricsPort, 9464)
  assert.equal(config.dataDir, './data')
  assert.deepEqual(config.sinks, ['duckdb'])
  assert.equal(config.ack, 'durable')
  assert.ok(Object.isFrozen(config))
})

test("the reference systems' env names are read", () => {
  const config = loadConfig({
    env: {
      HTTP_PORT: '9000',
      LOG_LEVEL: 'debug',
      QUEUE_SIZE: '5000',
      WORKER_POOL_SIZE: '4',
      KAFKA_BROKERS: 'k:9092',
      KAFKA_TOPIC: 't',
      REDIS_URL: 'redis://r',
      CLICKHOUSE_URL: 'http://c:8123',
    },
  })
  assert.equal(config.httpPort, 9000)
  assert.equal(config.logLevel, 'debug')
  assert.equal(config.queueSize, 5000)
  assert.equal(config.workerPoolSize, 4)
  assert.equal(config.kafkaBrokers, 'k:9092')
  assert.equal(config.kafkaTopic, 't')
  assert.equal(config.redisUrl, 'redis://r')
  assert.equal(config.clickhouseUrl, 'http://c:8123')
})

test('sources merge as defaults < file < env < flags', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-config-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'spillway.yaml')
  await writeFile(file, 'httpPort: 7000\nmetricsPort: 7001\ndataDir: /from/file\nsinks: [duckdb, memory]\n')
  const config = loadConfig({
    env: { SPILLWAY_CONFIG: file, METRICS_PORT: '7101', SPILLWAY_DATA_DIR: '/from/env' },
    flags: { 'data-dir': '/from/flag' },
  })
  assert.equal(config.httpPort, 7000)
  assert.equal(config.metricsPort, 7101)
  assert.equal(config.dataDir, '/from/flag')
  assert.deepEqual(config.sinks, ['duckdb', 'memory'])
})

test('a JSON config file is read too', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-config-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'spillway.json')
  await writeFile(file, JSON.stringify({ ack: 'buffered' }))
  assert.equal(loadConfig({ env: {}, file }).ack, 'buffered')
})

const bad: [string, Parameters<typeof loadConfig>[0], RegExp][] = [
  [
    'a port that is not a number',
    { env: { HTTP_PORT: 'eighty' } },
    /httpPort \(env HTTP_PORT\): expected an integer/,
  ],
  ['a port out of range', { env: { HTTP_PORT: '70000' } }, /httpPort .*≤ 65535/],
  ['an unknown ack mode', { flags: { ack: 'maybe' } }, /ack \(--ack\): expected one of durable, buffered/],
  ['an unknown sink', { env: { SPILLWAY_SINKS: 'duckdb,mongo' } }, /sinks .*unknown value mongo/],
  [
    'a DuckDB memory limit that is not a size',
    { env: { SPILLWAY_DUCKDB_MEMORY_LIMIT: 'lots' } },
    /duckdbMemoryLimit .*a size such as 512MB/,
  ],
  ['a sink listed twice', { env: { SPILLWAY_SINKS: 'duckdb,duckdb' } }, /sinks .*twice/],
  ['an unknown flag', { flags: { 'htp-port': '1' } }, /unknown flag --htp-port/],
  [
    'a missing config file',
    { env: { SPILLWAY_CONFIG: '/nonexistent/spillway.yaml' } },
    /cannot read config file/,
  ],
]
for (const [name, sources, message] of bad) {
  test(`start fails naming the option on ${name}`, () => {
    assert.throws(
      () => loadConfig({ env: {}, ...sources }),
      (error: unknown) => isSpillwayError(error, 'SPW_ERR_CONFIG_INVALID') && message.test(error.message),
    )
  })
}

test('an unknown option in a config file is named', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-config-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'c.yaml')
  await writeFile(file, 'httpPortt: 1\n')
  assert.throws(() => loadConfig({ env: {}, file }), /unknown option "httpPortt"/)
})

test('every option has an env name, a flag and a doc, and its default passes its own validation', () => {
  const flags = new Set<string>()
  for (const [name, spec] of Object.entries(OPTIONS)) {
    assert.ok(spec.env.length > 0 && spec.flag && spec.doc, name)
    assert.ok(!flags.has(spec.flag), `flag --${spec.flag} used twice`)
    flags.add(spec.flag)
  }
  loadConfig({
    env: {},
    overrides: Object.fromEntries(Object.entries(OPTIONS).map(([k, s]) => [k, s.default])),
  })
})

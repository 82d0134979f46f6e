/** `spillway config check` as a user runs it: good and bad files, exit codes, messages, masked secrets. */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { digestOf } from '../../src/http/auth.ts'
import { NODE, ROOT } from '../helpers/server-process.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'

async function check(
  t: import('node:test').TestContext,
  name: string,
  text: string,
  env: Record<string, string> = {},
) {
  const dir = await makeTempDir('spillway-config-')
  t.after(() => removeTempDir(dir))
  const file = join(dir, name)
  await writeFile(file, text)
  try {
    const { stdout } = await promisify(execFile)(
      NODE,
      [join(ROOT, 'src/cli/main.ts'), 'config', 'check', '--config', file, '--json'],
      { cwd: dir, env: { PATH: process.env['PATH'] ?? '', ...env } },
    )
    return { code: 0, config: JSON.parse(stdout) as Record<string, unknown>, stderr: '' }
  } catch (error) {
    const e = error as { code: number; stderr: string }
    return { code: e.code, config: null, stderr: e.stderr }
  }
}

test('a good YAML file: exit 0, the effective configuration with env over file, secrets masked', async (t) => {
  const entry = `ios:${digestOf('k').toString('hex')}`
  const result = await check(
    t,
    'spillway.yaml',
    `httpPort: 9000\nsinks: [clickhouse, duckdb]\nclickhouseUrl: http://app:hunter2@127.0.0.1:8123\nclickhousePassword: hunter2\napiKeys: "${entry}"\nrateLimitPerSecond: 50\n`,
    { HTTP_PORT: '9100' },
  )
  assert.equal(result.code, 0, result.stderr)
  assert.equal(result.config?.['httpPort'], 9100, 'env wins over the file')
  assert.deepEqual(result.config?.['sinks'], ['clickhouse', 'duckdb'])
  assert.equal(result.config?.['rateLimitPerSecond'], 50)
  assert.equal(result.config?.['clickhouseUrl'], 'http://app:***@127.0.0.1:8123')
  assert.equal(result.config?.['clickhousePassword'], '(set)')
})

test('a good JSON file works the same', async (t) => {
  const result = await check(t, 'spillway.json', JSON.stringify({ sinks: ['duckdb'], logLevel: 'warn' }))
  assert.equal(result.code, 0, result.stderr)
  assert.equal(result.config?.['logLevel'], 'warn')
})

test('bad files: exit 2 with every problem named, before anything starts', async (t) => {
  const cases: [string, string, RegExp][] = [
    [
      'types.yaml',
      'httpPort: "abc"\nfoo: 1\n',
      /unknown option "foo".*option httpPort .*expected an integer, got "abc"/s,
    ],
    [
      'sink.yaml',
      'sinks: [kafka]\n',
      /sink kafka needs brokers: set kafkaBrokers \(KAFKA_BROKERS, --kafka-brokers\)/,
    ],
    ['clickhouse.yaml', 'sinks: [clickhouse]\n', /clickhouse/i],
    [
      'keys.yaml',
      'apiKeys: "ios:plaintext-key"\n',
      /apiKeys: entry 1 is not <label>:<sha256 hex of the key>/,
    ],
    ['keysfile.yaml', 'apiKeysFile: /nonexistent/keys.txt\n', /apiKeysFile \/nonexistent\/keys\.txt/],
    ['broken.yaml', 'httpPort: [\n', /./],
    ['enum.json', JSON.stringify({ ack: 'sometimes' }), /ack/],
    [
      'querystore-duckdb.yaml',
      'sinks: [kafka]\nkafkaBrokers: 127.0.0.1:9092\nqueryStore: duckdb\n',
      /queryStore duckdb needs duckdb in sinks \(sinks: kafka\).*not even read-only/,
    ],
    [
      'querystore-clickhouse.yaml',
      'sinks: [kafka]\nkafkaBrokers: 127.0.0.1:9092\nqueryStore: clickhouse\n',
      /queryStore clickhouse needs a server: set clickhouseUrl/,
    ],
  ]
  for (const [name, text, expected] of cases) {
    const result = await check(t, name, text)
    assert.equal(result.code, 2, `${name}: ${result.stderr}`)
    assert.match(result.stderr, /^spillway: SPW_ERR_CONFIG_INVALID: /, name)
    assert.match(result.stderr, expected, name)
  }
})

test('every secret-bearing option is masked: passwords in URLs (empty user, @ and / in them), tokens in query strings, secret options', async (t) => {
  const secret = 'S3cret'
  const result = await check(
    t,
    'secrets.yaml',
    [
      'sinks: [clickhouse, nats, http, duckdb]',
      `clickhouseUrl: "http://app:${secret}@pw/x@127.0.0.1:8123"`,
      `redisUrl: "redis://:${secret}Pass@127.0.0.1:6379/0"`,
      `natsUrl: "nats://a:${secret}1@127.0.0.1:4222, nats://b:${secret}2@127.0.0.1:4223"`,
      `httpSinkUrl: "https://hooks.example.com/in?owner=ops@example.com&token=${secret}3&Signature=${secret}4#f"`,
      `kafkaPassword: "${secret}6"`,
      `clickhousePassword: "${secret}7"`,
      `httpSinkHeaders: "Authorization: Bearer ${secret}8"`,
    ].join('\n'),
  )
  assert.equal(result.code, 0, result.stderr)
  const config = result.config!
  assert.ok(!JSON.stringify(config).includes(secret), JSON.stringify(config, null, 1))
  assert.equal(config['clickhouseUrl'], 'http://app:***@127.0.0.1:8123')
  assert.equal(config['redisUrl'], 'redis://:***@127.0.0.1:6379/0')
  assert.equal(config['natsUrl'], 'nats://a:***@127.0.0.1:4222, nats://b:***@127.0.0.1:4223')
  assert.equal(
    config['httpSinkUrl'],
    'https://hooks.example.com/in?owner=ops@example.com&token=***&Signature=***#f',
  )
  for (const name of ['kafkaPassword', 'clickhousePassword', 'httpSinkHeaders'])
    assert.equal(config[name], '(set)', name)
})

test('a URL a sink refuses is named without its password', async (t) => {
  const cases: [string, string][] = [
    ['http.yaml', 'sinks: [http]\nhttpSinkUrl: "https://u:S3cret x@host/in"\n'],
    ['ch.yaml', 'sinks: [clickhouse]\nclickhouseUrl: "http://u:S3/cret@[bad/"\n'],
    ['nats.yaml', 'sinks: [nats]\nnatsUrl: "nats://u:S3/cret@[bad"\n'],
    ['kafka.yaml', 'sinks: [kafka]\nkafkaBrokers: "user:S3cret@127.0.0.1:9092"\n'],
  ]
  for (const [name, text] of cases) {
    const result = await check(t, name, text)
    assert.equal(result.code, 2, `${name}: ${result.stderr}`)
    assert.doesNotMatch(result.stderr, /S3/, name)
  }
})

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ADDRESS_OPTION, maskConfig, maskUrl, maskUrls, SECRET_OPTION } from '../../../src/config/mask.ts'
import { OPTIONS } from '../../../src/config/schema.ts'

test('a URL loses its password, whatever the password holds, and keeps the rest byte for byte', () => {
  const cases: [string, string][] = [
    ['redis://:S3cretPass@127.0.0.1:6379/0', 'redis://:***@127.0.0.1:6379/0'],
    ['http://app:hunter2@127.0.0.1:8123', 'http://app:***@127.0.0.1:8123'],
    ['redis://:p@ss@host:6379', 'redis://:***@host:6379'],
    ['redis://:p@ss/w@rd@host:6379/1', 'redis://:***@host:6379/1'],
    ['redis://:pa/ss@host:6379', 'redis://:***@host:6379'],
    ['redis://:p%40ss@host', 'redis://:***@host'],
    ['https://TOKEN123@git.example.com/x', 'https://***@git.example.com/x'],
    ['user:pw@broker:9092', 'user:***@broker:9092'],
    ['http://127.0.0.1:8123', 'http://127.0.0.1:8123'],
    ['https://h.example.com/in?owner=ops@example.com', 'https://h.example.com/in?owner=ops@example.com'],
    [
      'https://h/in?token=abc&x=1&api_key=k&Signature=s&X-Amz-Credential=c&page=2#top',
      'https://h/in?token=***&x=1&api_key=***&Signature=***&X-Amz-Credential=***&page=2#top',
    ],
    ['https://u:p@h/in?access%5Ftoken=t', 'https://u:***@h/in?access%5Ftoken=***'],
    ['', ''],
  ]
  for (const [raw, masked] of cases) assert.equal(maskUrl(raw), masked, raw)
  assert.equal(
    maskUrls('nats://a:x@h1:4222, nats://b:y@h2:4222,nats://h3:4222'),
    'nats://a:***@h1:4222, nats://b:***@h2:4222,nats://h3:4222',
  )
})

test('every option of the schema that can hold a secret is masked: by name, or as an address', () => {
  const names = Object.keys(OPTIONS)
  const secrets = names.filter((n) => SECRET_OPTION.test(n))
  const addresses = names.filter((n) => !SECRET_OPTION.test(n) && ADDRESS_OPTION.test(n))
  for (const known of ['kafkaPassword', 'clickhousePassword', 'httpSinkHeaders'])
    assert.ok(secrets.includes(known), known)
  for (const known of ['clickhouseUrl', 'redisUrl', 'natsUrl', 'httpSinkUrl', 'kafkaBrokers'])
    assert.ok(addresses.includes(known), known)
  assert.ok(!secrets.includes('apiKeys'), 'apiKeys holds digests, not keys: shown')

  const config: Record<string, unknown> = {}
  for (const [name, spec] of Object.entries(OPTIONS))
    config[name] = spec.type === 'string' ? `x://u:Secret-${name}@h/p?token=Secret-${name}` : spec.default
  const shown = maskConfig(config)
  for (const [name, value] of Object.entries(shown))
    assert.ok(!String(value).includes('Secret'), `${name}: ${String(value)}`)
  assert.equal(shown['kafkaPassword'], '(set)')
  assert.equal(maskConfig({ kafkaPassword: '' })['kafkaPassword'], '(not set)')
})

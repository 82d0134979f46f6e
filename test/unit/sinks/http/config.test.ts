import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadConfig } from '../../../../src/config/load.ts'
import { httpSinkOptions, parseHeaders } from '../../../../src/sinks/http/config.ts'

test('httpSinkHeaders as a JSON object or as "Name: value" entries', () => {
  assert.deepEqual(parseHeaders(''), {})
  assert.deepEqual(parseHeaders('  '), {})
  assert.deepEqual(parseHeaders('{"Authorization":"Bearer a,b","X-Tenant":"7"}'), {
    authorization: 'Bearer a,b',
    'x-tenant': '7',
  })
  assert.deepEqual(parseHeaders('Authorization: Bearer abc, X-Tenant: 7'), {
    authorization: 'Bearer abc',
    'x-tenant': '7',
  })
  assert.deepEqual(parseHeaders('Authorization: Bearer abc\nX-Url: http://a:1/b\n'), {
    authorization: 'Bearer abc',
    'x-url': 'http://a:1/b',
  })
})

test('bad httpSinkHeaders fail naming the option', () => {
  for (const bad of [
    '{"a":1}',
    '{not json',
    '["a"]',
    'no colon here',
    ': empty name',
    'bad name: x',
    '{"a":"x\\ny"}',
  ]) {
    assert.throws(() => parseHeaders(bad), /option httpSinkHeaders/, bad)
  }
})

test('the http sink needs httpSinkUrl, an http(s) URL', () => {
  const base = { sinks: ['duckdb', 'http'] }
  assert.throws(
    () => httpSinkOptions(loadConfig({ env: {}, overrides: base }), 'http'),
    /set httpSinkUrl \(SPILLWAY_HTTP_SINK_URL/,
  )
  assert.throws(
    () => loadConfig({ env: { SPILLWAY_HTTP_SINK_URL: 'ftp://x' }, overrides: base }),
    /option httpSinkUrl .*http:\/\/ or https:\/\//,
  )
  const config = loadConfig({
    env: {
      SPILLWAY_HTTP_SINK_URL: 'http://127.0.0.1:9999/in',
      SPILLWAY_HTTP_SINK_HEADERS: 'X-Key: k',
      SPILLWAY_HTTP_SINK_GZIP: 'false',
    },
    overrides: base,
  })
  assert.deepEqual(httpSinkOptions(config, 'http'), {
    name: 'http',
    url: 'http://127.0.0.1:9999/in',
    timeoutMs: 10_000,
    headers: { 'x-key': 'k' },
    gzip: false,
    logger: undefined,
  })
})

test('delivery timeout and breaker options have their defaults', () => {
  const config = loadConfig({ env: {} })
  assert.equal(config.deliveryTimeoutMs, 30_000)
  assert.equal(config.breakerFailures, 5)
  assert.equal(config.breakerOpenMs, 5000)
  assert.equal(config.breakerMaxOpenMs, 60_000)
  assert.equal(config.httpSinkGzip, true)
  assert.equal(config.httpSinkTimeoutMs, 10_000)
})

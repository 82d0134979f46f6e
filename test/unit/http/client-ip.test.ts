import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { test } from 'node:test'
import { parseTrustProxy } from '../../../src/http/client-ip.ts'

const request = (peer: string, forwarded?: string) =>
  ({
    socket: { remoteAddress: peer },
    headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded },
  }) as unknown as IncomingMessage

test('trustProxy off: the peer is the client, X-Forwarded-For is ignored', () => {
  assert.equal(parseTrustProxy(''), undefined)
  assert.equal(parseTrustProxy('0'), undefined)
})

test('a list of proxies: X-Forwarded-For read from the right, trusted hops skipped', () => {
  const trusted = parseTrustProxy('10.0.0.0/8, 192.0.2.1, loopback')!
  assert.equal(trusted.clientIp(request('203.0.113.9', '1.2.3.4')), '203.0.113.9', 'an untrusted peer')
  assert.equal(trusted.clientIp(request('10.1.1.1', '198.51.100.7, 203.0.113.5')), '203.0.113.5')
  assert.equal(trusted.clientIp(request('10.1.1.1', '203.0.113.5, 192.0.2.1')), '203.0.113.5', 'two proxies')
  assert.equal(
    trusted.clientIp(request('::ffff:127.0.0.1', '2001:db8::5')),
    '2001:db8::5',
    'IPv4-mapped peer',
  )
  assert.equal(trusted.clientIp(request('127.0.0.1')), '127.0.0.1', 'no header')
  assert.equal(trusted.clientIp(request('10.1.1.1', '10.2.2.2')), '10.2.2.2', 'all trusted: the leftmost')
  assert.equal(trusted.trusts('10.9.9.9', 0), true)
  assert.equal(trusted.trusts('11.0.0.1', 0), false)
})

test('a hop count trusts that many nearest hops, whatever they are', () => {
  const two = parseTrustProxy('2')!
  assert.equal(two.clientIp(request('192.0.2.1', 'spoofed, 203.0.113.5, 10.0.0.1')), '203.0.113.5')
  assert.equal(two.clientIp(request('192.0.2.1', '203.0.113.5')), '203.0.113.5')
})

test('a bad entry is named', () => {
  for (const bad of ['10.0.0.0/33', 'proxy.example.com', '::1/129', '10.0.0.1/x']) {
    assert.throws(
      () => parseTrustProxy(bad),
      (error: Error & { code?: string }) =>
        error.code === 'SPW_ERR_CONFIG_INVALID' &&
        error.message.includes(`option trustProxy: ${JSON.stringify(bad)}`),
      bad,
    )
  }
})

/**
 * `accessLog`: one `HttpRequestServed` line per request at info, the same fields on the ingest
 * handler and on the fastify routes; none at all when off.
 */
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { loadConfig } from '../../../src/config/load.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'
import type { WalWriter } from '../../../src/wal/writer.ts'
import { stubApp } from '../../helpers/app-stubs.ts'

async function setup(t: { after: (fn: () => Promise<void>) => void }, accessLog: boolean, trustProxy = '') {
  const config = loadConfig({ env: {}, overrides: { logLevel: 'info', accessLog, trustProxy } })
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l))
      done()
    },
  })
  const wal = { append: async () => 0 } as unknown as WalWriter
  const { app } = await stubApp(t, config, wal, createLogger('info', stream))
  const served = () => lines.filter((l) => l['msg'] === 'HttpRequestServed')
  return { app, served }
}

const now = Math.floor(Date.now() / 1000)
const event = { event_name: 'v', channel: 'web', user_id: 'u', timestamp: now }

test('access log on: one line per request on the ingest handler and on fastify routes', async (t) => {
  const { app, served } = await setup(t, true, 'loopback')
  const ingest = await app.inject({
    method: 'POST',
    url: '/events?wait=true',
    payload: event,
    headers: { 'x-request-id': 'req-1', 'x-forwarded-for': '203.0.113.9' },
    remoteAddress: '127.0.0.1',
  })
  assert.equal(ingest.statusCode, 202)
  await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'req-2' } })
  await new Promise((resolve) => setImmediate(resolve))
  const lines = served()
  assert.equal(lines.length, 2, JSON.stringify(lines))
  const [a, b] = lines
  assert.deepEqual(
    [a['level'], a['method'], a['path'], a['status'], a['reqId'], a['client'], a['bytes'], a['received']],
    [30, 'POST', '/events', 202, 'req-1', '203.0.113.9', ingest.body.length, JSON.stringify(event).length],
  )
  assert.equal(typeof a['ms'], 'number')
  assert.deepEqual([b['method'], b['path'], b['status'], b['reqId']], ['GET', '/health', 200, 'req-2'])
  assert.equal(typeof b['ms'], 'number')
  assert.equal(typeof b['client'], 'string')
})

test('access log off (the default): no line', async (t) => {
  const { app, served } = await setup(t, false)
  await app.inject({ method: 'POST', url: '/events', payload: event })
  await app.inject({ method: 'GET', url: '/health' })
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(served().length, 0)
})

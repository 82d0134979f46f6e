/**
 * What an unauthenticated client learns when a store is down: a generic sentence in `/ready` and
 * `GET /metrics` answers, never an address, errno or driver message; those go to the log, with
 * the request id.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { PassThrough } from 'node:stream'
import { test } from 'node:test'
import { loadConfig } from '../../../src/config/load.ts'
import { startServer } from '../../../src/server.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'
import { send } from '../../helpers/http.ts'
import { makeTempDir, removeTempDir } from '../../helpers/temp-dir.ts'

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

test('a store that is down: /ready and GET /metrics say so generically; the details are logged with the request id', async (t) => {
  const port = await closedPort()
  const dataDir = await makeTempDir('spillway-test-')
  const config = loadConfig({
    env: {},
    overrides: {
      httpPort: 0,
      metricsPort: 0,
      host: '127.0.0.1',
      dataDir,
      logLevel: 'debug',
      sinks: ['clickhouse'],
      clickhouseUrl: `http://127.0.0.1:${port}`,
    },
  })
  const lines: string[] = []
  const stream = new PassThrough()
  stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter(Boolean)))
  const server = await startServer(config, createLogger(config.logLevel, stream))
  t.after(async () => {
    await server.close()
    await removeTempDir(dataDir)
  })
  const internal = new RegExp(`ECONNREFUSED|127\\.0\\.0\\.1|${port}|fetch failed|ClickHouse query failed`)

  const ready = await send(`${server.url}/ready`, { headers: { 'x-request-id': 'ready-1' } })
  assert.equal(ready.status, 503)
  assert.doesNotMatch(JSON.stringify(ready.body), internal)
  assert.match(ready.body.error, /sink clickhouse is not answering/)
  assert.equal(ready.body.details.sinks.clickhouse.ok, false, 'the shape of the details stays')

  const query = await send(`${server.url}/metrics?event_name=x`, { headers: { 'x-request-id': 'query-1' } })
  assert.equal(query.status, 503)
  assert.equal(query.headers['retry-after'], '1')
  assert.deepEqual(query.body, { error: 'the query store is unavailable; retry' })

  const logged = (id: string) =>
    lines.filter((line) => line.includes(`"reqId":"${id}"`) && internal.test(line)).length
  assert.ok(logged('ready-1') > 0, 'the readiness details are logged with the request id')
  assert.ok(logged('query-1') > 0, 'the query error is logged with the request id')
})

/**
 * `spillway consume` has an operations port like `serve`: `/health`, `/ready` (its pipeline and the
 * log it reads), the dashboard's feed. Real processes and a real NATS server.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { after, before, test } from 'node:test'
import { type NatsServer, startNats, uniqueStream } from '../helpers/nats.ts'
import { type ServerProcess, startServerProcess } from '../helpers/server-process.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'
import { eventually } from '../helpers/wait.ts'

let nats: NatsServer
before(async () => {
  nats = await startNats()
})
after(async () => {
  await nats?.stop()
})

async function consume(t: { after(fn: () => Promise<void>): void }, natsUrl: string): Promise<ServerProcess> {
  const dataDir = await makeTempDir('spillway-consume-ops-')
  const stream = uniqueStream('OPS')
  const server = await startServerProcess(
    dataDir,
    {
      SPILLWAY_SINKS: 'duckdb',
      SPILLWAY_CONSUME_FROM: 'nats',
      NATS_URL: natsUrl,
      SPILLWAY_NATS_STREAM: stream,
      SPILLWAY_NATS_CONSUMER: `${stream}_c`,
    },
    [],
    'consume',
  )
  t.after(async () => {
    server.kill('SIGTERM')
    await server.exited()
    await removeTempDir(dataDir)
  })
  return server
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

test('consume: /health and /ready on the operations port; ready names its source and sinks', {
  timeout: 120_000,
}, async (t) => {
  const node = await consume(t, nats.url)
  assert.equal((await fetch(`${node.metricsUrl}/health`)).status, 200)
  const ready = await eventually(async () => {
    const answer = await fetch(`${node.metricsUrl}/ready`)
    return answer.status === 200 && ((await answer.json()) as Record<string, any>)
  }, 'the consumer is ready')
  assert.equal(ready['status'], 'ready')
  assert.equal(ready['details']['source']['ok'], true)
  assert.equal(ready['details']['sinks']['duckdb']['ok'], true)
  const stats = await fetch(`${node.metricsUrl}/api/stats`)
  assert.equal(stats.status, 200)
})

test('consume: /ready is 503 naming the source while the log does not answer', {
  timeout: 120_000,
}, async (t) => {
  const node = await consume(t, `nats://127.0.0.1:${await closedPort()}`)
  const answer = await fetch(`${node.metricsUrl}/ready`)
  assert.equal(answer.status, 503)
  const body = (await answer.json()) as Record<string, any>
  assert.equal(body['details']['source']['ok'], false)
})

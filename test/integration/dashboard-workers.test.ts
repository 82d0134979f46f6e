/**
 * `serve --workers 2` as real processes: the primary's feed sums what both workers took, like its
 * Prometheus endpoint, and shows both workers and shards.
 */
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { test } from 'node:test'
import type { Stats } from '../../src/dashboard/feed.ts'
import { startServerProcess } from '../helpers/server-process.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'
import { eventually } from '../helpers/wait.ts'

/** One request on a connection of its own, so node:cluster hands them to both workers. */
function post(url: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/events/batch`,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

test('with two workers the feed sums both workers and shows both shards', async (t) => {
  const dataDir = await makeTempDir('spillway-dash-workers-')
  const server = await startServerProcess(dataDir, { SPILLWAY_DELIVERY_LINGER_MS: '20' }, ['--workers', '2'])
  t.after(async () => {
    server.kill('SIGTERM')
    await server.exited()
    await removeTempDir(dataDir)
  })
  const REQUESTS = 24
  const PER_REQUEST = 5
  const now = Math.floor(Date.now() / 1000) - 5
  for (let r = 0; r < REQUESTS; r++) {
    const events = Array.from({ length: PER_REQUEST }, (_, i) => ({
      event_id: `w-${r}-${i}`,
      event_name: 'page_view',
      channel: 'web',
      user_id: `u-${i}`,
      timestamp: now,
    }))
    assert.equal(await post(server.url, JSON.stringify(events)), 202)
  }
  const N = REQUESTS * PER_REQUEST
  const stats = await eventually(
    async () => {
      const s = (await (await fetch(`${server.metricsUrl}/api/stats`)).json()) as Stats
      return s.totals.events.accepted === N && s.sinks[0]?.deliveredTotal === N && s
    },
    `${N} events accepted across the workers in the feed`,
    30_000,
  )
  assert.deepEqual(stats.node.workers, { configured: 2, running: 2, restarts: 0 })
  assert.equal(stats.node.shards.length, 2)
  assert.ok(
    stats.node.shards.every((s) => s.headBytes > 0),
    `both workers took requests: ${JSON.stringify(stats.node.shards)}`,
  )
  assert.equal(stats.totals.requests['202'], REQUESTS)
  // /health and /ready on the primary's operations port.
  assert.equal((await fetch(`${server.metricsUrl}/health`)).status, 200)
  const ready = await fetch(`${server.metricsUrl}/ready`)
  assert.equal(ready.status, 200)
  const body = (await ready.json()) as { details: { workers: { running: number } } }
  assert.equal(body.details.workers.running, 2)
})

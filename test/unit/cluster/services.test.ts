/**
 * What the primary answers a worker (src/cluster/services.ts), over a pair of in-memory channels:
 * queries and readiness from the node, rate-limit tokens only when limits are on, head reports;
 * and the cluster's part of /ready.
 */
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { test } from 'node:test'
import { type Channel, Rpc } from '../../../src/cluster/ipc.ts'
import { clusterReadiness, type PrimaryServices, serveWorker } from '../../../src/cluster/services.ts'

class End extends EventEmitter implements Channel {
  peer: End | undefined
  send(message: unknown, callback?: (error: Error | null) => void): boolean {
    const copy = JSON.parse(JSON.stringify(message))
    setImmediate(() => {
      this.peer!.emit('message', copy)
      callback?.(null)
    })
    return true
  }
}

function connect(services: PrimaryServices, shard = 3): Rpc {
  const primary = new End()
  const worker = new End()
  primary.peer = worker
  worker.peer = primary
  serveWorker(new Rpc(primary), shard, services)
  return new Rpc(worker)
}

const none = () => Promise.reject(new Error('unused'))
const base: PrimaryServices = {
  query: { totals: none, groups: none, topEvents: none, series: none },
  readiness: async () => ({ ok: true }),
  limiter: undefined,
  reportHead: () => {},
}

test('queries and readiness are the node’s; head reports name their shard', async () => {
  const heads: unknown[] = []
  const worker = connect({
    ...base,
    query: { ...base.query, totals: async (q) => ({ total_events: q.event_name.length, unique_users: 1 }) },
    readiness: async () => ({ ok: false, error: 'sink down' }),
    reportHead: (shard, head) => heads.push([shard, head]),
  })
  assert.deepEqual(await worker.call('totals', { event_name: 'abcd' }, 1000), {
    total_events: 4,
    unique_users: 1,
  })
  assert.deepEqual(await worker.call('ready', null, 1000), { ok: false, error: 'sink down' })
  await worker.note('head', 4096)
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(heads, [[3, 4096]])
})

test('a token is the node’s bucket when rate limits are on, an error when they are off', async () => {
  const off = connect(base)
  await assert.rejects(off.call('token', 'k', 1000), /rate limits are off/)
  const on = connect({
    ...base,
    limiter: {
      take: async (client) => ({
        allowed: client === 'k',
        remaining: 0,
        resetSeconds: 1,
        retryAfterSeconds: 1,
      }),
      close: async () => {},
    },
  })
  assert.equal(((await on.call('token', 'k', 1000)) as { allowed: boolean }).allowed, true)
})

test('the cluster’s readiness shows the workers and shards and keeps the node’s verdict', () => {
  const node = { ok: true, details: { wal: { ok: true } } }
  const ready = clusterReadiness(node, {
    workers: 2,
    running: 1,
    restarts: 3,
    shards: [{ shard: 0, head: 10, backlogBytes: 0 }],
  })
  assert.equal(ready.ok, true)
  assert.deepEqual(ready.details, {
    wal: { ok: true },
    workers: { ok: false, running: 1, workers: 2, restarts: 3 },
    shards: [{ shard: 0, head: 10, backlogBytes: 0 }],
  })
})

/**
 * The app of test/crash/client-kill.test.ts: a process that tracks events through a durable
 * client and says, on stdout, which ones track() resolved (`ok <seq> <event_id>`), so the test
 * knows what was promised when it SIGKILLs this process. Configured by environment:
 * SPW_URL, SPW_QUEUE_DIR, SPW_FROM, SPW_TO (event sequence numbers), SPW_GEN (this run's number).
 */
import { SpillwayClient } from '../../packages/client/src/index.ts'
import { FileQueue } from '../../packages/client/src/node.ts'

const env = (name: string) => {
  const value = process.env[name]
  if (value === undefined) throw new Error(`${name} is not set`)
  return value
}
const from = Number(env('SPW_FROM'))
const to = Number(env('SPW_TO'))
const gen = Number(env('SPW_GEN'))
const GROUP = 50

const store = await FileQueue.open(env('SPW_QUEUE_DIR'))
const client = new SpillwayClient({
  url: env('SPW_URL'),
  store,
  batchEvents: 200,
  flushIntervalMs: 20,
  maxQueueEvents: 20_000,
  retry: { minMs: 50, maxMs: 300 },
  onError: (e) => process.stdout.write(`error ${e.code} ${e.message}\n`),
})
process.stdout.write(`recovered ${store.recovered.length}\n`)
const timestamp = Math.floor(Date.now() / 1000)
for (let seq = from; seq < to; seq += GROUP) {
  const group: Promise<string>[] = []
  for (let i = seq; i < Math.min(seq + GROUP, to); i++) {
    group.push(
      client
        .track({
          event_name: 'client_durable',
          user_id: `seq-${i}`,
          channel: 'api',
          timestamp,
          metadata: { gen },
        })
        .then((r) => `ok ${i} ${r.event_id}\n`),
    )
  }
  process.stdout.write((await Promise.all(group)).join(''))
}
process.stdout.write('tracked\n')
await client.close()
process.stdout.write(`closed ${JSON.stringify(client.stats)}\n`)

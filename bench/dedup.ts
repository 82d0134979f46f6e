/**
 * What deduplication costs: the same load against three servers in one run —
 *   off:    no dedup at all (SPILLWAY_DEDUP_CACHE_ENTRIES=0, no Redis),
 *   l1:     the default (in-process L1 + the delivery-time cache),
 *   l1+l2:  the default plus Redis L2 (a private redis-server started by scripts/redis.sh),
 * for single-event requests (accepted req/s) and NDJSON batches of 1000 (accepted events/s and
 * DuckDB delivery rows/s — L2's round trip is on the delivery path, not on the request path).
 * Every event is unique: the worst case, since every key is looked up and claimed.
 *   node bench/dedup.ts [--seconds 10]
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from '../src/cli/args.ts'
import { BENCH_DIR, ensureWrk, machine, round, startSpillway, stopGracefully, wrk } from './lib.ts'
import { measureBatchLoad } from './ndjson-batch.ts'

const REDIS = join(BENCH_DIR, '../scripts/redis.sh')

export async function benchDedup(seconds = 10) {
  await ensureWrk()
  const redisDir = mkdtempSync(join(tmpdir(), 'spillway-bench-redis-'))
  const redisUrl = execFileSync('bash', [REDIS, 'start', redisDir], { encoding: 'utf8' }).trim()
  try {
    const configs = {
      off: { SPILLWAY_DEDUP_CACHE_ENTRIES: '0' },
      l1: {},
      'l1+l2': { REDIS_URL: redisUrl },
    } as const
    const single: Record<string, { reqPerSec: number; p99Ms: number; non2xx: number }> = {}
    const batch: Record<string, { eventsPerSec: number; deliveryRowsPerSec: number; p99Ms: number }> = {}
    for (const [name, env] of Object.entries(configs)) {
      const server = await startSpillway(env)
      await wrk(`${server.url}/events`, 'single-event.lua', { seconds: 2, connections: 64 })
      const run = await wrk(`${server.url}/events`, 'single-event.lua', { seconds, connections: 64 })
      await stopGracefully(server)
      single[name] = { reqPerSec: round(run.requestsPerSec), p99Ms: run.latencyMs.p99, non2xx: run.non2xx }
      const load = await measureBatchLoad(env, seconds, 8)
      batch[name] = {
        eventsPerSec: load.eventsPerSec,
        deliveryRowsPerSec: load.deliveryRowsPerSec,
        p99Ms: load.p99Ms,
      }
    }
    const ratio = (a: number, b: number) => round(a / b, 2)
    return {
      benchmark: 'dedup cost: off vs L1 vs L1 + Redis L2, unique events, durable ack, DuckDB',
      machine: machine(),
      seconds,
      single,
      batch,
      ratios: {
        singleL2VsL1: ratio(single['l1+l2'].reqPerSec, single['l1'].reqPerSec),
        singleL1VsOff: ratio(single['l1'].reqPerSec, single['off'].reqPerSec),
        batchAcceptedL2VsL1: ratio(batch['l1+l2'].eventsPerSec, batch['l1'].eventsPerSec),
        batchDeliveryL2VsL1: ratio(batch['l1+l2'].deliveryRowsPerSec, batch['l1'].deliveryRowsPerSec),
        batchAcceptedL1VsOff: ratio(batch['l1'].eventsPerSec, batch['off'].eventsPerSec),
      },
    }
  } finally {
    execFileSync('bash', [REDIS, 'stop', redisDir])
    rmSync(redisDir, { recursive: true, force: true })
  }
}

if (import.meta.main) {
  const { flags } = parseArgs(process.argv.slice(2))
  const result = await benchDedup(Number(flags['seconds'] ?? 10))
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
  process.exit(0)
}

/**
 * Single-event POST /events with durable acks (202 after fdatasync), one Spillway process,
 * against a bare node:http server measured in the same run. Target: ratio ≥ 0.7.
 *   node bench/single-event.ts [--seconds 10] [--connections 64]
 */
import { parseArgs } from '../src/cli/args.ts'
import { ensureWrk, machine, round, startBaseline, startSpillway, stopGracefully, wrk } from './lib.ts'

export async function benchSingleEvent(seconds = 10, connections = 64) {
  await ensureWrk()
  const baseline = await startBaseline()
  await wrk(`${baseline.url}/events`, 'single-event.lua', { seconds: 2, connections }) // warm-up
  const bare = await wrk(`${baseline.url}/events`, 'single-event.lua', { seconds, connections })
  await baseline.stop()

  const spillway = await startSpillway()
  await wrk(`${spillway.url}/events`, 'single-event.lua', { seconds: 2, connections })
  const durable = await wrk(`${spillway.url}/events`, 'single-event.lua', { seconds, connections })
  await stopGracefully(spillway)

  return {
    benchmark: 'single-event POST /events, durable ack',
    machine: machine(),
    seconds,
    connections,
    baseline: { reqPerSec: round(bare.requestsPerSec), p99Ms: bare.latencyMs.p99 },
    spillway: {
      reqPerSec: round(durable.requestsPerSec),
      p50Ms: durable.latencyMs.p50,
      p99Ms: durable.latencyMs.p99,
      non2xx: durable.non2xx,
    },
    ratio: round(durable.requestsPerSec / bare.requestsPerSec, 2),
    target: 0.7,
  }
}

if (import.meta.main) {
  const { flags } = parseArgs(process.argv.slice(2))
  const result = await benchSingleEvent(Number(flags['seconds'] ?? 10), Number(flags['connections'] ?? 64))
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
}

/**
 * `spillway consume` throughput: a log (Kafka, JetStream) already holding `--events` events is
 * loaded into ClickHouse by one `spillway consume` process, against real servers started for the
 * run (scripts/kafka.sh, scripts/nats.sh, scripts/clickhouse.sh; data under BENCH_TMP or the temp
 * dir). The log is filled first by the project's own sinks (`write()` of NDJSON batches of 20,000
 * events, no HTTP), then the consumer starts and ClickHouse's `count()` is sampled every 250 ms
 * until every event is stored: rows/s from its start (`ConsumerStarted`: the group joined, the
 * durable consumer bound) to the last row, with offsets committed only
 * after ClickHouse confirmed. Runs with and without Redis (L2 claims on every batch).
 * Baseline in the same run: the same number of rows, already encoded and gzip'd, inserted straight
 * into ClickHouse from one connection (bench/clickhouse.ts) — the store's own ceiling here.
 *   node bench/consume.ts [--events 600000] [--logs kafka,nats]
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { parseArgs } from '../src/cli/args.ts'
import { loadConfig } from '../src/config/load.ts'
import { ClickHouseClient } from '../src/connectors/clickhouse/client.ts'
import { encodeEvents } from '../src/intake/serialize.ts'
import type { NormalizedEvent } from '../src/intake/types.ts'
import { createSink } from '../src/sinks/registry.ts'
import { createLogger } from '../src/telemetry/logger.ts'
import { startServerProcess } from '../test/helpers/server-process.ts'
import { baselineInserts } from './clickhouse.ts'
import { BENCH_DIR, benchEvent, machine, round, stopGracefully } from './lib.ts'

const run = promisify(execFile)
const script = (name: string) => join(BENCH_DIR, `../scripts/${name}.sh`)
const FILL_BATCH = 20_000
type Log = 'kafka' | 'nats'

export async function benchConsume(events = 600_000, logs: readonly Log[] = ['kafka', 'nats']) {
  const tmp = process.env['BENCH_TMP'] ?? tmpdir()
  const dirs: Record<string, string> = {}
  const start = async (name: string) => {
    dirs[name] = await mkdtemp(join(tmp, `spillway-bench-${name}-`))
    return (await run('bash', [script(name), 'start', dirs[name]], { timeout: 300_000 })).stdout
      .trim()
      .split('\n')
      .pop()!
  }
  try {
    const clickhouseUrl = await start('clickhouse')
    const redisUrl = await start('redis')
    const client = new ClickHouseClient({ url: clickhouseUrl })
    const baseline = await baselineInserts(clickhouseUrl, client)
    const results: Record<string, unknown> = {}
    for (const log of logs) {
      const where = await start(log)
      const logEnv: Record<string, string> = log === 'kafka' ? { KAFKA_BROKERS: where } : { NATS_URL: where }
      const fill = await fillLog(log, logEnv, events)
      const alone = await consume(log, logEnv, clickhouseUrl, client, events, 'bench_consume_1', {})
      const withRedis = await consume(log, logEnv, clickhouseUrl, client, events, 'bench_consume_2', {
        REDIS_URL: redisUrl,
        // Claims of its own: another run's claims on the same ids would (rightly) drop every event.
        SPILLWAY_REDIS_KEY_PREFIX: `bench-${log}-${Date.now()}:`,
      })
      results[log] = {
        fillEventsPerSec: fill,
        consumeRowsPerSec: alone,
        consumeWithRedisRowsPerSec: withRedis,
        ratioToClickHouseAlone: round(alone / baseline.rowsPerSec, 2),
      }
      await run('bash', [script(log), 'stop', dirs[log]])
    }
    return {
      benchmark: 'spillway consume: a log into ClickHouse',
      machine: machine(),
      events,
      baseline: { clickhouseInsertRowsPerSec: baseline.rowsPerSec },
      ...results,
    }
  } finally {
    for (const [name, dir] of Object.entries(dirs)) {
      await run('bash', [script(name), 'stop', dir]).catch(() => {})
      await rm(dir, { recursive: true, force: true })
    }
  }
}

/** Writes `count` events to the log through the project's own sink; answers events/s. */
async function fillLog(log: Log, env: Record<string, string>, count: number): Promise<number> {
  const config = loadConfig({ env, overrides: { sinks: [log], logLevel: 'silent' } })
  const sink = createSink(log, config, createLogger('silent'))
  await sink.open()
  const now = Math.floor(Date.now() / 1000) - 60
  const started = performance.now()
  for (let from = 0; from < count; from += FILL_BATCH) {
    const batch: NormalizedEvent[] = []
    for (let n = from; n < Math.min(count, from + FILL_BATCH); n++) {
      batch.push(benchEvent(n, `consume-${log}-${n}`, 'bench_consume', now))
    }
    const ndjson = encodeEvents(batch)
    const verdict = await sink.write({ events: batch, ndjson, from, to: from + batch.length })
    if (verdict.kind !== 'delivered') throw new Error(`filling ${log}: ${JSON.stringify(verdict)}`)
  }
  const elapsed = (performance.now() - started) / 1000
  await sink.close()
  return round(count / elapsed)
}

/** One `spillway consume` process from the start of the log into a new database; rows/s. */
async function consume(
  log: Log,
  logEnv: Record<string, string>,
  clickhouseUrl: string,
  client: ClickHouseClient,
  events: number,
  database: string,
  extra: Record<string, string>,
): Promise<number> {
  const dataDir = await mkdtemp(join(process.env['BENCH_TMP'] ?? tmpdir(), 'spillway-bench-consume-'))
  const proc = await startServerProcess(
    dataDir,
    {
      ...logEnv,
      ...extra,
      SPILLWAY_SINKS: 'clickhouse',
      SPILLWAY_CONSUME_FROM: log,
      CLICKHOUSE_URL: clickhouseUrl,
      CLICKHOUSE_DATABASE: database,
      // A group / durable consumer of its own: every run reads the log from its start.
      SPILLWAY_KAFKA_GROUP: database,
      SPILLWAY_NATS_CONSUMER: database,
    },
    [],
    'consume',
  )
  // From ConsumerStarted (the group joined / the consumer bound): the load, not the process start.
  const started = performance.now()
  let stored = 0
  const deadline = Date.now() + 600_000
  while (stored < events) {
    if (Date.now() > deadline)
      throw new Error(`consume stalled at ${stored} of ${events} rows; see ${proc.logFile}`)
    await new Promise((r) => setTimeout(r, 250))
    stored = Number(
      (await client.query(`SELECT count() FROM ${database}.events`).catch(() => '0')).toString().trim(),
    )
  }
  const elapsed = (performance.now() - started) / 1000
  await stopGracefully(proc)
  await client.query(`DROP DATABASE ${database}`)
  await rm(dataDir, { recursive: true, force: true })
  return round(events / elapsed)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { flags } = parseArgs(process.argv.slice(2))
  const logs = (flags['logs'] ?? 'kafka,nats').split(',') as Log[]
  benchConsume(Number(flags['events'] ?? 600_000), logs).then(
    (result) => process.stdout.write(`${JSON.stringify(result, null, 2)}\n`),
    (error) => {
      process.stderr.write(`${error.stack ?? error}\n`)
      process.exitCode = 1
    },
  )
}

#!/usr/bin/env node
/**
 * The `spillway` command.
 *   spillway serve [--flag value …]       run the server (flags: see `spillway help`)
 *   spillway consume [--from kafka|nats]  load a log (Kafka, JetStream) into the sinks
 *   spillway wal inspect [--data-dir D]   list WAL segments and records
 *   spillway wal verify [--data-dir D]    check every record's CRC and the segment chain
 *   spillway config check [--config F]    validate configuration and print it
 *   spillway dlq list|replay|purge [opts] inspect / re-submit / drop dead letters (see dlq.ts)
 *   spillway load [options]               load-test an HTTP ingestion endpoint (see load.ts)
 */
import cluster from 'node:cluster'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import type { Channel } from '../cluster/ipc.ts'
import { CONFIG_ENV, EXIT_SHARD_BUSY, SHARD_ENV, startCluster } from '../cluster/primary.ts'
import { existingShards, shardDir, startWorker } from '../cluster/worker.ts'
import { maxRecordBytes, workersOf } from '../config/derived.ts'
import { loadConfig } from '../config/load.ts'
import type { Config, OptionSpec } from '../config/schema.ts'
import { OPTIONS } from '../config/schema.ts'
import { startConsumer } from '../consume/consumer.ts'
import { createLogSource } from '../consume/sources.ts'
import { isSpillwayError } from '../errors.ts'
import { newApiKey } from '../http/auth.ts'
import { startServer } from '../server.ts'
import { createLogger, type Logger } from '../telemetry/logger.ts'
import { inspectWal, verifyWal } from '../wal/inspect.ts'
import { parseArgs } from './args.ts'
import { checkConfig } from './config-check.ts'
import {
  DLQ_FLAGS,
  formatListing,
  formatPurge,
  formatReplay,
  listDlq,
  purgeDlq,
  replayDlq,
  replayExitCode,
} from './dlq.ts'
import { loadCommand } from './load.ts'
import { topCommand } from './top.ts'

/** An option's bounds as the schema enforces them (` [≥ 65536]`, ` [0–65535]`); '' without any. */
function boundsOf(option: OptionSpec): string {
  const { min, max } = option
  if (min !== undefined && max !== undefined) return ` [${min}–${max}]`
  if (min !== undefined) return ` [≥ ${min}]`
  if (max !== undefined) return ` [≤ ${max}]`
  return ''
}

const USAGE = `usage: spillway <command> [options]

commands:
  serve              run the HTTP API, the WAL and delivery; --workers N HTTP worker processes
                       (default: one per core), each with its own WAL shard
  consume            read a log into the sinks (--sinks, default duckdb) through the WAL, dedup and
                       delivery; offsets/acks are committed only once every sink stored the events
                       --from kafka: consumer group --kafka-group on --kafka-topic at --kafka-brokers
                       --from nats:  durable consumer --nats-consumer on --nats-stream at --nats-url
  wal inspect        list the WAL segments under <data-dir>/wal (and each worker's shard)
  wal verify         check every WAL record, shards included; exit 1 on any problem
  config check       validate the configuration (defaults < file < env < flags) and print it
  dlq list           dead-lettered events, newest first, and a count per reason
                       [--sink intake|<sink>] [--limit N] [--all] [--json]
  dlq replay         re-submit pending dead-lettered events to a running server (POST /events/batch)
                       [--url http://127.0.0.1:<http-port>] [--sink intake|<sink>] [--dry-run]
                       [--chunk-events N (≤ 1000)] [--api-key K (or SPILLWAY_API_KEY)] [--json]
                       a line is never sent twice: outcomes are kept in <data-dir>/deadletter/replayed/
  dlq purge          drop dead-lettered entries and free their bytes, safe while the server runs
                       (--reason TEXT | --sink S | --before TIME | --replayed)… | --all [--dry-run]
                       [--json]; dlq drop is the same command
  top                a running server's live figures in the terminal (the dashboard's feed), refreshed
                       in place [--url http://127.0.0.1:9464 (its operations port)] [--api-key K
                       (or SPILLWAY_API_KEY)] [--once: one frame, then exit]
  load               load-test an HTTP ingestion endpoint, Spillway or not: open model (--rate,
                       --stages, presets constant-15k, ramp-spike, producer) or closed (--connections);
                       thresholds set the exit code; --out JSON, --html report; see spillway load --help
  apikey new         a new random API key and its hashed configuration entry [--label L] [--json]
  help               this text

options (each also from its env name, or a config file given by --config / SPILLWAY_CONFIG):
${Object.values(OPTIONS)
  .map((o) => `  --${o.flag.padEnd(28)} ${o.env.join(', ').padEnd(34)} ${o.doc}${boundsOf(o)}`)
  .join('\n')}
`

async function main(argv: readonly string[]): Promise<number> {
  if (cluster.isWorker && process.env[SHARD_ENV] !== undefined) return runWorker()
  const { positional, flags, lists } = parseArgs(argv)
  const [command, sub] = positional
  if (command === 'load') return loadCommand(flags, lists)
  if (command === 'top') return topCommand(flags)
  if (!command || command === 'help' || flags['help']) {
    process.stdout.write(USAGE)
    return command ? 0 : 2
  }
  if (command === 'apikey') {
    if (sub !== 'new') throw usage(`unknown apikey command "${sub ?? ''}"; use new`)
    const made = newApiKey(flags['label'] ?? 'default')
    process.stdout.write(
      flags['json']
        ? `${JSON.stringify(made)}\n`
        : `key (give it to the client; it is not stored anywhere):\n  ${made.key}\nentry (add it to apiKeys / SPILLWAY_API_KEYS, or a line of apiKeysFile):\n  ${made.entry}\n`,
    )
    return 0
  }
  const own = command === 'dlq' ? DLQ_FLAGS : []
  const config = loadConfig({ flags: without(withoutJson(flags), own) })
  switch (command) {
    case 'serve': {
      const workers = workersOf(config, availableParallelism())
      return runUntilSignal(config, 'Server', (logger) =>
        workers === 1 ? startServer(config, logger) : startCluster(config, logger, workers),
      )
    }
    case 'consume':
      return runUntilSignal(config, 'Consumer', async (logger) =>
        startConsumer(config, logger, await createLogSource(config, logger)),
      )
    case 'wal': {
      // The node's WAL, then each worker's shard (`serve --workers N`).
      const shards = existingShards(config.dataDir).map((shard) => ({
        shard,
        dir: join(shardDir(config.dataDir, shard), 'wal'),
      }))
      const dir = join(config.dataDir, 'wal')
      if (sub === 'inspect') {
        const node = await inspectWal(dir)
        const inspected = await Promise.all(
          shards.map(async (s) => ({ shard: s.shard, ...(await inspectWal(s.dir)) })),
        )
        print(inspected.length > 0 ? { ...node, shards: inspected } : node, flags)
        return 0
      }
      if (sub === 'verify') {
        const limit = maxRecordBytes(config)
        const node = await verifyWal(dir, limit)
        const verified = await Promise.all(
          shards.map(async (s) => ({ shard: s.shard, ...(await verifyWal(s.dir, limit)) })),
        )
        const report =
          verified.length === 0
            ? node
            : {
                ...node,
                ok: node.ok && verified.every((s) => s.ok),
                problems: [
                  ...node.problems,
                  ...verified.flatMap((s) => s.problems.map((p) => `shard ${s.shard}: ${p}`)),
                ],
                warnings: [
                  ...node.warnings,
                  ...verified.flatMap((s) => s.warnings.map((w) => `shard ${s.shard}: ${w}`)),
                ],
                shards: verified,
              }
        print(report, flags)
        return report.ok ? 0 : 1
      }
      throw usage(`unknown wal command "${sub ?? ''}"; use inspect or verify`)
    }
    case 'config':
      if (sub === 'check') {
        print(checkConfig(config), flags)
        return 0
      }
      throw usage(`unknown config command "${sub ?? ''}"; use check`)
    case 'dlq':
      if (sub === 'list') {
        const listing = await listDlq(config, flags)
        process.stdout.write(flags['json'] ? `${JSON.stringify(listing)}\n` : formatListing(listing))
        return 0
      }
      if (sub === 'replay') {
        const report = await replayDlq(config, flags)
        process.stdout.write(flags['json'] ? `${JSON.stringify(report)}\n` : formatReplay(report))
        return replayExitCode(report)
      }
      if (sub === 'purge' || sub === 'drop') {
        const purge = await purgeDlq(config, flags)
        process.stdout.write(flags['json'] ? `${JSON.stringify(purge)}\n` : formatPurge(purge))
        return 0
      }
      throw usage(`unknown dlq command "${sub ?? ''}"; use list, replay or purge`)
    default:
      throw usage(`unknown command "${command}"`)
  }
}

/** Starts `start`, waits for SIGTERM/SIGINT, then closes it (drain, checkpoint) and exits 0. */
async function runUntilSignal(
  config: ReturnType<typeof loadConfig>,
  what: 'Server' | 'Consumer',
  start: (logger: Logger) => Promise<{ close(): Promise<void> }>,
): Promise<number> {
  const logger = createLogger(config.logLevel, { format: config.logFormat })
  // Handlers go in before the start: a SIGTERM that arrives while the WAL recovers or just after
  // the first request must still end in a drain and exit 0, not in the default kill.
  const signalled = Promise.withResolvers<string>()
  const onSignal = (signal: string) => signalled.resolve(signal)
  process.once('SIGTERM', onSignal)
  process.once('SIGINT', onSignal)
  watchParent((parentPid) => {
    logger.warn({ parentPid }, `${what}ParentGone`)
    onSignal('parent gone')
  })
  const running = await start(logger)
  const signal = await signalled.promise
  logger.info({ signal }, `${what}ShutdownRequested`)
  let code = 0
  try {
    await running.close()
  } catch (error) {
    logger.error({ err: error }, `${what}ShutdownFailed`)
    code = 1
  }
  // Everything is closed and drained. A client library that leaves a handle behind (a socket, a
  // timer) must not turn a clean stop into a process that never exits: after a grace period the
  // process says what held it and exits anyway. The timer is unref'd, so it fires only if
  // something else still keeps the process alive.
  setTimeout(() => {
    const handles = process.getActiveResourcesInfo()
    logger.warn({ handles }, `${what}ExitLingering`)
    logger.flush()
    process.exit(code)
  }, EXIT_GRACE_MS).unref()
  logger.flush()
  return code
}

const EXIT_GRACE_MS = 5000
const PARENT_POLL_MS = 1000

/**
 * Calls `onGone` once when the process that started this one dies: the process is reparented, so
 * `process.ppid` changes. `kill <pid of npm start>` reaches only npm's `sh -c` child, and a parent
 * killed with SIGKILL warns nobody; without this the server ran on as an orphan. A parent that is
 * init from the start (a container's entry point, a systemd service) never changes: nothing to do.
 */
function watchParent(onGone: (parentPid: number) => void): void {
  const parentPid = process.ppid
  const timer = setInterval(() => {
    if (process.ppid === parentPid) return
    clearInterval(timer)
    onGone(parentPid)
  }, PARENT_POLL_MS)
  timer.unref()
}

/**
 * An HTTP worker of `serve --workers N` (src/cluster/worker.ts): the primary's configuration and
 * the shard come in its environment. It stops when the primary says so, on SIGTERM/SIGINT, or
 * when the primary is gone (its channel closed).
 */
async function runWorker(): Promise<number> {
  const config = JSON.parse(process.env[CONFIG_ENV] ?? '{}') as Config
  const shard = Number(process.env[SHARD_ENV])
  const logger = createLogger(config.logLevel, { format: config.logFormat }).child({ shard })
  let worker: Awaited<ReturnType<typeof startWorker>>
  try {
    worker = await startWorker(config, logger, shard, process as unknown as Channel)
  } catch (error) {
    logger.error({ err: error }, 'WorkerStartFailed')
    logger.flush()
    return isSpillwayError(error, 'SPW_ERR_WAL_LOCKED') ? EXIT_SHARD_BUSY : 1
  }
  const stop = () => void worker.close()
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  let gone = false
  const primaryGone = () => {
    if (gone) return
    gone = true
    logger.warn('WorkerPrimaryGone')
    stop()
  }
  process.once('disconnect', primaryGone)
  // The channel's close is the primary's death however it died; the parent check is a second
  // witness should the channel ever stay open behind a dead primary.
  watchParent(primaryGone)
  await worker.stopped
  logger.flush()
  if (process.connected) process.disconnect()
  setTimeout(() => process.exit(0), EXIT_GRACE_MS).unref()
  return 0
}

function withoutJson(flags: Record<string, string>): Record<string, string> {
  const { json: _json, help: _help, ...rest } = flags
  return rest
}

function without(flags: Record<string, string>, names: readonly string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(flags).filter(([name]) => !names.includes(name)))
}

function print(value: unknown, flags: Record<string, string>) {
  process.stdout.write(`${JSON.stringify(value, null, flags['json'] ? 0 : 2)}\n`)
}

function usage(message: string) {
  return Object.assign(new Error(`${message}\n\n${USAGE}`), { usage: true })
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (error) => {
    process.stderr.write(`spillway: ${isSpillwayError(error) ? `${error.code}: ` : ''}${error.message}\n`)
    process.exitCode = 2
  },
)

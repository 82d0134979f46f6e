#!/usr/bin/env node
/**
 * The `spillway` command.
 *   spillway serve [--flag value …]       run the server (flags: see `spillway help`)
 *   spillway wal inspect [--data-dir D]   list WAL segments and records
 *   spillway wal verify [--data-dir D]    check every record's CRC and the segment chain
 *   spillway config check [--config F]    validate configuration and print it
 */
import { join } from 'node:path'
import { maxRecordBytes } from '../config/derived.ts'
import { loadConfig } from '../config/load.ts'
import { OPTIONS } from '../config/schema.ts'
import { isSpillwayError } from '../errors.ts'
import { startServer } from '../server.ts'
import { createLogger } from '../telemetry/logger.ts'
import { inspectWal, verifyWal } from '../wal/inspect.ts'
import { parseArgs } from './args.ts'

const USAGE = `usage: spillway <command> [options]

commands:
  serve              run the HTTP API, the WAL and delivery
  wal inspect        list the WAL segments under <data-dir>/wal
  wal verify         check every WAL record; exit 1 on any problem
  config check       validate the configuration (defaults < file < env < flags) and print it
  help               this text

options (each also from its env name, or a config file given by --config / SPILLWAY_CONFIG):
${Object.values(OPTIONS)
  .map((o) => `  --${o.flag.padEnd(28)} ${o.env.join(', ').padEnd(34)} ${o.doc}`)
  .join('\n')}
`

async function main(argv: readonly string[]): Promise<number> {
  const { positional, flags } = parseArgs(argv)
  const [command, sub] = positional
  if (!command || command === 'help' || flags['help']) {
    process.stdout.write(USAGE)
    return command ? 0 : 2
  }
  const config = loadConfig({ flags: withoutJson(flags) })
  switch (command) {
    case 'serve':
      return serve(config)
    case 'wal': {
      const dir = join(config.dataDir, 'wal')
      if (sub === 'inspect') {
        print(await inspectWal(dir), flags)
        return 0
      }
      if (sub === 'verify') {
        const report = await verifyWal(dir, maxRecordBytes(config))
        print(report, flags)
        return report.ok ? 0 : 1
      }
      throw usage(`unknown wal command "${sub ?? ''}"; use inspect or verify`)
    }
    case 'config':
      if (sub === 'check') {
        print(config, { json: 'true' })
        return 0
      }
      throw usage(`unknown config command "${sub ?? ''}"; use check`)
    default:
      throw usage(`unknown command "${command}"`)
  }
}

async function serve(config: ReturnType<typeof loadConfig>): Promise<number> {
  const logger = createLogger(config.logLevel)
  const server = await startServer(config, logger)
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'ServerShutdownRequested')
      server.close().then(
        () => {
          logger.flush()
          resolve(0)
        },
        (error) => {
          logger.error({ err: error }, 'ServerShutdownFailed')
          logger.flush()
          resolve(1)
        },
      )
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
}

function withoutJson(flags: Record<string, string>): Record<string, string> {
  const { json: _json, help: _help, ...rest } = flags
  return rest
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

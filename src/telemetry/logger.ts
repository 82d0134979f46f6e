/**
 * One pino logger per thread, children per component. `json` (one object per line, asynchronous,
 * flushed at exit) is for log shippers and is the hot path's cost; `pretty` (pino-pretty) is for a
 * person at a terminal: coloured levels, local times, the fields after the message. `auto` picks
 * pretty when fd 1 is a terminal, checked with isatty so a worker thread or a cluster worker
 * (whose process.stdout is not the terminal's stream object) decides as its process does.
 *
 * Pretty runs in the calling thread and writes synchronously, not as a pino transport: a
 * transport's worker thread loses the last lines when the process exits abruptly (process.exit in
 * a cluster worker, the exit grace timer), and a terminal does not need a second thread per process.
 */
import { isatty } from 'node:tty'
import { type DestinationStream, type Logger, pino } from 'pino'
import pretty from 'pino-pretty'

export type { Logger }

export type LogFormat = 'auto' | 'json' | 'pretty'

export interface LoggerOptions {
  /** Default `auto`. */
  readonly format?: LogFormat
  /** Write each line before returning (the delivery thread, so nothing is lost when it exits). */
  readonly sync?: boolean
  /** Fields on every line besides `pid`. */
  readonly base?: Record<string, unknown>
  /** Where JSON lines go instead of stdout (tests); pretty output always goes to stdout. */
  readonly destination?: NodeJS.WritableStream | DestinationStream
  /** Whether stdout is a terminal (tests); default isatty(1). */
  readonly tty?: boolean
}

/** `json` or `pretty`: what `auto` means for this process. */
export function resolveLogFormat(format: LogFormat, tty = isatty(1)): 'json' | 'pretty' {
  return format === 'auto' ? (tty ? 'pretty' : 'json') : format
}

/** A logger writing JSON (or, per `format`, pretty lines) to stdout. A stream as the second argument: JSON there. */
export function createLogger(level: string, options: LoggerOptions | NodeJS.WritableStream = {}): Logger {
  const o: LoggerOptions = isStream(options) ? { destination: options, format: 'json' } : options
  const base = { pid: process.pid, ...o.base }
  const settings = { level, base, timestamp: pino.stdTimeFunctions.isoTime }
  const tty = o.tty ?? isatty(1)
  if (resolveLogFormat(o.format ?? 'auto', tty) === 'pretty') {
    return pino(
      settings,
      pretty({
        destination: o.destination ?? 1,
        sync: true,
        colorize: tty && process.env['NO_COLOR'] === undefined,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'hostname',
        singleLine: true,
      }),
    )
  }
  return pino(settings, o.destination ?? pino.destination({ sync: o.sync ?? false }))
}

function isStream(value: unknown): value is NodeJS.WritableStream {
  return typeof (value as { write?: unknown }).write === 'function'
}

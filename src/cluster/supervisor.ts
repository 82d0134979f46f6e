/**
 * The HTTP workers of `serve --workers N`, one per shard (node:cluster): forks them, restarts one
 * that dies on the same shard after a pause that grows while it keeps dying, and stops them —
 * asked first (the `shutdown` note), killed after `stopTimeoutMs`. Whatever a dead worker acked is
 * durable in its shard: the new worker recovers the shard and the merger goes on from its cursor.
 */
import cluster, { type Worker } from 'node:cluster'
import { spillwayError } from '../errors.ts'
import type { Logger } from '../telemetry/logger.ts'
import { guardHandoffs } from './handoff-guard.ts'
import { Rpc } from './ipc.ts'

/** The exit code of a worker that could not take its shard (a previous worker still holds it). */
export const EXIT_SHARD_BUSY = 75

const RESTART_MIN_MS = 100
const RESTART_MAX_MS = 5000
/** A worker up this long is healthy again: its next restart waits the minimum. */
const STABLE_AFTER_MS = 10_000
const START_TIMEOUT_MS = 30_000

/** Quick deaths in a row after a worker that ran `upMs` exited (0 once it ran long enough). */
export function failuresAfter(previous: number, upMs: number): number {
  return upMs > STABLE_AFTER_MS ? 0 : previous + 1
}

/** The pause before a restart: the minimum, doubling with each quick death after the first, capped. */
export function restartDelay(failures: number): number {
  return Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** Math.max(0, failures - 1))
}

export interface SupervisorOptions {
  /** How many workers: shards 0…workers-1. */
  readonly workers: number
  /** The environment of shard n's worker. */
  readonly env: (shard: number) => Record<string, string>
  /** Sets up the primary's side of a new worker's channel (its calls and notes). */
  readonly attach: (shard: number, rpc: Rpc) => void
  /** A worker died (not while stopping). */
  readonly onExit: (shard: number) => void
  readonly stopTimeoutMs: number
  readonly logger: Logger
}

interface Slot {
  readonly shard: number
  worker?: Worker
  rpc?: Rpc
  listening: boolean
  startedAt: number
  failures: number
  restartTimer?: NodeJS.Timeout
}

/** A worker that listens, and its channel. */
export interface LiveWorker {
  readonly shard: number
  readonly rpc: Rpc
}

export class WorkerSupervisor {
  readonly #options: SupervisorOptions
  readonly #slots: Slot[]
  readonly #started = new Set<number>()
  readonly #firstListen = Promise.withResolvers<void>()
  #restarts = 0
  #stopping = false
  #url = ''
  #address = ''

  constructor(options: SupervisorOptions) {
    this.#options = options
    this.#slots = Array.from({ length: options.workers }, (_, shard) => ({
      shard,
      listening: false,
      startedAt: 0,
      failures: 0,
    }))
  }

  /** The API's URL for a client on this machine. */
  get url(): string {
    return this.#url
  }

  /** What the kernel bound for the API, e.g. 0.0.0.0:8080. */
  get address(): string {
    return this.#address
  }

  /** Restarts of workers that had listened. */
  get restarts(): number {
    return this.#restarts
  }

  get stopping(): boolean {
    return this.#stopping
  }

  live(): LiveWorker[] {
    return this.#slots.flatMap((s) =>
      s.worker && s.listening && s.rpc ? [{ shard: s.shard, rpc: s.rpc }] : [],
    )
  }

  /** The channel to shard n's worker, while it runs. */
  rpcOf(shard: number): Rpc | undefined {
    return this.#slots[shard]?.rpc
  }

  pids(): number[] {
    return this.#slots.flatMap((s) => (s.worker?.process.pid ? [s.worker.process.pid] : []))
  }

  /** Forks every worker; resolves once each listened, rejects when one failed to start. */
  async start(): Promise<void> {
    for (const slot of this.#slots) this.#fork(slot)
    const timeout = setTimeout(
      () =>
        this.#firstListen.reject(
          spillwayError(
            'SPW_ERR_SERVER_NOT_READY',
            `the HTTP workers did not listen within ${START_TIMEOUT_MS} ms`,
          ),
        ),
      START_TIMEOUT_MS,
    )
    try {
      await this.#firstListen.promise
    } finally {
      clearTimeout(timeout)
    }
  }

  /** Asks every worker to stop (they close their shards), kills those still running after the timeout. */
  async stop(): Promise<void> {
    this.#stopping = true
    const { logger, stopTimeoutMs } = this.#options
    await Promise.all(
      this.#slots.map(async (s) => {
        clearTimeout(s.restartTimer)
        const worker = s.worker
        if (!worker) return
        const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
        void s.rpc?.note('shutdown', null)
        const timer = setTimeout(() => {
          logger.warn({ shard: s.shard, timeoutMs: stopTimeoutMs }, 'WorkerStopTimedOut')
          worker.process.kill('SIGKILL')
        }, stopTimeoutMs)
        await exited
        clearTimeout(timer)
      }),
    )
  }

  #fork(s: Slot): void {
    const { logger } = this.#options
    s.listening = false
    s.startedAt = Date.now()
    const worker = cluster.fork(this.#options.env(s.shard))
    guardHandoffs(worker, (connections) =>
      logger.warn({ shard: s.shard, workerPid: worker.process.pid, connections }, 'WorkerHandoffsClosed'),
    )
    const rpc = new Rpc(worker)
    this.#options.attach(s.shard, rpc)
    s.worker = worker
    s.rpc = rpc
    worker.on('listening', (address) => {
      s.listening = true
      const host =
        !address.address || address.address === '0.0.0.0' || address.address === '::'
          ? '127.0.0.1'
          : address.address
      this.#url ||= `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`
      const bound = address.address ?? ''
      this.#address ||= `${bound.includes(':') ? `[${bound}]` : bound}:${address.port}`
      logger.info({ shard: s.shard, workerPid: worker.process.pid }, 'WorkerStarted')
      this.#started.add(s.shard)
      if (this.#started.size === this.#slots.length) this.#firstListen.resolve()
    })
    worker.on('exit', (code, signal) => this.#exited(s, worker, code, signal))
  }

  #exited(s: Slot, worker: Worker, code: number | null, signal: string | null): void {
    s.rpc?.close()
    s.worker = undefined
    s.rpc = undefined
    const wasListening = s.listening
    s.listening = false
    if (this.#stopping) return
    this.#options.onExit(s.shard)
    const busy = code === EXIT_SHARD_BUSY
    if (!this.#started.has(s.shard) && !busy) {
      this.#firstListen.reject(
        spillwayError(
          'SPW_ERR_CONFIG_INVALID',
          `HTTP worker ${s.shard} exited (code ${code}, signal ${signal}) before it listened; its error is in the log above`,
        ),
      )
      return
    }
    if (wasListening) this.#restarts++
    s.failures = failuresAfter(s.failures, Date.now() - s.startedAt)
    const delay = restartDelay(s.failures)
    this.#options.logger[busy ? 'info' : 'error'](
      { shard: s.shard, workerPid: worker.process.pid, code, signal, restartInMs: delay },
      busy ? 'WorkerShardBusy' : 'WorkerExited',
    )
    s.restartTimer = setTimeout(() => {
      s.restartTimer = undefined
      if (!this.#stopping) this.#fork(s)
    }, delay)
  }
}

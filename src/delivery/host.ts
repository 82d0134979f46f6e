/**
 * The HTTP thread's handle on the delivery thread. One worker thread owns every sink, reads the WAL
 * itself and answers queries; the two threads share WAL positions through WalSharedState (no
 * messages on the hot path) and talk by messages only for queries, readiness, stats and stop
 * (protocol.ts). So a slow sink or a heavy query never blocks the event loop that answers HTTP.
 *
 * If the thread dies (a native crash in a sink driver, an uncaught exception), the host logs it
 * and starts a new one after a growing pause; delivery resumes from the cursors, which only ever
 * cover delivered or dead-lettered events, so nothing is lost (at most redelivered). Queries and
 * readiness fail with a retryable error meanwhile.
 */
import { Worker } from 'node:worker_threads'
import { maxRecordBytes } from '../config/derived.ts'
import type { Config } from '../config/schema.ts'
import { spillwayError } from '../errors.ts'
import type {
  ExploreBackend,
  GroupBy,
  MetricsQuery,
  MetricsRow,
  QueryBackend,
  SeriesQuery,
  SeriesRow,
  TopEventsQuery,
  TopEventsRow,
  Totals,
} from '../query/types.ts'
import { Backoff } from '../shared/backoff.ts'
import { withTimeout } from '../shared/timeout.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { WalSharedState } from '../wal/shared-state.ts'
import type { DeliveryStats } from './loop.ts'
import {
  type CallRequest,
  type DeliveryWorkerData,
  isSpillwayCode,
  reviveError,
  type SerializedError,
  type WorkerMessage,
} from './protocol.ts'
import type { ReadyReport } from './service.ts'

export type { DeliveryStats } from './loop.ts'
export type { ReadyReport, SinkReadiness } from './service.ts'

export interface DeliveryHostOptions {
  readonly config: Config
  readonly state: WalSharedState
  readonly logger: Logger
  /** Largest WAL record (the writer's limit); default: the same formula as the server's. */
  readonly maxRecordBytes?: number
  /** How long the sinks may take to open before start fails (default 60 s). */
  readonly startTimeoutMs?: number
  /** Bound of one query (default 10 s). */
  readonly queryTimeoutMs?: number
  /** First pause before restarting a dead delivery thread; doubles up to 30 s (default 200 ms). */
  readonly restartDelayMs?: number
}

export interface DeliveryHostStats {
  /** false while the delivery thread is down (restarting). */
  readonly running: boolean
  /** Unexpected thread deaths since start. */
  readonly restarts: number
  readonly sinks: readonly DeliveryStats[]
}

type Call = { [M in CallRequest['method']]: Extract<CallRequest, { method: M }>['args'] }

interface Pending {
  readonly resolve: (value: unknown) => void
  readonly reject: (error: Error) => void
  readonly timer: NodeJS.Timeout
}

const WORKER_URL = new URL('./worker.ts', import.meta.url)
const MAX_RESTART_DELAY_MS = 30_000
const STOP_GRACE_MS = 5000

export class DeliveryHost implements QueryBackend, ExploreBackend {
  readonly #config: Config
  readonly #logger: Logger
  readonly #workerData: DeliveryWorkerData
  readonly #startTimeoutMs: number
  readonly #queryTimeoutMs: number
  /** Pause before restarting a dead thread: doubles while restarts fail, from `restartDelayMs`. */
  readonly #restartDelay: Backoff

  #worker: Worker | undefined
  #exited = new Map<Worker, Promise<number>>()
  #pending = new Map<number, Pending>()
  #nextId = 1
  #stopping = false
  #restarts = 0
  #restartTimer: NodeJS.Timeout | undefined
  #spawning: Promise<void> | undefined

  private constructor(options: DeliveryHostOptions) {
    this.#config = options.config
    this.#logger = options.logger.child({ component: 'delivery-host' })
    this.#startTimeoutMs = options.startTimeoutMs ?? 60_000
    // Past the query backend's own timeout (queryTimeoutMs), so the thread's busy answer arrives first.
    this.#queryTimeoutMs = options.queryTimeoutMs ?? (options.config.queryTimeoutMs ?? 10_000) + 2000
    this.#restartDelay = new Backoff({
      initialMs: options.restartDelayMs ?? 200,
      maxMs: MAX_RESTART_DELAY_MS,
      jitter: 'none',
    })
    this.#workerData = {
      config: options.config,
      stateBuffer: options.state.buffer,
      maxRecordBytes: options.maxRecordBytes ?? maxRecordBytes(options.config),
    }
  }

  /**
   * Spawns the delivery thread; resolves once every sink opened and published its cursor in the
   * shared state (so the WAL writer may recover next), rejects with the sink's error otherwise.
   */
  static async start(options: DeliveryHostOptions): Promise<DeliveryHost> {
    const host = new DeliveryHost(options)
    await host.#spawn()
    return host
  }

  /** Unexpected thread deaths since start. */
  get restarts(): number {
    return this.#restarts
  }

  /** true while a delivery thread is up. */
  get running(): boolean {
    return this.#worker !== undefined
  }

  totals(query: MetricsQuery): Promise<Totals> {
    return this.#query('totals', query) as Promise<Totals>
  }

  groups(query: MetricsQuery & { readonly group_by: GroupBy }): Promise<MetricsRow[]> {
    return this.#query('groups', query) as Promise<MetricsRow[]>
  }

  /** The dashboard's queries (query/types.ts ExploreBackend), bounded like `GET /metrics`. */
  topEvents(query: TopEventsQuery): Promise<TopEventsRow[]> {
    return this.#query('topEvents', query) as Promise<TopEventsRow[]>
  }

  series(query: SeriesQuery): Promise<SeriesRow[]> {
    return this.#query('series', query) as Promise<SeriesRow[]>
  }

  /** Pings every sink (each bounded by `timeoutMs`); never rejects. */
  async ready(timeoutMs = 2000): Promise<ReadyReport> {
    try {
      return (await this.#call('ready', { timeoutMs }, timeoutMs + 1000)) as ReadyReport
    } catch (error) {
      const reason = (error as Error).message
      return {
        ok: false,
        sinks: Object.fromEntries(this.#config.sinks.map((name) => [name, { ok: false, error: reason }])),
      }
    }
  }

  /** Per-sink delivery counters (for /metrics); empty `sinks` while the thread is down. */
  async stats(): Promise<DeliveryHostStats> {
    if (!this.#worker) return { running: false, restarts: this.#restarts, sinks: [] }
    try {
      const sinks = (await this.#call('stats', null, this.#queryTimeoutMs)) as DeliveryStats[]
      return { running: true, restarts: this.#restarts, sinks }
    } catch {
      return { running: false, restarts: this.#restarts, sinks: [] }
    }
  }

  /**
   * drain: the thread delivers everything up to the durable head as of now, closes the sinks and
   * exits. Without drain it stops at once (a running sink write is awaited). The thread is
   * terminated only when it has not exited after `timeoutMs` (default: shutdownTimeoutMs with
   * drain, 5 s without) plus a 5 s grace for the non-draining stop. Calling again without drain
   * cuts a running drain short.
   */
  async stop(options: { drain: boolean; timeoutMs?: number }): Promise<void> {
    this.#stopping = true
    clearTimeout(this.#restartTimer)
    await this.#spawning?.catch(() => {})
    const worker = this.#worker
    if (!worker) return
    const exited = this.#exited.get(worker)!
    worker.postMessage({ type: 'stop', id: this.#nextId++, drain: options.drain })
    const timeoutMs = options.timeoutMs ?? (options.drain ? this.#config.shutdownTimeoutMs : STOP_GRACE_MS)
    if (await within(exited, timeoutMs)) return
    if (options.drain) {
      this.#logger.warn({ timeoutMs }, 'DeliveryDrainTimedOut')
      worker.postMessage({ type: 'stop', id: this.#nextId++, drain: false })
      if (await within(exited, STOP_GRACE_MS)) return
    }
    this.#logger.warn('DeliveryThreadTerminated')
    await worker.terminate()
  }

  /** Test hook: kill the thread the way a crash would; the host restarts it. */
  async simulateCrash(): Promise<void> {
    await this.#worker?.terminate()
  }

  // --- the thread ------------------------------------------------------------------------------

  #spawn(): Promise<void> {
    const spawning = new Promise<void>((resolve, reject) => {
      const worker = new Worker(WORKER_URL, { workerData: this.#workerData, name: 'spillway-delivery' })
      let started = false
      let threadError: Error | undefined
      const timer = setTimeout(() => {
        fail(
          spillwayError(
            'SPW_ERR_SINK_UNAVAILABLE',
            `the sinks did not open within ${this.#startTimeoutMs} ms (${this.#config.sinks.join(', ')})`,
          ),
        )
        worker.terminate().catch(() => {})
      }, this.#startTimeoutMs)
      const fail = (error: Error) => {
        if (started) return
        started = true
        clearTimeout(timer)
        reject(error)
      }
      this.#exited.set(
        worker,
        new Promise((done) => {
          worker.once('exit', (code) => {
            this.#exited.delete(worker)
            done(code)
            fail(threadError ?? new Error(`the delivery thread exited with code ${code} before it started`))
            this.#onExit(worker, code, threadError)
          })
        }),
      )
      worker.on('error', (error) => {
        threadError = error
        this.#logger.error({ err: error }, 'DeliveryThreadFailed')
      })
      worker.on('message', (message: WorkerMessage) => {
        switch (message.type) {
          case 'started':
            if (started) return
            started = true
            clearTimeout(timer)
            this.#worker = worker
            this.#restartDelay.reset()
            this.#logger.info({ cursors: message.cursors }, 'DeliveryThreadStarted')
            resolve()
            return
          case 'startFailed':
            fail(reviveError(message.error))
            return
          case 'reply':
            this.#settle(message)
        }
      })
    })
    this.#spawning = spawning
    return spawning.finally(() => {
      if (this.#spawning === spawning) this.#spawning = undefined
    })
  }

  #onExit(worker: Worker, code: number, error: Error | undefined): void {
    if (this.#worker !== worker) return
    this.#worker = undefined
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer)
      pending.reject(spillwayError('SPW_ERR_QUERY_FAILED', 'the delivery thread exited before it answered'))
      this.#pending.delete(id)
    }
    if (this.#stopping) {
      this.#logger.info({ code }, 'DeliveryThreadStopped')
      return
    }
    this.#restarts++
    const delay = this.#restartDelay.next()
    this.#logger.error({ code, err: error, restartInMs: delay }, 'DeliveryThreadDied')
    this.#scheduleRestart(delay)
  }

  #scheduleRestart(delay: number): void {
    this.#restartTimer = setTimeout(() => {
      if (this.#stopping) return
      this.#spawn().then(
        () => this.#logger.info({ restarts: this.#restarts }, 'DeliveryThreadRestarted'),
        (error) => {
          const next = this.#restartDelay.next()
          this.#logger.error({ err: error, restartInMs: next }, 'DeliveryThreadRestartFailed')
          if (!this.#stopping) this.#scheduleRestart(next)
        },
      )
    }, delay)
  }

  // --- requests --------------------------------------------------------------------------------

  async #query<M extends 'totals' | 'groups' | 'topEvents' | 'series'>(
    method: M,
    args: Call[M],
  ): Promise<unknown> {
    try {
      return await this.#call(method, args, this.#queryTimeoutMs)
    } catch (error) {
      if (isSpillwayCode(error as Error, 'SPW_ERR_QUERY_')) throw error
      throw spillwayError('SPW_ERR_QUERY_FAILED', `query failed: ${(error as Error).message}`, {
        cause: error,
      })
    }
  }

  #call<M extends keyof Call>(method: M, args: Call[M], timeoutMs: number): Promise<unknown> {
    const worker = this.#worker
    if (!worker) {
      return Promise.reject(
        spillwayError('SPW_ERR_QUERY_FAILED', 'the delivery thread is not running (restarting)'),
      )
    }
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(
          spillwayError(
            'SPW_ERR_QUERY_FAILED',
            `the delivery thread did not answer ${method} within ${timeoutMs} ms`,
          ),
        )
      }, timeoutMs)
      this.#pending.set(id, { resolve, reject, timer })
      worker.postMessage({ type: 'call', id, method, args } as CallRequest)
    })
  }

  #settle(message: Extract<WorkerMessage, { type: 'reply' }>): void {
    const pending = this.#pending.get(message.id)
    if (!pending) return
    this.#pending.delete(message.id)
    clearTimeout(pending.timer)
    if (message.ok) pending.resolve(message.value)
    else pending.reject(reviveError(message.error as SerializedError))
  }
}

/** true when `promise` settled within `ms`. */
function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return withTimeout(
    promise.then(() => true),
    ms,
    () => false,
  )
}

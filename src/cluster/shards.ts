/**
 * The primary's side of the WAL shards (`<dataDir>/shards/<n>`): one merger per shard
 * (shard-merger.ts) moving what the shard's worker made durable into the node's WAL, the merge
 * progress each worker is sent every PROGRESS_EVERY_MS, and the drain at shutdown. Shards left by
 * an earlier start with more workers ("orphans") are recovered here and merged, with no worker.
 */

import { join } from 'node:path'
import { maxRecordBytes } from '../config/derived.ts'
import type { Config } from '../config/schema.ts'
import type { Pipeline } from '../pipeline.ts'
import { walWriter } from '../pipeline.ts'
import { withTimeout } from '../shared/timeout.ts'
import type { Logger } from '../telemetry/logger.ts'
import { type DirLock, lockDirectory } from '../wal/lock.ts'
import { WalSharedState } from '../wal/shared-state.ts'
import type { WalWriter } from '../wal/writer.ts'
import { ShardMerger } from './shard-merger.ts'
import { existingShards, type Progress, shardDir } from './worker.ts'

const PROGRESS_EVERY_MS = 100

interface Shard {
  readonly index: number
  /** The shard's head as its worker reports it; the merger publishes its cursor in slot 0. */
  readonly state: WalSharedState
  readonly merger: ShardMerger
  /** A shard this primary recovered itself (an orphan, or every shard at stop): its WAL and lock. */
  recovered?: { wal: WalWriter; lock: DirLock }
}

/** Where progress goes: the channel to shard n's worker, while one runs. */
type Notify = (shard: number) => { note(type: string, body: unknown): Promise<boolean> } | undefined

export class ShardSet {
  readonly #config: Config
  readonly #logger: Logger
  readonly #pipeline: Pipeline
  readonly #shards: Shard[] = []
  #progress: NodeJS.Timeout | undefined

  private constructor(config: Config, pipeline: Pipeline, logger: Logger) {
    this.#config = config
    this.#pipeline = pipeline
    this.#logger = logger
  }

  /**
   * Starts a merger for shards 0…workers-1 and for every shard an earlier start left beyond them
   * (recovered here, merged without a worker). On failure what was started is stopped again.
   */
  static async open(config: Config, pipeline: Pipeline, logger: Logger, workers: number): Promise<ShardSet> {
    const set = new ShardSet(config, pipeline, logger)
    const count = Math.max(workers, ...existingShards(config.dataDir).map((n) => n + 1))
    try {
      for (let index = 0; index < count; index++) {
        const state = new WalSharedState()
        const merger = new ShardMerger({
          shard: index,
          dir: shardDir(config.dataDir, index),
          state,
          target: pipeline.wal,
          maxRecordBytes: maxRecordBytes(config),
          logger: logger.child({ component: 'merge', shard: index }),
        })
        const shard: Shard = { index, state, merger }
        await merger.start()
        set.#shards.push(shard)
        if (index >= workers) {
          shard.recovered = await recoverShard(config, index, state, merger.cursor, logger)
          logger.info({ shard: index, head: state.durableHead, merged: merger.cursor }, 'ShardWithoutWorker')
        }
      }
    } catch (error) {
      await set.abort()
      throw error
    }
    return set
  }

  /** Each shard's head and unmerged bytes (the cluster metrics and /ready). */
  reading(): { shard: number; head: number; backlogBytes: number }[] {
    return this.#shards.map((s) => ({
      shard: s.index,
      head: Math.max(0, s.state.durableHead),
      backlogBytes: s.merger.backlogBytes,
    }))
  }

  /** A worker's report of its shard's durable head (it only moves forward). */
  reportHead(shard: number, head: unknown): void {
    const state = this.#shards[shard]?.state
    if (state && typeof head === 'number' && head > state.durableHead) state.durableHead = head
  }

  /**
   * Every PROGRESS_EVERY_MS: tells each worker its merge cursor and the node's backlog and delivered
   * position, and deletes the merged segments of the shards without a worker.
   */
  startProgress(notify: Notify): void {
    this.#progress = setInterval(() => {
      const node = {
        backlogBytes: this.#pipeline.backlogBytes(),
        deliveredPosition: this.#pipeline.deliveredPosition(),
      }
      for (const s of this.#shards) {
        void notify(s.index)?.note('progress', { merged: s.merger.savedCursor, ...node } satisfies Progress)
        if (s.recovered && s.merger.savedCursor > 0)
          s.recovered.wal.deleteDelivered(s.merger.savedCursor).catch(() => {})
      }
    }, PROGRESS_EVERY_MS)
  }

  /**
   * Once the workers are gone: merges everything they made durable into the node's WAL, within
   * `timeoutMs`; what is left stays in the shards for the next start.
   */
  async drain(timeoutMs: number): Promise<void> {
    // Their last head reports may be missing (a worker killed after the stop timeout): each shard
    // is recovered here, as a restart would, which publishes its true head.
    for (const s of this.#shards) {
      if (s.recovered) continue
      try {
        s.recovered = await recoverShard(this.#config, s.index, s.state, s.merger.cursor, this.#logger)
      } catch (error) {
        this.#logger.warn({ err: error, shard: s.index }, 'ShardRecoveryAtStopFailed')
      }
    }
    const drained = Promise.all(this.#shards.map((s) => s.merger.stop({ drain: true })))
    if ((await withTimeout(drained, timeoutMs, () => 'timeout' as const, { unref: true })) === 'timeout') {
      this.#logger.warn({ timeoutMs }, 'ShardMergeDrainTimedOut')
      await Promise.all(this.#shards.map((s) => s.merger.stop({ drain: false })))
    }
    await this.#close()
  }

  /** Stops merging at once (a failed start). */
  async abort(): Promise<void> {
    await Promise.all(this.#shards.map((s) => s.merger.stop({ drain: false })))
    await this.#close()
  }

  async #close(): Promise<void> {
    clearInterval(this.#progress)
    for (const s of this.#shards) {
      await s.recovered?.wal.close()
      s.recovered?.lock.release()
    }
  }
}

/**
 * Takes a shard no worker runs and recovers its WAL, as a worker's start would: `state` gets
 * its true durable head, so the merger can drain it. The caller closes the writer and releases
 * the lock once it is merged.
 */
async function recoverShard(
  config: Config,
  index: number,
  state: WalSharedState,
  merged: number,
  logger: Logger,
): Promise<{ wal: WalWriter; lock: DirLock }> {
  const dir = shardDir(config.dataDir, index)
  const lock = lockDirectory(dir)
  const wal = walWriter(config, join(dir, 'wal'), state, logger)
  try {
    await wal.open({ minHead: merged })
  } catch (error) {
    lock.release()
    throw error
  }
  return { wal, lock }
}

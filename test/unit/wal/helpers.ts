import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { nodeWalIo, type WalIo } from '../../../src/wal/io.ts'
import { WalSharedState } from '../../../src/wal/shared-state.ts'
import type { WalOptions } from '../../../src/wal/types.ts'
import { type WalOpenOptions, WalWriter } from '../../../src/wal/writer.ts'

type After = { after: (fn: () => Promise<void> | void) => void }

export { tempDir } from '../../helpers/temp-dir.ts'

export function walOptions(dir: string, overrides: Partial<WalOptions> = {}): WalOptions {
  return {
    dir: join(dir, 'wal'),
    segmentBytes: 1 << 20,
    groupCommitBytes: 1 << 20,
    groupCommitDelayMs: 0,
    maxRecordBytes: 64 * 1024,
    ...overrides,
  }
}

export interface OpenedWal {
  readonly wal: WalWriter
  readonly state: WalSharedState
  readonly io: TestIo
  readonly options: WalOptions
}

/** A writer on a fresh (or given) directory, closed after the test. */
export async function openWal(
  t: After,
  dir: string,
  overrides: Partial<WalOptions> = {},
  open: WalOpenOptions = {},
  state = new WalSharedState(),
): Promise<OpenedWal> {
  const options = walOptions(dir, overrides)
  const io = new TestIo()
  const wal = new WalWriter(options, state, undefined, io)
  await wal.open(open)
  t.after(() => wal.close())
  return { wal, state, io, options }
}

export function payload(i: number, bytes = 300): Buffer {
  const tag = `event-${i}-`
  return Buffer.from(tag.padEnd(bytes, 'x'))
}

export function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: simulated`), { code })
}

interface Deferred {
  readonly promise: Promise<void>
  readonly resolve: () => void
}

/**
 * The real file system, counted, with faults on demand: the next write can take only part of the
 * bytes and then fail (what a full disk does), the next fdatasync can fail, and fdatasyncs can be
 * held back until the test releases them.
 */
export class TestIo implements WalIo {
  writes = 0
  datasyncs = 0
  dirSyncs = 0
  /** Fail the next writev with this errno after writing `partialBytes` of it for real. */
  failNextWrite: { code: string; partialBytes: number } | undefined
  failNextDatasync: string | undefined
  failNextOpen: string | undefined
  #gate: Deferred | undefined
  /** Resolved when an fdatasync is waiting at the gate. */
  #waiting: Deferred | undefined

  open(path: string, flags: string): Promise<FileHandle> {
    const code = this.failNextOpen
    if (code) {
      this.failNextOpen = undefined
      return Promise.reject(errno(code))
    }
    return nodeWalIo.open(path, flags)
  }

  async writev(file: FileHandle, buffers: Buffer[], position: number): Promise<number> {
    this.writes++
    const fault = this.failNextWrite
    if (fault) {
      this.failNextWrite = undefined
      if (fault.partialBytes > 0) {
        const all = Buffer.concat(buffers)
        await nodeWalIo.writev(file, [all.subarray(0, fault.partialBytes)], position)
      }
      throw errno(fault.code)
    }
    return nodeWalIo.writev(file, buffers, position)
  }

  async datasync(file: FileHandle): Promise<void> {
    this.datasyncs++
    if (this.#gate) {
      this.#waiting?.resolve()
      await this.#gate.promise
    }
    const code = this.failNextDatasync
    if (code) {
      this.failNextDatasync = undefined
      throw errno(code)
    }
    return nodeWalIo.datasync(file)
  }

  truncate(file: FileHandle, length: number): Promise<void> {
    return nodeWalIo.truncate(file, length)
  }

  syncDir(dir: string): Promise<void> {
    this.dirSyncs++
    return nodeWalIo.syncDir(dir)
  }

  unlink(path: string): Promise<void> {
    return nodeWalIo.unlink(path)
  }

  /** Holds every fdatasync until `release()`; resolves once one is held. */
  hold(): Promise<void> {
    this.#gate = deferred()
    this.#waiting = deferred()
    return this.#waiting.promise
  }

  release(): void {
    const gate = this.#gate
    this.#gate = undefined
    gate?.resolve()
  }
}

function deferred(): Deferred {
  let resolve!: () => void
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

/** Settles-yet probe: true once `promise` has settled. */
export function tracked<T>(promise: Promise<T>): { readonly settled: boolean; readonly promise: Promise<T> } {
  const state = { settled: false, promise }
  promise.then(
    () => {
      state.settled = true
    },
    () => {
      state.settled = true
    },
  )
  return state
}

export const tick = () => new Promise<void>((resolve) => setImmediate(resolve))

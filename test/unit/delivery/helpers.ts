import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CursorFile } from '../../../src/delivery/cursor-file.ts'
import { DeliveryLoop, type DeliveryLoopOptions } from '../../../src/delivery/loop.ts'
import { DeadLetterStore } from '../../../src/shared/dead-letter.ts'
import { MemorySink } from '../../../src/sinks/memory/sink.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'
import { decodeNdjson, MemoryLog } from './memory-log.ts'

export const silent = createLogger('silent')

type After = { after: (fn: () => Promise<void> | void) => void }

export async function tempDir(t: After, prefix = 'spillway-delivery-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export interface Rig {
  readonly dir: string
  readonly log: MemoryLog
  readonly sink: MemorySink
  readonly deadLetter: DeadLetterStore
  readonly cursorFile: CursorFile
  readonly loop: DeliveryLoop
  /** A second loop over the same log, sink, cursor file and dead-letter store (a restart). */
  restart(overrides?: Partial<DeliveryLoopOptions>): DeliveryLoop
}

export async function rig(
  t: After,
  options: Partial<DeliveryLoopOptions> & { log?: MemoryLog; sink?: MemorySink; dir?: string } = {},
): Promise<Rig> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'spillway-delivery-')))
  const log = options.log ?? new MemoryLog()
  const sink = options.sink ?? new MemorySink()
  if (!sink.opened) await sink.open()
  const deadLetter = new DeadLetterStore(join(dir, 'deadletter'), { source: 'test' })
  const cursorFile = new CursorFile(join(dir, 'cursors'), sink.name)
  const loops: DeliveryLoop[] = []
  const make = (overrides: Partial<DeliveryLoopOptions> = {}) => {
    const loop = new DeliveryLoop({
      sink,
      slot: 0,
      state: log.state,
      openReader: log.openReader,
      cursorFile,
      deadLetter,
      batchRows: 1000,
      batchBytes: 1 << 20,
      lingerMs: 0,
      maxRecordBytes: 1 << 20,
      logger: silent,
      backoff: { initialMs: 1, maxMs: 4 },
      decode: decodeNdjson,
      ...options,
      ...overrides,
    })
    loops.push(loop)
    return loop
  }
  // One hook, in order: the loops stop before their directory goes.
  t.after(async () => {
    await Promise.all(loops.map((loop) => loop.stop({ drain: false })))
    await deadLetter.close()
    if (!options.dir) await rm(dir, { recursive: true, force: true })
  })
  return { dir, log, sink, deadLetter, cursorFile, loop: make(), restart: make }
}

export { eventually } from '../../helpers/wait.ts'

export const ids = (list: readonly { event_id: string }[]) => list.map((e) => e.event_id)

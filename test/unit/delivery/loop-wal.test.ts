/**
 * DeliveryLoop over the real log: a WalWriter appends (with group commit and segment rotation),
 * the loop reads with its own WalReader and the intake's decoder, as the delivery thread does.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { CursorFile } from '../../../src/delivery/cursor-file.ts'
import { DeliveryLoop } from '../../../src/delivery/loop.ts'
import { encodeEvents } from '../../../src/intake/serialize.ts'
import { DeadLetterStore } from '../../../src/shared/dead-letter.ts'
import { MemorySink } from '../../../src/sinks/memory/sink.ts'
import { WalSharedState } from '../../../src/wal/shared-state.ts'
import { WalWriter } from '../../../src/wal/writer.ts'
import { numberedEvent, numberedEvents } from '../../helpers/events.ts'
import { eventually, ids, silent, tempDir } from './helpers.ts'

const MAX_RECORD = 1 << 20

async function realLog(t: { after: (fn: () => Promise<void> | void) => void }) {
  const dir = await tempDir(t, 'spillway-loop-wal-')
  const state = new WalSharedState()
  const wal = new WalWriter(
    {
      dir: join(dir, 'wal'),
      segmentBytes: 64 * 1024,
      groupCommitBytes: 64 * 1024,
      groupCommitDelayMs: 0,
      maxRecordBytes: MAX_RECORD,
    },
    state,
    silent,
  )
  const deadLetter = new DeadLetterStore(join(dir, 'deadletter'))
  const loops: DeliveryLoop[] = []
  const loopFor = (sink: MemorySink) => {
    const loop = new DeliveryLoop({
      sink,
      slot: 0,
      state,
      walDir: join(dir, 'wal'),
      cursorFile: new CursorFile(join(dir, 'cursors'), sink.name),
      deadLetter,
      batchRows: 500,
      batchBytes: 256 * 1024,
      lingerMs: 5,
      maxRecordBytes: MAX_RECORD,
      logger: silent,
      backoff: { initialMs: 1, maxMs: 5 },
    })
    loops.push(loop)
    return loop
  }
  t.after(async () => {
    await Promise.all(loops.map((loop) => loop.stop({ drain: false })))
    await wal.close()
    await deadLetter.close()
  })
  return { dir, state, wal, deadLetter, loopFor }
}

test('every event written to the real WAL reaches the sink once, in order, across segment rotations', async (t) => {
  const { state, wal, loopFor } = await realLog(t)
  const sink = new MemorySink()
  await sink.open()
  const loop = loopFor(sink)
  await loop.start()
  await wal.open({ minHead: state.cursor(0) })
  const expected: string[] = []
  const appends: Promise<unknown>[] = []
  for (let i = 0; i < 400; i++) {
    const batch = numberedEvents(i * 3, 1 + (i % 3)).map((e) => ({
      ...e,
      metadata: { pad: 'x'.repeat(200) },
    }))
    expected.push(...ids(batch))
    appends.push(wal.append(encodeEvents(batch), { durable: true }))
  }
  await Promise.all(appends)
  await sink.waitForEvents(expected.length, 10_000)
  await eventually(() => state.cursor(0) === state.durableHead, 'cursor at the durable head')
  assert.deepEqual(ids(sink.events), expected)
  // Everything delivered: the writer may delete every sealed segment.
  await wal.deleteDelivered(state.minCursor(1))
  assert.ok(state.oldest > 0, 'delivered segments were deleted')
})

test('over the real WAL, a poison event is dead-lettered and a restart resumes from the cursor file', async (t) => {
  const { state, wal, loopFor, deadLetter } = await realLog(t)
  const sink = new MemorySink().rejectEvents((e) => e.event_id === 'e7', 'bad event')
  await sink.open()
  const first = loopFor(sink)
  await first.start()
  await wal.open({ minHead: state.cursor(0) })
  await wal.append(encodeEvents(numberedEvents(0, 10)), { durable: true })
  await sink.waitForEvents(9)
  await first.stop({ drain: true })
  assert.equal(first.cursor, state.durableHead)
  assert.deepEqual(
    (await deadLetter.list()).map((e) => (e.event as { event_id: string }).event_id),
    ['e7'],
  )

  await wal.append(encodeEvents([numberedEvent(10), numberedEvent(11)]), { durable: true })
  const second = loopFor(sink)
  await second.start()
  await sink.waitForEvents(11)
  await second.stop({ drain: true })
  assert.deepEqual(
    ids(sink.events),
    ids(numberedEvents(0, 12)).filter((id) => id !== 'e7'),
  )
  assert.equal((await deadLetter.list()).length, 1, 'the poison event was not dead-lettered twice')
})

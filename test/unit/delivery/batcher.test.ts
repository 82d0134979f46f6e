/**
 * The batcher alone: records read from a position, batches closed at rows, bytes or linger, pieces
 * of whole records, and waits for the head that leave nothing behind.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import {
  Batcher,
  type BatcherOptions,
  RecordPiece,
  type RecordRef,
  recordPieces,
} from '../../../src/delivery/batcher.ts'
import type { WalSharedState } from '../../../src/wal/shared-state.ts'
import { numberedEvents } from '../../helpers/events.ts'
import { silent } from './helpers.ts'
import { decodeNdjson, MemoryLog } from './memory-log.ts'

function batcher(log: MemoryLog, overrides: Partial<BatcherOptions> = {}): Batcher {
  return new Batcher({
    state: log.state,
    openReader: log.openReader,
    batchRows: 1000,
    batchBytes: 1 << 20,
    lingerMs: 0,
    signal: new AbortController().signal,
    logger: silent,
    sinkName: 'memory',
    startAt: async (from) => from,
    ...overrides,
  })
}

test('a batch holds whole records from the position, and closes at batchBytes', async () => {
  const log = new MemoryLog()
  const first = log.append(numberedEvents(0, 3))
  const second = log.append(numberedEvents(3, 3))
  log.append(numberedEvents(6, 3))
  const batch = await batcher(log, { batchBytes: first.end + 1 }).collect(0)
  assert.ok(batch)
  assert.equal(batch.from, 0)
  assert.equal(batch.rows, 6, 'records are indivisible: the second record goes past the bound')
  assert.deepEqual(
    batch.records.map((r) => [r.start, r.end, r.count]),
    [
      [first.start, first.end, 3],
      [second.start, second.end, 3],
    ],
  )
  assert.equal(batch.to, second.end)
  const rest = await batcher(log).collect(second.end)
  assert.equal(rest?.rows, 3)
})

test('nothing to read: collect waits for the head, and wake() ends the wait at once', async () => {
  const log = new MemoryLog()
  const b = batcher(log)
  const started = Date.now()
  const pending = b.collect(0)
  setTimeout(() => b.wake(), 10)
  assert.equal(await pending, null)
  assert.ok(Date.now() - started < 900, 'woken before the 1 s idle wait ended')
})

test('a drain reads up to its target and no further, without lingering', async () => {
  const log = new MemoryLog()
  const first = log.append(numberedEvents(0, 2))
  log.append(numberedEvents(2, 2))
  const b = batcher(log, { lingerMs: 60_000 })
  b.drain(first.end)
  const batch = await b.collect(0)
  assert.equal(batch?.to, first.end)
  assert.equal(batch?.rows, 2)
  assert.equal(await b.collect(first.end), null, 'past the target there is nothing to read')
})

test('a reader for a new position starts where startAt says (a cursor below the oldest segment)', async () => {
  const log = new MemoryLog()
  const first = log.append(numberedEvents(0, 1))
  log.append(numberedEvents(1, 1))
  log.truncateBefore(first.end)
  const batch = await batcher(log, { startAt: async () => first.end }).collect(0)
  assert.equal(batch?.from, first.end)
  assert.equal(batch?.rows, 1)
})

test('pieces are whole records of at most batchRows events, a bigger record alone', () => {
  const ref = (start: number, count: number): RecordRef => ({
    start,
    end: start + 10,
    count,
    payload: Buffer.alloc(0),
  })
  const records = [ref(0, 2), ref(10, 2), ref(20, 5), ref(30, 1), ref(40, 1)]
  const pieces = [...recordPieces(records, 4)].map((piece) => piece.map((r) => r.start))
  assert.deepEqual(pieces, [[0, 10], [20], [30, 40]])
})

test("a record piece carries the records' bytes as they are, and decodes only when asked", () => {
  const log = new MemoryLog()
  const a = log.append(numberedEvents(0, 2))
  const b = log.append(numberedEvents(2, 1))
  let decoded = 0
  const decode = (payload: Buffer) => {
    decoded++
    return decodeNdjson(payload)
  }
  const refs = [a, b].map((r) => ({ ...r, count: 0 }))
  const piece = new RecordPiece(refs, true, decode)
  assert.deepEqual(piece.ndjson, Buffer.concat([a.payload, b.payload]))
  assert.equal(piece.from, a.start)
  assert.equal(piece.to, b.end)
  assert.equal(decoded, 0)
  assert.equal(piece.events.length, 3)
  assert.equal(piece.events.length, 3)
  assert.equal(decoded, 1)
})

test('waiting for the head keeps nothing once the wait is over (an idle loop does not grow)', async () => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  // A head that never moves, and a wait that ends at once: every collect() is one idle wait.
  const state = { durableHead: 0, oldest: 0, waitForHeadBeyond: async () => {} } as unknown as WalSharedState
  const b = batcher(new MemoryLog(), { state })
  const waits = 200_000
  gc()
  const before = process.memoryUsage().heapUsed
  for (let i = 0; i < waits; i++) await b.collect(0)
  gc()
  const grown = process.memoryUsage().heapUsed - before
  // Measured: about 0 now; 200k idle waits kept ~30 MB (a reaction each on one long-lived promise).
  assert.ok(grown < 8 * 1024 * 1024, `the heap grew ${Math.round(grown / 1024)} KiB over ${waits} waits`)
})

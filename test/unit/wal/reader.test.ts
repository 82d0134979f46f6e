import assert from 'node:assert/strict'
import { readFile, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { type WalCorruption, WalReader } from '../../../src/wal/reader.ts'
import { segmentName } from '../../../src/wal/segment.ts'
import { WalSharedState } from '../../../src/wal/shared-state.ts'
import type { WalRecord } from '../../../src/wal/types.ts'
import { WalWriter } from '../../../src/wal/writer.ts'
import { openWal, payload, tempDir, walOptions } from './helpers.ts'

const MAX = 64 * 1024

/** A reader as the delivery thread builds it: its own view of the same shared memory. */
function readerFor(
  t: { after: (fn: () => Promise<void>) => void },
  dir: string,
  state: WalSharedState,
  options: Partial<ConstructorParameters<typeof WalReader>[2]> = {},
): WalReader {
  const reader = new WalReader(dir, new WalSharedState(state.buffer), {
    from: 0,
    maxRecordBytes: MAX,
    ...options,
  })
  t.after(() => reader.close())
  return reader
}

async function readAll(reader: WalReader, maxBytes = 1 << 20): Promise<WalRecord[]> {
  const all: WalRecord[] = []
  for (;;) {
    const records = await reader.read(maxBytes)
    if (records.length === 0) return all
    all.push(...records)
  }
}

const text = (records: WalRecord[]) => records.map((r) => r.payload.toString().replace(/x+$/, ''))
const names = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `event-${from + i}-`)

test('the reader reads every record back across segment boundaries, in order, with their positions', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, options } = await openWal(t, dir, { segmentBytes: 1000 })
  for (let i = 0; i < 20; i++) await wal.append(payload(i), { durable: true })
  // Small chunks and budgets exercise records cut by a chunk and reads that stop at the budget.
  const reader = readerFor(t, options.dir, state, { readChunkBytes: 100 })
  const records = await readAll(reader, 700)
  assert.deepEqual(text(records), names(20))
  records.forEach((r, i) => {
    assert.equal(r.start, i * 308)
    assert.equal(r.end, (i + 1) * 308)
  })
  assert.equal(reader.position, wal.head)
  assert.equal(reader.warnings, 0)
})

test('a read returns about maxBytes of records, but at least one', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, options } = await openWal(t, dir)
  await wal.append(Buffer.alloc(5000, 'a'), { durable: true })
  for (let i = 0; i < 5; i++) await wal.append(payload(i), { durable: true })
  const reader = readerFor(t, options.dir, state)
  const first = await reader.read(100)
  assert.equal(first.length, 1)
  assert.equal(first[0].payload.length, 5000)
  const next = await reader.read(700)
  assert.deepEqual(text(next), names(2))
})

test('the reader reads nothing past the durable head', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, io, options } = await openWal(t, dir)
  await wal.append(payload(0), { durable: true })
  const held = io.hold()
  const pending = wal.append(payload(1), { durable: true })
  await held // written, not yet fsync'd: the bytes are in the file, the head has not moved
  const reader = readerFor(t, options.dir, state)
  assert.deepEqual(text(await reader.read(1 << 20)), names(1))
  assert.deepEqual(await reader.read(1 << 20), [])
  assert.equal(reader.position, 308)
  io.release()
  await pending
  assert.deepEqual(text(await reader.read(1 << 20)), ['event-1-'])
})

test('an explicit limit caps the read; a head of -1 (not recovered yet) reads nothing', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, options } = await openWal(t, dir)
  for (let i = 0; i < 4; i++) await wal.append(payload(i), { durable: true })
  const reader = readerFor(t, options.dir, state)
  assert.deepEqual(text(await reader.read(1 << 20, 616)), names(2))
  assert.deepEqual(await reader.read(1 << 20, 700), [], 'a record cut by the limit is not returned')
  const early = new WalReader(options.dir, new WalSharedState(), { from: 0, maxRecordBytes: MAX })
  t.after(() => early.close())
  assert.deepEqual(await early.read(1 << 20), [])
})

test('a waiting reader wakes when the writer publishes a new head', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, options } = await openWal(t, dir)
  const reader = readerFor(t, options.dir, state)
  const view = new WalSharedState(state.buffer)
  assert.deepEqual(await reader.read(1 << 20), [])
  const woke = view.waitForHeadBeyond(reader.position, 5000)
  setTimeout(() => wal.append(payload(0), { durable: true }), 20)
  const started = Date.now()
  await woke
  assert.ok(Date.now() - started < 4000)
  assert.deepEqual(text(await reader.read(1 << 20)), names(1))
})

test('a reader keeps up with a writer that rotates while it reads', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, options } = await openWal(t, dir, { segmentBytes: 4096 })
  const reader = readerFor(t, options.dir, state, { readChunkBytes: 1000 })
  const total = 400
  const writing = (async () => {
    for (let i = 0; i < total; i += 8) {
      await Promise.all(Array.from({ length: 8 }, (_, k) => wal.append(payload(i + k), { durable: true })))
    }
  })()
  const got: WalRecord[] = []
  const view = new WalSharedState(state.buffer)
  while (got.length < total) {
    const records = await reader.read(3000)
    got.push(...records)
    if (records.length === 0) await view.waitForHeadBeyond(reader.position, 1000)
  }
  await writing
  assert.deepEqual(text(got), names(total))
  assert.equal(reader.warnings, 0)
})

test('a corrupt record in a sealed segment is reported, skipped to the next segment, and reading goes on', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, options } = await openWal(t, dir, { segmentBytes: 900 })
  for (let i = 0; i < 9; i++) await wal.append(payload(i), { durable: true })
  // Segments of 3 records: [0, 924) [924, 1848) [1848, 2772). Damage record 4 (in the middle one).
  const middle = join(options.dir, segmentName(924))
  const buf = await readFile(middle)
  buf[308 + 100] ^= 0x01
  await writeFile(middle, buf)

  const reports: WalCorruption[] = []
  const reader = readerFor(t, options.dir, state, { onCorruption: (info) => reports.push(info) })
  const records = await readAll(reader)
  assert.deepEqual(text(records), [
    'event-0-',
    'event-1-',
    'event-2-',
    'event-3-',
    'event-6-',
    'event-7-',
    'event-8-',
  ])
  assert.equal(reports.length, 1)
  assert.equal(reports[0].segment, segmentName(924))
  assert.equal(reports[0].position, 1232)
  assert.equal(reports[0].skippedBytes, 616)
  assert.match(reports[0].reason, /crc32c mismatch/)
  assert.equal(reader.warnings, 1)
  assert.equal(reader.position, wal.head)
})

test('garbage at the end of a sealed segment is skipped, not read as a record', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, options } = await openWal(t, dir, { segmentBytes: 600 })
  for (let i = 0; i < 2; i++) await wal.append(payload(i), { durable: true })
  await wal.close()
  // A sealed segment cut inside its last record.
  const sealed = join(options.dir, segmentName(0))
  await writeFile(sealed, (await readFile(sealed)).subarray(0, 500))
  await writeFile(join(options.dir, segmentName(616)), '')
  state.durableHead = 616
  const reports: WalCorruption[] = []
  const reader = readerFor(t, options.dir, state, { onCorruption: (info) => reports.push(info) })
  assert.deepEqual(text(await readAll(reader)), names(1))
  assert.equal(reports.length, 1)
  assert.equal(reader.position, 616)
})

test('corruption in the tail is reported once, and skipped once the writer rotates', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, options } = await openWal(t, dir, { segmentBytes: 1000 })
  for (let i = 0; i < 3; i++) await wal.append(payload(i), { durable: true })
  const tail = join(options.dir, segmentName(0))
  const buf = await readFile(tail)
  buf[308 + 50] ^= 0x01
  await writeFile(tail, buf)

  const reports: WalCorruption[] = []
  const reader = readerFor(t, options.dir, state, { onCorruption: (info) => reports.push(info) })
  assert.deepEqual(text(await reader.read(1 << 20)), names(1))
  assert.deepEqual(await reader.read(1 << 20), [])
  assert.deepEqual(await reader.read(1 << 20), [])
  assert.equal(reports.length, 1, 'reported more than once')
  assert.equal(reader.position, 308)

  for (let i = 3; i < 6; i++) await wal.append(payload(i), { durable: true })
  assert.deepEqual(text(await readAll(reader)), names(2, 4))
  assert.equal(reports.length, 2)
})

test('a reader whose position is older than the oldest segment starts at the oldest and counts a warning', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, options } = await openWal(t, dir, { segmentBytes: 600 })
  for (let i = 0; i < 6; i++) await wal.append(payload(i), { durable: true })
  assert.equal(await wal.deleteDelivered(1232), 2)
  const reader = readerFor(t, options.dir, state, { from: 308 })
  assert.deepEqual(text(await readAll(reader)), names(2, 4))
  assert.equal(reader.warnings, 1)
  assert.equal(reader.skippedBytes, 1232 - 308)
})

test('the reader jumps the gap a minHead restart leaves between segments', async (t) => {
  const dir = await tempDir(t)
  const options = walOptions(dir)
  const first = new WalWriter(options, new WalSharedState())
  await first.open()
  for (let i = 0; i < 2; i++) await first.append(payload(i), { durable: true })
  await first.close()

  const state = new WalSharedState()
  const second = new WalWriter(options, state)
  t.after(() => second.close())
  await second.open({ minHead: 10_000 })
  await second.append(payload(2), { durable: true })

  const reader = readerFor(t, options.dir, state)
  const records = await readAll(reader)
  assert.deepEqual(text(records), names(3))
  assert.deepEqual(
    records.map((r) => r.start),
    [0, 308, 10_000],
  )
  assert.equal(reader.warnings, 0)
  const late = readerFor(t, options.dir, state, { from: 616 })
  assert.deepEqual(text(await readAll(late)), ['event-2-'])
})

test('a segment deleted under a reader that has passed it does not disturb it', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, options } = await openWal(t, dir, { segmentBytes: 600 })
  for (let i = 0; i < 4; i++) await wal.append(payload(i), { durable: true })
  const reader = readerFor(t, options.dir, state)
  assert.equal((await reader.read(616)).length, 2)
  await unlink(join(options.dir, segmentName(0)))
  for (let i = 4; i < 6; i++) await wal.append(payload(i), { durable: true })
  assert.deepEqual(text(await readAll(reader)), names(4, 2))
})

test('read() rejects overlapping calls and calls after close', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, options } = await openWal(t, dir)
  await wal.append(payload(0), { durable: true })
  const reader = readerFor(t, options.dir, state)
  const first = reader.read(1 << 20)
  await assert.rejects(reader.read(1 << 20), /already running/)
  await first
  await reader.close()
  await assert.rejects(reader.read(1 << 20), /closed/)
})

import assert from 'node:assert/strict'
import { readdir, readFile, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { type WalCorruption, WalReader } from '../../../src/wal/reader.ts'
import { segmentName } from '../../../src/wal/segment.ts'
import { WalSharedState } from '../../../src/wal/shared-state.ts'
import type { WalRecord } from '../../../src/wal/types.ts'
import { WalWriter } from '../../../src/wal/writer.ts'
import { damage, expectedIds, flipPayload, ids, line, RECORD, sealedLog } from './damage-helpers.ts'
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

test('one flipped byte in the middle of a sealed segment of 2,000 records costs that record alone', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, options, sealed } = await sealedLog(t, dir, 2000)
  const before = await damage(sealed, flipPayload(1000))

  const reports: WalCorruption[] = []
  const reader = readerFor(t, options.dir, state, { onCorruption: (info) => reports.push(info) })
  const records = await readAll(reader)
  assert.deepEqual(ids(records), expectedIds(0, 2001, [1000]))
  assert.equal(records.filter((r) => r.end <= 2000 * RECORD).length, 1999)
  assert.equal(reader.position, wal.head)

  assert.equal(reports.length, 1)
  assert.equal(reports[0].segment, segmentName(0))
  assert.equal(reports[0].position, 1000 * RECORD)
  assert.equal(reports[0].skippedBytes, RECORD)
  assert.equal(reports[0].resumedAt, 1001 * RECORD)
  assert.match(reports[0].reason, /crc32c mismatch/)
  assert.equal(reader.skippedBytes, RECORD)

  // Counted once in the shared state (the metric and /ready read it), and kept aside as it was.
  assert.equal(state.damagedRanges, 1)
  assert.equal(state.damagedBytes, RECORD)
  const kept = join(options.dir, 'damaged', `${segmentName(0)}.100000-100100.damaged`)
  assert.equal(reports[0].keptAs, kept)
  const bytes = await readFile(kept)
  assert.equal(bytes.length, RECORD)
  assert.notDeepEqual(bytes, before.subarray(1000 * RECORD, 1001 * RECORD), 'the damaged bytes, not a repair')
  bytes[48] ^= 0x04
  assert.deepEqual(bytes, before.subarray(1000 * RECORD, 1001 * RECORD))
})

const lengthDamages: [string, (buf: Buffer, at: number) => void][] = [
  [
    'a length made longer (within the maximum)',
    (buf, at) => buf.writeUInt32LE(buf.readUInt32LE(at) + 256, at),
  ],
  ['a length made shorter', (buf, at) => buf.writeUInt32LE(60, at)],
  ['a length of 0', (buf, at) => buf.writeUInt32LE(0, at)],
  ['a length past the maximum', (buf, at) => buf.writeUInt32LE(0x7f00_0000, at)],
  ['a length running past the end of the segment', (buf, at) => buf.writeUInt32LE(60_000, at)],
  ['a flipped checksum', (buf, at) => buf.writeUInt32LE(buf.readUInt32LE(at + 4) ^ 1, at + 4)],
]

for (const [what, change] of lengthDamages) {
  test(`${what} costs that record alone`, async (t) => {
    const dir = await tempDir(t)
    const { state, options, sealed } = await sealedLog(t, dir, 2000)
    const victim = 1990 // near the end, so a long length can run past the segment
    await damage(sealed, (buf) => change(buf, victim * RECORD))
    const reports: WalCorruption[] = []
    const reader = readerFor(t, options.dir, state, { onCorruption: (info) => reports.push(info) })
    assert.deepEqual(ids(await readAll(reader)), expectedIds(0, 2001, [victim]))
    assert.equal(reports.length, 1)
    assert.equal(reports[0].skippedBytes, RECORD)
    assert.equal(state.damagedRanges, 1)
  })
}

test('damage at the very start and the very end of a sealed segment costs one record each', async (t) => {
  const dir = await tempDir(t)
  const { state, options, sealed } = await sealedLog(t, dir, 2000)
  await damage(sealed, (buf) => {
    buf[3] = 0xff // the first record's length
    buf[buf.length - 2] ^= 0x01 // the last record's payload
  })
  const reports: WalCorruption[] = []
  const reader = readerFor(t, options.dir, state, { onCorruption: (info) => reports.push(info) })
  assert.deepEqual(ids(await readAll(reader)), expectedIds(0, 2001, [0, 1999]))
  assert.deepEqual(
    reports.map((r) => [r.position, r.skippedBytes, r.resumedAt]),
    [
      [0, RECORD, RECORD],
      [1999 * RECORD, RECORD, 2000 * RECORD],
    ],
  )
  assert.equal(state.damagedRanges, 2)
  assert.equal(state.damagedBytes, 2 * RECORD)
  const kept = await readdir(join(options.dir, 'damaged'))
  assert.deepEqual(kept.sort(), [
    `${segmentName(0)}.0-100.damaged`,
    `${segmentName(0)}.199900-200000.damaged`,
  ])
})

test('several damaged records cost exactly those records; neighbours make one range', async (t) => {
  const dir = await tempDir(t)
  const { state, options, sealed } = await sealedLog(t, dir, 2000)
  const lost = [10, 11, 500, 1234, 1998]
  await damage(sealed, (buf) => {
    for (const i of lost) flipPayload(i)(buf)
  })
  // Small chunks: damage and resynchronisation across chunk edges.
  const reader = readerFor(t, options.dir, state, { readChunkBytes: 4096 })
  assert.deepEqual(ids(await readAll(reader, 10_000)), expectedIds(0, 2001, lost))
  assert.equal(state.damagedRanges, 4)
  assert.equal(state.damagedBytes, lost.length * RECORD)
})

test('a zeroed 4 KiB sector costs only the records it touches', async (t) => {
  const dir = await tempDir(t)
  const { state, options, sealed } = await sealedLog(t, dir, 2000)
  await damage(sealed, (buf) => buf.fill(0, 50_000, 54_096))
  const reader = readerFor(t, options.dir, state)
  const touched = Array.from({ length: 41 }, (_, k) => 500 + k) // records 500 … 540
  assert.deepEqual(ids(await readAll(reader)), expectedIds(0, 2001, touched))
  assert.equal(state.damagedRanges, 1)
  assert.equal(state.damagedBytes, 41 * RECORD)
})

test('two readers (two sinks) meet the same damage: it is kept once and counted once', async (t) => {
  const dir = await tempDir(t)
  const { state, options, sealed } = await sealedLog(t, dir, 2000)
  await damage(sealed, flipPayload(700))
  const first = readerFor(t, options.dir, state)
  const second = readerFor(t, options.dir, state)
  const [a, b] = await Promise.all([readAll(first), readAll(second)])
  assert.deepEqual(ids(a), expectedIds(0, 2001, [700]))
  assert.deepEqual(ids(b), ids(a))
  assert.equal(state.damagedRanges, 1)
  assert.equal(state.damagedBytes, RECORD)
  assert.deepEqual(await readdir(join(options.dir, 'damaged')), [`${segmentName(0)}.70000-70100.damaged`])
})

test('records that do not look like what the writer writes are not taken as a place to resume', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, options } = await openWal(t, dir, { segmentBytes: 900 })
  // Opaque payloads: readable in order, but after damage the reader cannot tell them from noise.
  for (let i = 0; i < 9; i++) await wal.append(payload(i), { durable: true })
  // Segments of 3 records: [0, 924) [924, 1848) [1848, 2772). Damage record 4 (in the middle one).
  const middle = join(options.dir, segmentName(924))
  await damage(middle, (buf) => {
    buf[308 + 100] ^= 0x01
  })
  const reports: WalCorruption[] = []
  const reader = readerFor(t, options.dir, state, { onCorruption: (info) => reports.push(info) })
  assert.deepEqual(text(await readAll(reader)), [...names(4), ...names(3, 6)])
  assert.equal(reports.length, 1)
  assert.equal(reports[0].position, 1232)
  assert.equal(reports[0].skippedBytes, 616, 'to the end of the segment')
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
  assert.equal(reports[0].skippedBytes, 192)
  assert.equal(reader.position, 616)
})

test('damage in the active segment is skipped once a valid record follows it below the head', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, options, sealed: tail } = await sealedLog(t, dir, 3, false)
  await damage(tail, flipPayload(1))
  const reports: WalCorruption[] = []
  const reader = readerFor(t, options.dir, state, { onCorruption: (info) => reports.push(info) })
  assert.deepEqual(ids(await readAll(reader)), expectedIds(0, 3, [1]))
  assert.equal(reports.length, 1)
  assert.equal(state.damagedRanges, 1)

  // The last record below the head: nothing follows it yet, so the reader reports it once and waits.
  await damage(tail, flipPayload(2))
  const late = readerFor(t, options.dir, state, {
    from: 2 * RECORD,
    onCorruption: (info) => reports.push(info),
  })
  assert.deepEqual(await late.read(1 << 20), [])
  assert.deepEqual(await late.read(1 << 20), [])
  assert.equal(reports.length, 2, 'reported once while waiting')
  assert.equal(reports[1].skippedBytes, 0)
  assert.equal(late.position, 2 * RECORD)

  for (let i = 3; i < 6; i++) await wal.append(line(i), { durable: true })
  assert.deepEqual(ids(await readAll(late)), expectedIds(3, 6))
  assert.equal(reports.length, 3)
  assert.equal(reports[2].skippedBytes, RECORD)
  assert.equal(state.damagedRanges, 2)
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

import assert from 'node:assert/strict'
import { appendFile, readFile, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { nodeWalIo } from '../../../src/wal/io.ts'
import { WalReader } from '../../../src/wal/reader.ts'
import { decodeRecord, encodeRecord } from '../../../src/wal/record.ts'
import { recoverLog } from '../../../src/wal/recovery.ts'
import { segmentName } from '../../../src/wal/segment.ts'
import { WalSharedState } from '../../../src/wal/shared-state.ts'
import type { WalRecord } from '../../../src/wal/types.ts'
import { WalWriter } from '../../../src/wal/writer.ts'
import { damage, expectedIds, flipPayload, ids, line, RECORD, sealedLog } from './damage-helpers.ts'
import { payload, tempDir, walOptions } from './helpers.ts'

/** A log of `count` 308-byte records in one segment, closed cleanly; returns its file. */
async function writeLog(dir: string, count: number): Promise<string> {
  const wal = new WalWriter(walOptions(dir), new WalSharedState())
  await wal.open()
  for (let i = 0; i < count; i++) await wal.append(payload(i), { durable: true })
  await wal.close()
  return join(walOptions(dir).dir, segmentName(0))
}

async function payloadsIn(path: string): Promise<string[]> {
  const buf = await readFile(path)
  const out: string[] = []
  for (let i = 0; i < buf.length; ) {
    const r = decodeRecord(buf, i, 1 << 20)
    assert.equal(r.status, 'ok')
    if (r.status !== 'ok') break
    out.push(r.payload.toString().replace(/x+$/, ''))
    i += r.size
  }
  return out
}

const damages: [string, (file: string) => Promise<void>][] = [
  ['a partial header', (file) => appendFile(file, Buffer.from([0x34, 0x01, 0x00]))],
  ['a partial payload', (file) => appendFile(file, encodeRecord(payload(3)).subarray(0, 200))],
  ['a zero-filled tail', (file) => appendFile(file, Buffer.alloc(4096))],
  [
    'a flipped CRC byte in the last record',
    async (file) => {
      const buf = await readFile(file)
      buf[buf.length - 308 + 5] ^= 0xff
      await writeFile(file, buf)
    },
  ],
  [
    'a length past the maximum',
    (file) => {
      const header = Buffer.alloc(8)
      header.writeUInt32LE(0xfffffff0, 0)
      return appendFile(file, Buffer.concat([header, Buffer.alloc(100, 1)]))
    },
  ],
]

for (const [damage, apply] of damages) {
  test(`recovery truncates ${damage} and appends continue after the last valid record`, async (t) => {
    const dir = await tempDir(t)
    const file = await writeLog(dir, 3)
    await apply(file)
    const sizeBefore = (await stat(file)).size
    const expectedHead = damage.startsWith('a flipped') ? 616 : 924

    const state = new WalSharedState()
    const wal = new WalWriter(walOptions(dir), state)
    t.after(() => wal.close())
    const report = await wal.open()
    assert.equal(report.head, expectedHead)
    assert.equal(report.truncatedBytes, sizeBefore - expectedHead)
    assert.ok(report.truncatedBytes > 0)
    assert.equal(state.durableHead, expectedHead)
    assert.equal((await stat(file)).size, expectedHead)

    assert.equal(await wal.append(payload(9), { durable: true }), expectedHead + 308)
    const kept = expectedHead / 308
    assert.deepEqual(await payloadsIn(file), [
      ...Array.from({ length: kept }, (_, i) => `event-${i}-`),
      'event-9-',
    ])
  })
}

test('a clean log is not truncated', async (t) => {
  const dir = await tempDir(t)
  const file = await writeLog(dir, 4)
  const wal = new WalWriter(walOptions(dir), new WalSharedState())
  t.after(() => wal.close())
  const report = await wal.open()
  assert.deepEqual(report, { segments: 1, oldest: 0, head: 1232, truncatedBytes: 0, skippedBytes: 0 })
  assert.equal((await stat(file)).size, 1232)
})

test('a tail torn down to nothing leaves an empty segment at its start', async (t) => {
  const dir = await tempDir(t)
  const options = walOptions(dir, { segmentBytes: 600 })
  const wal = new WalWriter(options, new WalSharedState())
  await wal.open()
  for (let i = 0; i < 3; i++) await wal.append(payload(i), { durable: true })
  await wal.close()
  const tail = join(options.dir, segmentName(616))
  await truncate(tail, 100)

  const again = new WalWriter(options, new WalSharedState())
  t.after(() => again.close())
  const report = await again.open()
  assert.equal(report.head, 616)
  assert.equal(report.truncatedBytes, 100)
  assert.equal(await again.append(payload(3), { durable: true }), 924)
})

test('only the last segment is scanned at start: a sealed segment is left as it is', async (t) => {
  const dir = await tempDir(t)
  const options = walOptions(dir, { segmentBytes: 600 })
  const wal = new WalWriter(options, new WalSharedState())
  await wal.open()
  for (let i = 0; i < 3; i++) await wal.append(payload(i), { durable: true })
  await wal.close()
  const sealed = join(options.dir, segmentName(0))
  const buf = await readFile(sealed)
  buf[20] ^= 0xff
  await writeFile(sealed, buf)

  const again = new WalWriter(options, new WalSharedState())
  t.after(() => again.close())
  const report = await again.open()
  assert.equal(report.truncatedBytes, 0)
  assert.equal(report.head, 924)
  assert.equal((await stat(sealed)).size, 616)
})

test('a flipped byte in the middle of the last segment is skipped, not cut: the records after it survive', async (t) => {
  const dir = await tempDir(t)
  const { wal, options, sealed: tail } = await sealedLog(t, dir, 2000, false)
  await wal.close()
  await damage(tail, flipPayload(1000))

  const recovered = await recoverLog(options.dir, options.maxRecordBytes, nodeWalIo)
  await recovered.tail?.file.close()
  assert.equal(recovered.truncatedBytes, 0)
  assert.equal(recovered.tail?.size, 2000 * RECORD)
  assert.deepEqual(
    recovered.damaged.map((d) => [d.segment, d.offset, d.end]),
    [[segmentName(0), 1000 * RECORD, 1001 * RECORD]],
  )
  assert.match(recovered.damaged[0].reason, /crc32c mismatch/)

  const state = new WalSharedState()
  const again = new WalWriter(options, state)
  t.after(() => again.close())
  const report = await again.open()
  assert.equal(report.head, 2000 * RECORD)
  assert.equal(report.truncatedBytes, 0)
  assert.equal(await again.append(line(2000), { durable: true }), 2001 * RECORD)
  const read = await readEverything(options.dir, state)
  assert.deepEqual(ids(read), expectedIds(0, 2001, [1000]))
  assert.equal(state.damagedRanges, 1)
})

test('damage in the middle of the last segment and a torn tail after it: the damage is skipped, the tail cut', async (t) => {
  const dir = await tempDir(t)
  const { wal, options, sealed: tail } = await sealedLog(t, dir, 50, false)
  await wal.close()
  await damage(tail, flipPayload(20))
  await appendFile(tail, encodeRecord(line(50)).subarray(0, 60))

  const state = new WalSharedState()
  const again = new WalWriter(options, state)
  t.after(() => again.close())
  const report = await again.open()
  assert.equal(report.head, 50 * RECORD)
  assert.equal(report.truncatedBytes, 60)
  assert.equal((await stat(tail)).size, 50 * RECORD)
  assert.deepEqual(ids(await readEverything(options.dir, state)), expectedIds(0, 50, [20]))
})

test('a torn tail of records shaped like the writer’s is still cut at its start', async (t) => {
  const dir = await tempDir(t)
  const { wal, options, sealed: tail } = await sealedLog(t, dir, 50, false)
  await wal.close()
  // A group cut by a crash inside its record: no whole record follows, so nothing was acked there.
  await appendFile(tail, encodeRecord(line(50)).subarray(0, 70))

  const again = new WalWriter(options, new WalSharedState())
  t.after(() => again.close())
  const report = await again.open()
  assert.equal(report.head, 50 * RECORD)
  assert.equal(report.truncatedBytes, 70)
})

/** Every record a fresh reader (a sink starting at 0) gets from the log. */
async function readEverything(dir: string, state: WalSharedState): Promise<WalRecord[]> {
  const reader = new WalReader(dir, new WalSharedState(state.buffer), { from: 0, maxRecordBytes: 64 * 1024 })
  try {
    const all: WalRecord[] = []
    for (;;) {
      const records = await reader.read(1 << 20)
      if (records.length === 0) return all
      all.push(...records)
    }
  } finally {
    await reader.close()
  }
}

import assert from 'node:assert/strict'
import { appendFile, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { inspectWal, verifyWal } from '../../../src/wal/inspect.ts'
import { WalReader } from '../../../src/wal/reader.ts'
import { segmentName } from '../../../src/wal/segment.ts'
import { WalSharedState } from '../../../src/wal/shared-state.ts'
import { WalWriter } from '../../../src/wal/writer.ts'
import { damage, flipPayload, RECORD, sealedLog } from './damage-helpers.ts'
import { payload, tempDir, walOptions } from './helpers.ts'

const MAX = 64 * 1024

/** Nine 308-byte records in segments of three: [0, 924) [924, 1848) [1848, 2772). */
async function writeLog(dir: string): Promise<string> {
  const options = walOptions(dir, { segmentBytes: 900 })
  const wal = new WalWriter(options, new WalSharedState())
  await wal.open()
  for (let i = 0; i < 9; i++) await wal.append(payload(i), { durable: true })
  await wal.close()
  return options.dir
}

test('inspect lists each segment with its range and record count, and the totals', async (t) => {
  const dir = await writeLog(await tempDir(t))
  const report = await inspectWal(dir)
  assert.deepEqual(
    report.segments.map((s) => [s.file, s.start, s.end, s.records, s.firstEnd, s.validEnd, s.stop]),
    [
      [segmentName(0), 0, 924, 3, 308, 924, null],
      [segmentName(924), 924, 1848, 3, 1232, 1848, null],
      [segmentName(1848), 1848, 2772, 3, 2156, 2772, null],
    ],
  )
  assert.deepEqual(report.totals, { segments: 3, records: 9, bytes: 2772, oldest: 0, head: 2772 })
  // Plain data: the CLI prints it as JSON.
  assert.deepEqual(JSON.parse(JSON.stringify(report)), report)
})

test('verify passes a clean log, and an empty or missing directory', async (t) => {
  const base = await tempDir(t)
  const dir = await writeLog(base)
  assert.deepEqual(await verifyWal(dir, MAX), {
    ok: true,
    problems: [],
    warnings: [],
    segments: 3,
    records: 9,
    bytes: 2772,
    oldest: 0,
    head: 2772,
    kept: [],
  })
  const missing = await verifyWal(join(base, 'nothing'), MAX)
  assert.equal(missing.ok, true)
  assert.equal(missing.records, 0)
})

test('verify reports a CRC mismatch in a sealed segment as a problem', async (t) => {
  const dir = await writeLog(await tempDir(t))
  const middle = join(dir, segmentName(924))
  const buf = await readFile(middle)
  buf[308 + 200] ^= 0x10
  await writeFile(middle, buf)
  const report = await verifyWal(dir, MAX)
  assert.equal(report.ok, false)
  assert.equal(report.problems.length, 1)
  assert.match(report.problems[0], /00000000000000000924\.wal at position 1232: crc32c mismatch/)
  assert.match(report.problems[0], /616 bytes/)
  assert.equal(report.records, 7)
})

test('verify reports a torn tail as a warning: the next start truncates it', async (t) => {
  const dir = await writeLog(await tempDir(t))
  await appendFile(join(dir, segmentName(1848)), Buffer.alloc(512))
  const report = await verifyWal(dir, MAX)
  assert.equal(report.ok, true)
  assert.equal(report.warnings.length, 1)
  assert.match(report.warnings[0], /torn tail of 512 bytes/)
  assert.equal(report.head, 2772)
})

test('a gap left by deleted segments at the front is normal; a gap between segments is a warning', async (t) => {
  const dir = await writeLog(await tempDir(t))
  await rename(join(dir, segmentName(0)), join(dir, 'moved-away'))
  assert.deepEqual((await verifyWal(dir, MAX)).warnings, [])
  await rename(join(dir, segmentName(1848)), join(dir, segmentName(5000)))
  const report = await verifyWal(dir, MAX)
  assert.equal(report.ok, true)
  assert.equal(report.oldest, 924)
  assert.match(report.warnings[0], /gap of 3152 bytes/)
})

test('overlapping segments and badly named segment files are problems', async (t) => {
  const dir = await writeLog(await tempDir(t))
  await rename(join(dir, segmentName(1848)), join(dir, segmentName(1800)))
  await writeFile(join(dir, '42.wal'), '')
  const report = await verifyWal(dir, MAX)
  assert.equal(report.ok, false)
  assert.equal(report.problems.length, 2)
  assert.ok(report.problems.some((p) => /42\.wal: not a segment name/.test(p)))
  assert.ok(report.problems.some((p) => /starts at 1800, inside .*positions overlap/.test(p)))
})

test('inspect and verify list each damaged range and count the records after it', async (t) => {
  const dir = await tempDir(t)
  const { wal, options, sealed } = await sealedLog(t, dir, 2000)
  await wal.close()
  await damage(sealed, (buf) => {
    flipPayload(10)(buf)
    flipPayload(1500)(buf)
  })
  const inspection = await inspectWal(options.dir, MAX)
  assert.deepEqual(
    inspection.segments[0].damaged.map((d) => [d.offset, d.end, d.position, d.bytes]),
    [
      [10 * RECORD, 11 * RECORD, 10 * RECORD, RECORD],
      [1500 * RECORD, 1501 * RECORD, 1500 * RECORD, RECORD],
    ],
  )
  assert.equal(inspection.segments[0].records, 1998)
  assert.equal(inspection.segments[0].stop, null)

  const report = await verifyWal(options.dir, MAX)
  assert.equal(report.ok, false)
  assert.equal(report.records, 1999)
  assert.equal(report.problems.length, 2)
  assert.match(
    report.problems[0],
    /at position 1000 \(offsets 1000-1100\): crc32c mismatch.*100 damaged bytes.*position 1100/,
  )
})

test('verify warns about damaged bytes a server kept aside, and inspect lists them', async (t) => {
  const dir = await tempDir(t)
  const { state, options, sealed } = await sealedLog(t, dir, 200)
  await damage(sealed, flipPayload(42))
  const reader = new WalReader(options.dir, new WalSharedState(state.buffer), {
    from: 0,
    maxRecordBytes: MAX,
  })
  t.after(() => reader.close())
  while ((await reader.read(1 << 20)).length > 0) {}
  // The segment is delivered and deleted: only the copy is left.
  await rename(sealed, join(dir, 'gone'))

  const report = await verifyWal(options.dir, MAX)
  assert.equal(report.ok, true)
  assert.equal(report.warnings.length, 1)
  assert.match(report.warnings[0], /1 damaged range\(s\), 100 bytes, skipped and kept aside in .*damaged/)
  assert.deepEqual(report.kept, [
    {
      file: `${segmentName(0)}.4200-4300.damaged`,
      segment: segmentName(0),
      from: 4200,
      to: 4300,
      bytes: 100,
    },
  ])
  assert.deepEqual((await inspectWal(options.dir)).kept, report.kept)
})

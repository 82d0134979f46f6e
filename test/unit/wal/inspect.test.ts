import assert from 'node:assert/strict'
import { appendFile, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { inspectWal, verifyWal } from '../../../src/wal/inspect.ts'
import { segmentName } from '../../../src/wal/segment.ts'
import { WalSharedState } from '../../../src/wal/shared-state.ts'
import { WalWriter } from '../../../src/wal/writer.ts'
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

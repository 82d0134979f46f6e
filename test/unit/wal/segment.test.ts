import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { listSegments, parseSegmentName, segmentIndexAt, segmentName } from '../../../src/wal/segment.ts'
import { tempDir } from './helpers.ts'

test('a segment is named by the 20-digit position of its first byte', () => {
  assert.equal(segmentName(0), '00000000000000000000.wal')
  assert.equal(segmentName(67_108_864), '00000000000067108864.wal')
  assert.equal(parseSegmentName('00000000000067108864.wal'), 67_108_864)
  assert.equal(parseSegmentName('67108864.wal'), undefined)
  assert.equal(parseSegmentName('00000000000067108864.wal.tmp'), undefined)
  assert.throws(() => segmentName(-1), RangeError)
})

test('listing returns the segments in log order and ignores other files', async (t) => {
  const dir = await tempDir(t)
  for (const start of [2048, 0, 1_000_000, 512]) await writeFile(join(dir, segmentName(start)), '')
  await writeFile(join(dir, 'notes.txt'), '')
  await writeFile(join(dir, '12.wal'), '')
  const segments = await listSegments(dir)
  assert.deepEqual(
    segments.map((s) => s.start),
    [0, 512, 2048, 1_000_000],
  )
  assert.deepEqual(await listSegments(join(dir, 'missing')), [])
})

test('the segment holding a position is the last one starting at or before it', () => {
  const segments = [{ start: 100 }, { start: 200 }, { start: 500 }]
  assert.equal(segmentIndexAt(segments, 99), -1)
  assert.equal(segmentIndexAt(segments, 100), 0)
  assert.equal(segmentIndexAt(segments, 199), 0)
  assert.equal(segmentIndexAt(segments, 200), 1)
  assert.equal(segmentIndexAt(segments, 10_000), 2)
  assert.equal(segmentIndexAt([], 0), -1)
})

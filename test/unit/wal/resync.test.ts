import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { open, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { encodeRecord } from '../../../src/wal/record.ts'
import { findNextRecord } from '../../../src/wal/scan.ts'
import { line } from './damage-helpers.ts'
import { tempDir } from './helpers.ts'

const MAX = 64 * 1024

async function search(
  t: { after: (fn: () => Promise<void> | void) => void },
  bytes: Buffer,
  from = 0,
  chunk?: number,
) {
  const path = join(await tempDir(t), 'segment')
  await writeFile(path, bytes)
  const file = await open(path, 'r')
  t.after(() => file.close())
  return findNextRecord(file, from, bytes.length, MAX, chunk)
}

test('resynchronisation finds a record of the writer’s shape hidden in random bytes, across chunk edges', async (t) => {
  const noise = randomBytes(3 << 20)
  const record = encodeRecord(line(7))
  const at = 2_500_001
  record.copy(noise, at)
  assert.equal(await search(t, noise, 0, 64 * 1024), at)
  assert.equal(await search(t, noise, 0, 4093), at, 'a chunk size that puts headers across edges')
})

test('resynchronisation passes over a valid record whose payload is not NDJSON, and one cut by the end', async (t) => {
  const opaque = encodeRecord(Buffer.from('not an event, but checksummed'))
  const good = encodeRecord(line(1))
  const zeros = Buffer.alloc(1000)
  const bytes = Buffer.concat([zeros, opaque, zeros, good, zeros, good.subarray(0, 60)])
  assert.equal(await search(t, bytes), 1000 + opaque.length + 1000)
  assert.equal(await search(t, bytes, 1000 + opaque.length + 1000 + 1), undefined)
})

test('resynchronisation refuses a record whose checksum does not match', async (t) => {
  const record = encodeRecord(line(3))
  record[20] ^= 0x01
  assert.equal(await search(t, Buffer.concat([Buffer.alloc(50), record, Buffer.alloc(50)])), undefined)
})

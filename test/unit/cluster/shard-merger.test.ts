/**
 * The shard merger (src/cluster/shard-merger.ts) on real WAL files: what a worker made durable in
 * its shard arrives in the node's WAL in order, packed into larger records; it never reads past
 * the head the worker reported; the cursor is saved and a new merger goes on from it without
 * merging anything twice; a drain merges everything up to the head before it stops.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { pino } from 'pino'
import { loadMergeCursor, ShardMerger } from '../../../src/cluster/shard-merger.ts'
import { WalReader } from '../../../src/wal/reader.ts'
import { WalSharedState } from '../../../src/wal/shared-state.ts'
import { openWal, payload, tempDir } from '../wal/helpers.ts'

const logger = pino({ level: 'silent' })
const MAX = 1 << 20

type After = Parameters<typeof tempDir>[0]

/** A shard (its writer, and the head the "worker" reports) and a node WAL to merge into. */
async function setup(t: After) {
  const root = await tempDir(t, 'spillway-merge-')
  const shardDir = join(root, 'shard')
  const shard = await openWal(t, shardDir, { maxRecordBytes: MAX })
  const node = await openWal(t, join(root, 'node'), { maxRecordBytes: MAX })
  const reported = new WalSharedState()
  const merger = (state = reported) =>
    new ShardMerger({ shard: 0, dir: shardDir, state, target: node.wal, maxRecordBytes: MAX, logger })
  return { shardDir, shard, node, reported, merger }
}

/** Every payload of the node's WAL, split back into the NDJSON lines the shard records were. */
async function nodeLines(node: { options: { dir: string }; state: WalSharedState }): Promise<string[]> {
  const reader = new WalReader(node.options.dir, node.state, { from: 0, maxRecordBytes: MAX })
  const lines: string[] = []
  try {
    for (;;) {
      const records = await reader.read(MAX)
      if (records.length === 0) return lines
      for (const r of records) lines.push(...r.payload.toString().split('\n').filter(Boolean))
    }
  } finally {
    await reader.close()
  }
}

const line = (i: number) => Buffer.from(`${payload(i, 200).toString()}\n`)

test('durable shard records arrive in the node’s WAL in order, packed; the cursor is saved', async (t) => {
  const { shardDir, shard, node, reported, merger } = await setup(t)
  for (let i = 0; i < 3000; i++) await shard.wal.append(line(i)).catch(assert.fail)
  reported.durableHead = shard.state.durableHead
  const m = merger()
  await m.start()
  await m.stop({ drain: true })
  const lines = await nodeLines(node)
  assert.equal(lines.length, 3000)
  assert.deepEqual(
    lines.slice(0, 3),
    [0, 1, 2].map((i) => line(i).toString().trim()),
  )
  assert.equal(lines.at(-1), line(2999).toString().trim())
  assert.equal(m.cursor, shard.state.durableHead)
  assert.equal(await loadMergeCursor(shardDir), shard.state.durableHead)
  assert.equal(m.savedCursor, shard.state.durableHead)
  assert.equal(m.mergedRecords, 3000)
  // One node record per shard record (a request): damage in the node's WAL costs one request.
  assert.equal(node.wal.stats.records, 3000)
})

test('it never reads past the head the worker reported', async (t) => {
  const { shard, node, reported, merger } = await setup(t)
  for (let i = 0; i < 10; i++) await shard.wal.append(line(i))
  const half = shard.state.durableHead
  for (let i = 10; i < 20; i++) await shard.wal.append(line(i))
  reported.durableHead = half
  const m = merger()
  await m.start()
  await new Promise((resolve) => setTimeout(resolve, 100))
  assert.equal(m.cursor, half)
  assert.equal((await nodeLines(node)).length, 10)
  reported.durableHead = shard.state.durableHead // the next report wakes it
  await m.stop({ drain: true })
  assert.equal((await nodeLines(node)).length, 20)
})

test('a new merger goes on from the saved cursor: nothing is merged twice', async (t) => {
  const { shard, node, reported, merger } = await setup(t)
  for (let i = 0; i < 50; i++) await shard.wal.append(line(i))
  reported.durableHead = shard.state.durableHead
  const first = merger()
  await first.start()
  await first.stop({ drain: true })
  for (let i = 50; i < 80; i++) await shard.wal.append(line(i))
  const state = new WalSharedState()
  state.durableHead = shard.state.durableHead
  const second = merger(state)
  await second.start()
  assert.equal(state.cursor(0), reported.durableHead, 'the loaded cursor is published in slot 0')
  await second.stop({ drain: true })
  const lines = await nodeLines(node)
  assert.equal(lines.length, 80)
  assert.equal(new Set(lines).size, 80)
})

test('a node WAL that refuses (closed) leaves the cursor where it was', async (t) => {
  const { shardDir, shard, node, reported, merger } = await setup(t)
  for (let i = 0; i < 5; i++) await shard.wal.append(line(i))
  await node.wal.close()
  reported.durableHead = shard.state.durableHead
  const m = merger()
  await m.start()
  await new Promise((resolve) => setTimeout(resolve, 100))
  await m.stop({ drain: false })
  assert.equal(m.cursor, 0)
  assert.equal(await loadMergeCursor(shardDir), null)
})

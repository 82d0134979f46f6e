import assert from 'node:assert/strict'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { isSpillwayError } from '../../../src/errors.ts'
import { decodeRecord } from '../../../src/wal/record.ts'
import { segmentName } from '../../../src/wal/segment.ts'
import { WalSharedState } from '../../../src/wal/shared-state.ts'
import { WalWriter } from '../../../src/wal/writer.ts'
import { openWal, payload, tempDir, tick, tracked, walOptions } from './helpers.ts'

/** Every record of a segment file, decoded. */
async function recordsIn(path: string, max = 1 << 20): Promise<Buffer[]> {
  const buf = await readFile(path)
  const out: Buffer[] = []
  for (let i = 0; i < buf.length; ) {
    const r = decodeRecord(buf, i, max)
    assert.equal(r.status, 'ok', `record at ${i} of ${path}`)
    if (r.status !== 'ok') break
    out.push(Buffer.from(r.payload))
    i += r.size
  }
  return out
}

test('an empty directory starts the log at position 0', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, options } = await openWal(t, dir)
  assert.equal(wal.head, 0)
  assert.equal(state.durableHead, 0)
  assert.equal(state.oldest, 0)
  assert.deepEqual(await readdir(options.dir), [segmentName(0)])
})

test('append resolves with the end position of its record', async (t) => {
  const dir = await tempDir(t)
  const { wal } = await openWal(t, dir)
  assert.equal(await wal.append(Buffer.from('abc'), { durable: true }), 11)
  assert.equal(await wal.append(Buffer.from('defgh'), { durable: true }), 24)
  assert.equal(wal.head, 24)
})

test('append resolves only after fdatasync, and the head moves after it', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, io } = await openWal(t, dir)
  const held = io.hold()
  const append = tracked(wal.append(payload(1), { durable: true }))
  await held
  await tick()
  assert.equal(append.settled, false, 'resolved before the fdatasync returned')
  assert.equal(state.durableHead, 0)
  assert.equal(wal.pendingRecords, 1)
  io.release()
  assert.equal(await append.promise, 308)
  assert.equal(state.durableHead, 308)
  assert.equal(wal.pendingRecords, 0)
})

test('a buffered append resolves after the write, before the fdatasync; the head waits for the fsync', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, io } = await openWal(t, dir)
  const held = io.hold()
  const durable = tracked(wal.append(payload(1), { durable: true }))
  const buffered = tracked(wal.append(payload(2), { durable: false }))
  await held
  assert.equal(await buffered.promise, 616)
  assert.equal(durable.settled, false)
  assert.equal(state.durableHead, 0, 'head published before the fsync')
  io.release()
  assert.equal(await durable.promise, 308)
  assert.equal(state.durableHead, 616)
})

test('200 concurrent appends share a few fdatasyncs', async (t) => {
  const dir = await tempDir(t)
  const { wal, io, options } = await openWal(t, dir)
  const ends = await Promise.all(
    Array.from({ length: 200 }, (_, i) => wal.append(payload(i), { durable: true })),
  )
  assert.ok(io.datasyncs <= 5, `${io.datasyncs} fdatasyncs for 200 appends`)
  assert.equal(wal.stats.records, 200)
  // Positions follow the order of the calls, and the file holds the records in that order.
  assert.deepEqual(
    ends,
    Array.from({ length: 200 }, (_, i) => (i + 1) * 308),
  )
  const records = await recordsIn(join(options.dir, segmentName(0)))
  assert.deepEqual(
    records,
    Array.from({ length: 200 }, (_, i) => payload(i)),
  )
})

test('appends that arrive while a group is being fsynced form the next group', async (t) => {
  const dir = await tempDir(t)
  const { wal, io } = await openWal(t, dir)
  const held = io.hold()
  const first = wal.append(payload(0), { durable: true })
  await held
  const rest = Array.from({ length: 50 }, (_, i) => wal.append(payload(i + 1), { durable: true }))
  assert.equal(wal.pendingRecords, 51)
  io.release()
  await Promise.all([first, ...rest])
  assert.equal(wal.stats.groups, 2)
  assert.equal(wal.stats.lastGroupRecords, 50)
  assert.equal(io.datasyncs, 2)
})

test('groups start at most once per delay: an idle writer writes at once, the appends that follow share the next group', async (t) => {
  const dir = await tempDir(t)
  const { wal, io } = await openWal(t, dir, { groupCommitDelayMs: 60_000 })
  const timeout = new Promise((_, reject) =>
    setTimeout(() => reject(new Error('the first append waited for the delay')), 5000).unref(),
  )
  await Promise.race([wal.append(payload(0), { durable: true }), timeout])
  assert.equal(io.datasyncs, 1)
  let done = 0
  const next = Array.from({ length: 5 }, (_, i) =>
    wal.append(payload(i + 1), { durable: true }).then(() => done++),
  )
  await new Promise((resolve) => setTimeout(resolve, 100))
  assert.equal(done, 0, 'within the spacing, appends wait')
  await wal.close() // a close writes what waits at once
  await Promise.all(next)
  assert.equal(io.datasyncs, 3, 'one group for the five, and the close')
  assert.equal(wal.stats.lastGroupRecords, 5)
})

test('groupCommitBytes pending starts the write without waiting for the delay', async (t) => {
  const dir = await tempDir(t)
  const { wal } = await openWal(t, dir, { groupCommitDelayMs: 60_000, groupCommitBytes: 4096 })
  await wal.append(payload(0), { durable: true }) // the group that starts the spacing
  const appends = Array.from({ length: 40 }, (_, i) => wal.append(payload(i), { durable: true }))
  const timeout = new Promise((_, reject) =>
    setTimeout(() => reject(new Error('a full group waited for the delay')), 5000).unref(),
  )
  // The first of them is in the group that groupCommitBytes started; the rest wait for the spacing.
  await Promise.race([appends[0], timeout])
  await wal.close()
  await Promise.all(appends)
})

test('large payloads are written from the caller buffer and stay in order with small ones', async (t) => {
  const dir = await tempDir(t)
  const { wal, options } = await openWal(t, dir, { maxRecordBytes: 1 << 20 })
  const items = [payload(0), Buffer.alloc(200_000, 'L'), payload(1), Buffer.alloc(70_000, 'M'), payload(2)]
  await Promise.all(items.map((p) => wal.append(p, { durable: true })))
  assert.deepEqual(await recordsIn(join(options.dir, segmentName(0))), items)
})

test('the writer rotates to a segment named by the head, and fsyncs the directory', async (t) => {
  const dir = await tempDir(t)
  const { wal, options, io } = await openWal(t, dir, { segmentBytes: 1000 })
  const dirSyncsAtOpen = io.dirSyncs
  for (let i = 0; i < 10; i++) await wal.append(payload(i), { durable: true })
  assert.equal(io.dirSyncs - dirSyncsAtOpen, 2)
  const names = (await readdir(options.dir)).sort()
  // 308-byte records: a segment takes groups until it holds ≥ 1000 bytes (4 records).
  assert.deepEqual(names, [segmentName(0), segmentName(1232), segmentName(2464)])
  assert.equal((await stat(join(options.dir, segmentName(0)))).size, 1232)
  assert.equal(wal.stats.rotations, 2)
  const all = []
  for (const name of names) all.push(...(await recordsIn(join(options.dir, name))))
  assert.deepEqual(
    all,
    Array.from({ length: 10 }, (_, i) => payload(i)),
  )
})

test('a record larger than maxRecordBytes rejects without touching the log', async (t) => {
  const dir = await tempDir(t)
  const { wal, io } = await openWal(t, dir, { maxRecordBytes: 1000 })
  await assert.rejects(wal.append(Buffer.alloc(1001), { durable: true }), (error) =>
    isSpillwayError(error, 'SPW_ERR_WAL_RECORD_TOO_LARGE'),
  )
  await assert.rejects(wal.append(Buffer.alloc(0), { durable: true }), RangeError)
  await tick()
  assert.equal(io.writes, 0)
  assert.equal(wal.head, 0)
  assert.equal(await wal.append(Buffer.alloc(1000), { durable: true }), 1008)
})

test('close flushes what is pending; later appends reject with SPW_ERR_WAL_CLOSED', async (t) => {
  const dir = await tempDir(t)
  const state = new WalSharedState()
  const wal = new WalWriter(walOptions(dir), state)
  await assert.rejects(wal.append(payload(0), { durable: true }), (error) =>
    isSpillwayError(error, 'SPW_ERR_WAL_CLOSED'),
  )
  await wal.open()
  const pending = Array.from({ length: 10 }, (_, i) => wal.append(payload(i), { durable: i % 2 === 0 }))
  await wal.close()
  assert.equal((await Promise.all(pending)).at(-1), 3080)
  assert.equal(state.durableHead, 3080)
  const error = await wal.append(payload(99), { durable: true }).catch((e: unknown) => e)
  assert.ok(isSpillwayError(error, 'SPW_ERR_WAL_CLOSED'))
  assert.equal(error.retryable, true)
  await wal.close() // idempotent
})

test('a full disk rejects the group with SPW_ERR_WAL_IO, leaves no partial data, and the next append works', async (t) => {
  const dir = await tempDir(t)
  const { wal, io, state, options } = await openWal(t, dir)
  await wal.append(payload(0), { durable: true })
  io.failNextWrite = { code: 'ENOSPC', partialBytes: 500 }
  const results = await Promise.allSettled(
    Array.from({ length: 3 }, (_, i) => wal.append(payload(i + 1), { durable: i !== 1 })),
  )
  for (const result of results) {
    assert.equal(result.status, 'rejected')
    if (result.status === 'rejected') {
      assert.ok(isSpillwayError(result.reason, 'SPW_ERR_WAL_IO'))
      assert.equal(result.reason.retryable, true)
      assert.match(result.reason.message, /ENOSPC/)
    }
  }
  const file = join(options.dir, segmentName(0))
  assert.equal((await stat(file)).size, 308, 'the partial write was not cut off')
  assert.equal(state.durableHead, 308)
  assert.equal(wal.stats.failedGroups, 1)

  assert.equal(await wal.append(payload(4), { durable: true }), 616)
  assert.deepEqual(await recordsIn(file), [payload(0), payload(4)])
})

test('a failed fdatasync rejects the durable appends of the group and cuts the group off', async (t) => {
  const dir = await tempDir(t)
  const { wal, io, state, options } = await openWal(t, dir)
  io.failNextDatasync = 'EIO'
  const results = await Promise.allSettled([
    wal.append(payload(0), { durable: true }),
    wal.append(payload(1), { durable: false }),
  ])
  assert.equal(results[0].status, 'rejected')
  if (results[0].status === 'rejected') assert.match(results[0].reason.message, /fdatasync failed \(EIO\)/)
  // The buffered append had its answer (after the write) before the fsync failed: that is the
  // trade `ack: buffered` makes.
  assert.equal(results[1].status, 'fulfilled')
  assert.equal(state.durableHead, 0)
  assert.equal((await stat(join(options.dir, segmentName(0)))).size, 0)
  assert.equal(await wal.append(payload(2), { durable: true }), 308)
})

test('a failed rotation keeps the old segment active and the next group retries it', async (t) => {
  const dir = await tempDir(t)
  const { wal, io, options } = await openWal(t, dir, { segmentBytes: 300 })
  await wal.append(payload(0), { durable: true })
  io.failNextOpen = 'EMFILE'
  await assert.rejects(wal.append(payload(1), { durable: true }), (error) =>
    isSpillwayError(error, 'SPW_ERR_WAL_IO'),
  )
  assert.equal(await wal.append(payload(2), { durable: true }), 616)
  assert.deepEqual((await readdir(options.dir)).sort(), [segmentName(0), segmentName(308)])
  assert.deepEqual(await recordsIn(join(options.dir, segmentName(308))), [payload(2)])
})

test('deleteDelivered removes only segments wholly below the cursor, never the active one', async (t) => {
  const dir = await tempDir(t)
  const { wal, state, options } = await openWal(t, dir, { segmentBytes: 600 })
  for (let i = 0; i < 7; i++) await wal.append(payload(i), { durable: true })
  // Segments: [0, 616) [616, 1232) [1232, 1848) [1848, 2156) active.
  assert.deepEqual((await readdir(options.dir)).sort(), [0, 616, 1232, 1848].map(segmentName))
  assert.equal(await wal.deleteDelivered(615), 0)
  assert.equal(await wal.deleteDelivered(1000), 1)
  assert.equal(state.oldest, 616)
  assert.equal(await wal.deleteDelivered(wal.head), 2)
  assert.deepEqual(await readdir(options.dir), [segmentName(1848)])
  assert.equal(state.oldest, 1848)
  assert.equal(wal.oldest, 1848)
  assert.equal(await wal.deleteDelivered(Number.MAX_SAFE_INTEGER), 0, 'the active segment was deleted')
})

test('reopening continues after the last record', async (t) => {
  const dir = await tempDir(t)
  const options = walOptions(dir, { segmentBytes: 700 })
  const first = new WalWriter(options, new WalSharedState())
  await first.open()
  for (let i = 0; i < 5; i++) await first.append(payload(i), { durable: true })
  await first.close()

  const state = new WalSharedState()
  const second = new WalWriter(options, state)
  t.after(() => second.close())
  const report = await second.open()
  assert.deepEqual(report, { segments: 2, oldest: 0, head: 1540, truncatedBytes: 0, skippedBytes: 0 })
  assert.equal(state.durableHead, 1540)
  assert.equal(await second.append(payload(5), { durable: true }), 1848)
})

test('minHead beyond the recovered head starts a new segment there', async (t) => {
  const dir = await tempDir(t)
  const options = walOptions(dir)
  const first = new WalWriter(options, new WalSharedState())
  await first.open()
  await first.append(payload(0), { durable: true })
  await first.close()

  const state = new WalSharedState()
  const second = new WalWriter(options, state)
  t.after(() => second.close())
  const report = await second.open({ minHead: 5000 })
  assert.equal(report.head, 5000)
  assert.equal(report.skippedBytes, 4692)
  assert.equal(state.durableHead, 5000)
  assert.equal(await second.append(payload(1), { durable: true }), 5308)
  assert.deepEqual((await readdir(options.dir)).sort(), [segmentName(0), segmentName(5000)])
})

test('minHead at or below the head changes nothing; on an empty directory it names the first segment', async (t) => {
  const dir = await tempDir(t)
  const { wal } = await openWal(t, dir, {}, { minHead: 0 })
  await wal.append(payload(0), { durable: true })
  await wal.close()
  const again = new WalWriter(walOptions(dir), new WalSharedState())
  t.after(() => again.close())
  assert.equal((await again.open({ minHead: 100 })).head, 308)

  const fresh = await tempDir(t)
  const { wal: other, options } = await openWal(t, fresh, {}, { minHead: 4096 })
  assert.equal(other.head, 4096)
  assert.deepEqual(await readdir(options.dir), [segmentName(4096)])
})

test('an empty tail segment below minHead is removed rather than left in the chain', async (t) => {
  const dir = await tempDir(t)
  const first = await openWal(t, dir)
  await first.wal.close()
  const second = new WalWriter(walOptions(dir), new WalSharedState())
  t.after(() => second.close())
  await second.open({ minHead: 777 })
  assert.deepEqual(await readdir(first.options.dir), [segmentName(777)])
})

test('options are checked when the writer is built', () => {
  const state = new WalSharedState()
  assert.throws(() => new WalWriter(walOptions('/tmp/x', { segmentBytes: 0 }), state), /segmentBytes/)
  assert.throws(
    () => new WalWriter(walOptions('/tmp/x', { maxRecordBytes: 2 ** 33 }), state),
    /maxRecordBytes/,
  )
  assert.throws(
    () => new WalWriter(walOptions('/tmp/x', { groupCommitDelayMs: -1 }), state),
    /groupCommitDelayMs/,
  )
})

test('append is durable unless told otherwise', async (t) => {
  const dir = await tempDir(t)
  const { wal, io } = await openWal(t, dir)
  const held = io.hold()
  const append = tracked(wal.append(payload(0)))
  await held
  await tick()
  assert.equal(append.settled, false)
  io.release()
  assert.equal(await append.promise, 308)
})

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { appendFile, mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { isSpillwayError } from '../../../src/errors.ts'
import {
  type DeadLetterEntry,
  DeadLetterStore,
  deadLetterUsage,
  dropDeadLetters,
  scanDeadLetters,
} from '../../../src/shared/dead-letter.ts'
import { tempDir } from '../delivery/helpers.ts'

/** The store's files (the directory also holds its lock file). */
async function jsonlFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.endsWith('.jsonl')).sort()
}

test('appended entries are listed back in order', async (t) => {
  const dir = join(await tempDir(t), 'deadletter')
  const store = new DeadLetterStore(dir, { source: 'delivery' })
  t.after(() => store.close())
  await store.append([
    { at: 1, sink: 'duckdb', reason: 'bad price', index: 0, position: 64, event: { event_id: 'a' } },
  ])
  await store.append([
    { at: 2, reason: 'user_id is required', index: 3, event: { event_name: 'x' } },
    { at: 3, reason: 'not JSON', event: '{oops' },
  ])
  assert.equal(store.count, 3)
  const entries = await store.list()
  assert.deepEqual(
    entries.map((e) => e.reason),
    ['bad price', 'user_id is required', 'not JSON'],
  )
  assert.deepEqual(entries[0], {
    at: 1,
    sink: 'duckdb',
    reason: 'bad price',
    index: 0,
    position: 64,
    event: { event_id: 'a' },
  })
  const files = await jsonlFiles(dir)
  assert.equal(files.length, 1)
  assert.match(files[0], /^delivery-.*\.jsonl$/)
})

test('two stores (HTTP thread and delivery thread) write separate files and list sees both', async (t) => {
  const dir = join(await tempDir(t), 'deadletter')
  const intake = new DeadLetterStore(dir, { source: 'intake' })
  const delivery = new DeadLetterStore(dir, { source: 'delivery' })
  t.after(async () => {
    await intake.close()
    await delivery.close()
  })
  await Promise.all([
    intake.append([{ at: 1, reason: 'a', event: 1 }]),
    delivery.append([{ at: 2, reason: 'b', event: 2 }]),
    intake.append([{ at: 3, reason: 'c', event: 3 }]),
  ])
  assert.equal((await jsonlFiles(dir)).length, 2)
  assert.deepEqual((await intake.list()).map((e) => e.reason).sort(), ['a', 'b', 'c'])
})

test('a torn last line (crash mid-append) is skipped', async (t) => {
  const dir = join(await tempDir(t), 'deadletter')
  const store = new DeadLetterStore(dir)
  t.after(() => store.close())
  await store.append([{ at: 1, reason: 'kept', event: null }])
  const [file] = await jsonlFiles(dir)
  await appendFile(join(dir, file), '{"at":2,"reas')
  assert.deepEqual(
    (await store.list()).map((e) => e.reason),
    ['kept'],
  )
})

test('an empty store lists nothing', async (t) => {
  const dir = join(await tempDir(t), 'deadletter')
  assert.deepEqual(await new DeadLetterStore(dir).list(), [])
})

test('an event that cannot be stringified is still recorded', async (t) => {
  const dir = join(await tempDir(t), 'deadletter')
  const store = new DeadLetterStore(dir)
  t.after(() => store.close())
  await store.append([{ at: 1, reason: 'bigint', event: { n: 10n } }])
  const [entry] = await store.list()
  assert.equal(entry.reason, 'bigint')
  assert.deepEqual(entry.event, { n: '10n' })
  assert.match(String(entry.eventTruncated), /BigInt/)
})

/** Makes every FileHandle#appendFile write half its data and fail with ENOSPC (and optionally truncate fail too). */
async function faultyDisk(
  t: { after: (fn: () => void) => void },
  dir: string,
  options: { truncateFails?: boolean } = {},
) {
  const probe = await open(join(dir, '..', 'probe'), 'w')
  const proto = Object.getPrototypeOf(probe) as {
    appendFile: (data: string) => Promise<void>
    truncate: (len?: number) => Promise<void>
  }
  await probe.close()
  const { appendFile: realAppend, truncate: realTruncate } = proto
  const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
  let armed = true
  proto.appendFile = async function (this: unknown, data: string) {
    if (!armed) return realAppend.call(this, data)
    await realAppend.call(this, data.slice(0, Math.ceil(data.length / 2)))
    throw enospc()
  }
  proto.truncate = async function (this: unknown, len?: number) {
    if (armed && options.truncateFails) throw enospc()
    return realTruncate.call(this, len)
  }
  const restore = () => {
    proto.appendFile = realAppend
    proto.truncate = realTruncate
  }
  t.after(restore)
  return {
    heal: () => {
      armed = false
    },
  }
}

test('a failed append (ENOSPC) is a retryable 503 and leaves no half-written line behind', async (t) => {
  const dir = join(await tempDir(t), 'deadletter')
  const store = new DeadLetterStore(dir, { source: 'intake' })
  t.after(() => store.close())
  await store.append([{ at: 1, reason: 'before', event: { n: 1 } }])
  const disk = await faultyDisk(t, dir)
  await assert.rejects(store.append([{ at: 2, reason: 'lost', event: { n: 2 } }]), (error: unknown) => {
    assert.ok(isSpillwayError(error, 'SPW_ERR_DEADLETTER_IO'))
    assert.equal(error.statusCode, 503)
    assert.equal(error.retryable, true)
    assert.match(
      error.message,
      /dead-letter store \(ENOSPC\); nothing of the request was accepted, retry later/,
    )
    return true
  })
  disk.heal()
  await store.append([{ at: 3, reason: 'after', event: { n: 3 } }])
  assert.deepEqual(
    (await store.list()).map((e) => e.reason),
    ['before', 'after'],
  )
  const [file] = await jsonlFiles(dir)
  const lines = (await readFile(join(dir, file), 'utf8')).split('\n').filter(Boolean)
  assert.equal(lines.length, 2, 'the partial line was cut back')
  assert.equal(store.count, 2)
})

test('when the partial line cannot be cut back either, the store moves on to a new file', async (t) => {
  const dir = join(await tempDir(t), 'deadletter')
  const store = new DeadLetterStore(dir)
  t.after(() => store.close())
  await store.append([{ at: 1, reason: 'before', event: 1 }])
  const disk = await faultyDisk(t, dir, { truncateFails: true })
  await assert.rejects(store.append([{ at: 2, reason: 'lost', event: 2 }]), /dead-letter store/)
  disk.heal()
  await store.append([{ at: 3, reason: 'after', event: 3 }])
  assert.equal((await jsonlFiles(dir)).length, 2, 'a second file')
  assert.deepEqual(
    (await store.list()).map((e) => e.reason),
    ['before', 'after'],
    'the torn tail of the first file is skipped, like after a crash',
  )
})

test('an event nested deeper than JSON.stringify can go is stored cut, not lost', async (t) => {
  const dir = join(await tempDir(t), 'deadletter')
  const store = new DeadLetterStore(dir)
  t.after(() => store.close())
  const depth = 200_000
  const deep = JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`)
  const cyclic: Record<string, unknown> = { a: 1 }
  cyclic['self'] = cyclic
  await store.append([
    { at: 1, reason: 'deep', index: 0, event: deep },
    { at: 2, reason: 'cycle', index: 1, event: cyclic },
  ])
  const [first, second] = await store.list()
  assert.equal(first.reason, 'deep')
  assert.match(String(first.eventTruncated), /could not be stored whole .*cut at 64 levels/)
  let level = 0
  let value: unknown = first.event
  while (Array.isArray(value)) {
    value = value[0]
    level++
  }
  assert.equal(level, 64)
  assert.equal(value, '[nested too deep]')
  assert.deepEqual(second.event, { a: 1, self: '[cycle]' })
})

test('every line has a stable id, <file>#<line>, that later appends do not change', async (t) => {
  const dir = join(await tempDir(t), 'deadletter')
  const store = new DeadLetterStore(dir, { source: 'intake' })
  t.after(() => store.close())
  await store.append([
    { at: 1, reason: 'a', event: 1 },
    { at: 1, reason: 'b', event: 2 },
  ])
  const before = await scanDeadLetters(dir)
  await store.append([{ at: 2, reason: 'c', event: 3 }])
  const after = await scanDeadLetters(dir)
  assert.deepEqual(
    after.slice(0, 2).map((s) => s.id),
    before.map((s) => s.id),
  )
  assert.match(after[2].id, /^intake-.*\.jsonl#3$/)
  assert.deepEqual(
    after.map((s) => [s.line, s.entry.reason]),
    [
      [1, 'a'],
      [2, 'b'],
      [3, 'c'],
    ],
  )
})

test('files are listed oldest first whatever their source', async (t) => {
  const dir = join(await tempDir(t), 'deadletter')
  await mkdir(dir, { recursive: true })
  await writeFile(
    join(dir, 'intake-2026-01-01T00-00-00-000Z-1-0-aaaaaa.jsonl'),
    '{"at":1,"reason":"old","event":1}\n',
  )
  await writeFile(
    join(dir, 'delivery-2026-02-01T00-00-00-000Z-1-1-bbbbbb.jsonl'),
    '{"at":2,"reason":"new","event":2}\n',
  )
  await mkdir(join(dir, 'replayed'))
  assert.deepEqual(
    (await scanDeadLetters(dir)).map((s) => s.entry.reason),
    ['old', 'new'],
  )
})

const invalid = (n: number, reason = 'user_id is required'): DeadLetterEntry => ({
  at: 1_000 + n,
  reason,
  index: n,
  event: { event_name: 'e', n, pad: 'x'.repeat(200) },
})
const batch = (from: number, count: number, reason?: string) =>
  Array.from({ length: count }, (_, i) => invalid(from + i, reason))

test('a full store refuses an append whole with a retryable 503 naming maxDeadLetterBytes, and stays bounded', async (t) => {
  const dir = join(await tempDir(t), 'deadletter')
  const limits = { maxBytes: 8 * 1024, maxEntries: 1_000_000 }
  const store = new DeadLetterStore(dir, { source: 'intake', limits })
  t.after(() => store.close())
  let kept = 0
  let refusal: unknown
  for (let i = 0; i < 20 && refusal === undefined; i++) {
    try {
      await store.append(batch(kept, 10))
      kept += 10
    } catch (error) {
      refusal = error
    }
  }
  assert.ok(isSpillwayError(refusal, 'SPW_ERR_DEADLETTER_FULL'), String(refusal))
  assert.equal(refusal.statusCode, 503)
  assert.equal(refusal.retryable, true)
  assert.equal((refusal as { retryAfterSeconds?: number }).retryAfterSeconds, 60)
  assert.match(refusal.message, /dead-letter store is full: keeping 10 rejected events .*maxDeadLetterBytes/)
  assert.match(refusal.message, /nothing of the request was accepted, retry after 60 s/)
  assert.match(refusal.message, /spillway dlq purge/)
  const usage = await store.usage()
  assert.ok(usage.bytes <= limits.maxBytes, `${usage.bytes} bytes kept, bound ${limits.maxBytes}`)
  assert.equal(usage.entries, kept, 'every append that resolved is kept, the refused one left nothing')
  assert.equal((await store.list()).length, kept)
  // A smaller append that fits is still taken.
  const room = limits.maxBytes - usage.bytes
  if (room > 400) await store.append(batch(kept, 1))
})

test('the entry bound counts every writer of the directory, and an empty store takes one batch over the bound', async (t) => {
  const dir = join(await tempDir(t), 'deadletter')
  const limits = { maxBytes: 1024 * 1024, maxEntries: 5 }
  const intake = new DeadLetterStore(dir, { source: 'intake', limits })
  const delivery = new DeadLetterStore(dir, { source: 'delivery', limits })
  t.after(async () => {
    await intake.close()
    await delivery.close()
  })
  await intake.append(batch(0, 7))
  await assert.rejects(delivery.append(batch(7, 1)), (error: unknown) => {
    assert.ok(isSpillwayError(error, 'SPW_ERR_DEADLETTER_FULL'))
    assert.match(error.message, /7 \+ 1 entries would pass maxDeadLetterEntries \(5\)/)
    return true
  })
  assert.deepEqual(await deadLetterUsage(dir), {
    bytes: (await stat(join(dir, (await jsonlFiles(dir))[0]))).size,
    entries: 7,
    files: 1,
  })
})

test('a drop blanks the chosen lines, frees their bytes and keeps the ids of the others', async (t) => {
  const dir = join(await tempDir(t), 'deadletter')
  const store = new DeadLetterStore(dir, { source: 'intake' })
  t.after(() => store.close())
  await store.append([...batch(0, 2, 'keep'), ...batch(2, 3, 'drop me'), ...batch(5, 1, 'keep')])
  const before = await scanDeadLetters(dir)
  const usage = await deadLetterUsage(dir)

  const dry = await dropDeadLetters(dir, (s) => s.entry.reason === 'drop me', { dryRun: true })
  assert.equal(dry.entries, 3)
  assert.deepEqual(await scanDeadLetters(dir), before, 'a dry run changes nothing')

  const report = await dropDeadLetters(dir, (s) => s.entry.reason === 'drop me')
  assert.deepEqual(report, { dryRun: false, entries: 3, bytes: dry.bytes, filesRemoved: 0 })
  const after = await scanDeadLetters(dir)
  assert.deepEqual(
    after.map((s) => s.id),
    before.filter((s) => s.entry.reason === 'keep').map((s) => s.id),
  )
  const now = await deadLetterUsage(dir)
  assert.equal(now.entries, 3)
  assert.equal(now.bytes, usage.bytes - report.bytes)
  assert.ok(report.bytes > 3 * 200, 'the events themselves are gone, not only marked')

  // The live store goes on in the rewritten file, after the kept lines.
  await store.append(batch(6, 1, 'later'))
  const last = await scanDeadLetters(dir)
  assert.deepEqual(
    last.map((s) => [s.line, s.entry.reason]),
    [
      [1, 'keep'],
      [2, 'keep'],
      [6, 'keep'],
      [7, 'later'],
    ],
  )
  assert.equal((await jsonlFiles(dir)).length, 1)
})

test('a file left without entries is removed, and its writer never reuses its name', async (t) => {
  const dir = join(await tempDir(t), 'deadletter')
  const store = new DeadLetterStore(dir, { source: 'intake' })
  t.after(() => store.close())
  await store.append(batch(0, 3))
  const [first] = await jsonlFiles(dir)
  const report = await dropDeadLetters(dir, () => true)
  assert.equal(report.entries, 3)
  assert.equal(report.filesRemoved, 1)
  assert.deepEqual(await jsonlFiles(dir), [])
  assert.deepEqual(await deadLetterUsage(dir), { bytes: 0, entries: 0, files: 0 })
  await store.append(batch(3, 1, 'after the purge'))
  const [stored] = await scanDeadLetters(dir)
  assert.notEqual(stored.file, first, 'a new file: the old ids must not name new entries')
  assert.equal(stored.entry.reason, 'after the purge')
})

test('a drop while another process appends loses no entry it did not choose', async (t) => {
  const dir = join(await tempDir(t), 'deadletter')
  const total = 200
  // A writer in its own process: odd entries are to be dropped, even ones kept.
  const writer = promisify(execFile)(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { DeadLetterStore } from ${JSON.stringify(new URL('../../../src/shared/dead-letter.ts', import.meta.url).href)}
       const store = new DeadLetterStore(${JSON.stringify(dir)}, { source: 'writer' })
       for (let n = 0; n < ${total}; n++) {
         await store.append([{ at: n, reason: n % 2 ? 'drop' : 'keep', index: n, event: { n } }])
       }
       await store.close()`,
    ],
    { timeout: 120_000 },
  )
  let dropped = 0
  let done = false
  void writer.finally(() => {
    done = true
  })
  while (!done) {
    dropped += (await dropDeadLetters(dir, (s) => s.entry.reason === 'drop')).entries
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  await writer
  dropped += (await dropDeadLetters(dir, (s) => s.entry.reason === 'drop')).entries
  const left = (await scanDeadLetters(dir)).map((s) => s.entry.index)
  assert.deepEqual(
    left,
    Array.from({ length: total / 2 }, (_, i) => 2 * i),
    'every kept entry once, in order',
  )
  assert.equal(dropped, total / 2)
})

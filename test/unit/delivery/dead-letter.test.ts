import assert from 'node:assert/strict'
import { appendFile, mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { DeadLetterStore, scanDeadLetters } from '../../../src/delivery/dead-letter.ts'
import { isSpillwayError } from '../../../src/errors.ts'
import { tempDir } from './helpers.ts'

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
  const files = await readdir(dir)
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
  assert.equal((await readdir(dir)).length, 2)
  assert.deepEqual((await intake.list()).map((e) => e.reason).sort(), ['a', 'b', 'c'])
})

test('a torn last line (crash mid-append) is skipped', async (t) => {
  const dir = join(await tempDir(t), 'deadletter')
  const store = new DeadLetterStore(dir)
  t.after(() => store.close())
  await store.append([{ at: 1, reason: 'kept', event: null }])
  const [file] = await readdir(dir)
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
  const [file] = await readdir(dir)
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
  assert.equal((await readdir(dir)).length, 2, 'a second file')
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

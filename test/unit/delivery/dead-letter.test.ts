import assert from 'node:assert/strict'
import { appendFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { DeadLetterStore } from '../../../src/delivery/dead-letter.ts'
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
  assert.equal(typeof entry.event, 'string')
})

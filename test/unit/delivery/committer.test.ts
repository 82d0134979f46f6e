/**
 * The cursor committer alone: where a sink starts, when a cursor file is saved and published, and
 * the cursor-only commit of a transactional sink.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { Breaker } from '../../../src/delivery/breaker.ts'
import { CursorCommitter } from '../../../src/delivery/committer.ts'
import { DeliveryCounters } from '../../../src/delivery/counters.ts'
import { CursorFile } from '../../../src/delivery/cursor-file.ts'
import { Sender } from '../../../src/delivery/sender.ts'
import { Backoff } from '../../../src/shared/backoff.ts'
import { MemorySink } from '../../../src/sinks/memory/sink.ts'
import { WalSharedState } from '../../../src/wal/shared-state.ts'
import { silent, tempDir } from './helpers.ts'

async function committer(t: Parameters<typeof tempDir>[0], transactional = false) {
  const sink = new MemorySink({ transactional })
  await sink.open()
  const state = new WalSharedState()
  const cursorFile = new CursorFile(join(await tempDir(t), 'cursors'), sink.name)
  const sender = new Sender({
    sink,
    timeoutMs: 10_000,
    backoff: new Backoff(),
    breaker: new Breaker(),
    counters: new DeliveryCounters(),
    logger: silent,
    signal: new AbortController().signal,
  })
  const c = new CursorCommitter({ sink, slot: 0, state, cursorFile, sender, logger: silent })
  return { sink, state, cursorFile, committer: c }
}

test('a sink without a cursor of its own needs a cursor file', () => {
  const sink = new MemorySink()
  assert.throws(
    () =>
      new CursorCommitter({
        sink,
        slot: 0,
        state: new WalSharedState(),
        sender: {} as Sender,
        logger: silent,
      }),
    /sink memory keeps no cursor of its own: a cursorFile is required/,
  )
})

test('a new sink starts at the oldest record on disk and publishes it', async (t) => {
  const { state, committer: c } = await committer(t)
  state.oldest = 4096
  assert.equal(await c.load(), false)
  assert.equal(c.fresh, true)
  assert.equal(c.position, 4096)
  assert.equal(state.cursor(0), 4096)
})

test('advance saves the cursor file before it publishes, and never moves back', async (t) => {
  const { state, cursorFile, committer: c } = await committer(t)
  await c.load()
  await c.advance(500)
  assert.equal(await cursorFile.load(), 500)
  assert.equal(state.cursor(0), 500)
  await c.advance(200)
  assert.equal(c.position, 500)
  assert.equal(await cursorFile.load(), 500)
  assert.equal(await c.load(), true, 'a saved cursor is loaded on the next start')
  assert.equal(c.position, 500)
})

test('a transactional sink gets a cursor-only commit only when no write carried the end', async (t) => {
  const { sink, committer: c } = await committer(t, true)
  await c.load()
  c.confirmed(300)
  await c.commitEnd(300)
  assert.equal(sink.writes.length, 0, 'the sink already committed 300 with its rows')
  await c.commitEnd(400)
  assert.equal(sink.writes.length, 1)
  assert.deepEqual(sink.writes[0].batch.events, [])
  assert.equal(sink.writes[0].batch.to, 400)
  assert.equal(await sink.loadCursor?.(), 400)
})

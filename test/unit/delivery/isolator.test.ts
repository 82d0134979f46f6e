/**
 * The poison isolator alone: refused events found by halving, dead-lettered with the sink's reason,
 * the rest delivered, and the cursor moved only over what is resolved.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import type { RecordRef } from '../../../src/delivery/batcher.ts'
import { Breaker } from '../../../src/delivery/breaker.ts'
import { CursorCommitter } from '../../../src/delivery/committer.ts'
import { DeliveryCounters } from '../../../src/delivery/counters.ts'
import { CursorFile } from '../../../src/delivery/cursor-file.ts'
import { PoisonIsolator } from '../../../src/delivery/isolator.ts'
import { Sender } from '../../../src/delivery/sender.ts'
import { Backoff } from '../../../src/shared/backoff.ts'
import { DeadLetterStore } from '../../../src/shared/dead-letter.ts'
import { MemorySink } from '../../../src/sinks/memory/sink.ts'
import { WalSharedState } from '../../../src/wal/shared-state.ts'
import { numberedEvents } from '../../helpers/events.ts'
import { ids, silent, tempDir } from './helpers.ts'
import { decodeNdjson, MemoryLog } from './memory-log.ts'

async function isolator(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t)
  const sink = new MemorySink()
  await sink.open()
  const state = new WalSharedState()
  const counters = new DeliveryCounters()
  const sender = new Sender({
    sink,
    timeoutMs: 10_000,
    backoff: new Backoff({ initialMs: 1, maxMs: 4 }),
    breaker: new Breaker(),
    counters,
    logger: silent,
    signal: new AbortController().signal,
  })
  const cursorFile = new CursorFile(join(dir, 'cursors'), sink.name)
  const committer = new CursorCommitter({ sink, slot: 0, state, cursorFile, sender, logger: silent })
  await committer.load()
  const deadLetter = new DeadLetterStore(join(dir, 'deadletter'), { source: 'test' })
  t.after(() => deadLetter.close())
  const advances: number[] = []
  const advance = committer.advance.bind(committer)
  committer.advance = async (position) => {
    advances.push(position)
    await advance(position)
  }
  const delivered: number[] = []
  const iso = new PoisonIsolator({
    sinkName: sink.name,
    sender,
    committer,
    counters,
    deadLetter,
    decode: decodeNdjson,
    dedup: undefined,
    logger: silent,
    delivered: (_piece, rows) => delivered.push(rows),
  })
  return { sink, counters, committer, deadLetter, advances, delivered, isolator: iso }
}

const refs = (log: MemoryLog): RecordRef[] => log.records.map((r) => ({ ...r, count: 0 }))

test('refused events are found by halving and dead-lettered alone; the rest is delivered', async (t) => {
  const { sink, counters, committer, deadLetter, isolator: iso } = await isolator(t)
  sink.rejectEvents((e) => e.event_id === 'e2' || e.event_id === 'e9', 'price is not a number')
  const log = new MemoryLog()
  for (let r = 0; r < 3; r++) log.append(numberedEvents(r * 4, 4))
  await iso.isolate(refs(log))
  assert.deepEqual(
    ids(sink.events),
    ids(numberedEvents(0, 12)).filter((id) => id !== 'e2' && id !== 'e9'),
  )
  const letters = await deadLetter.list()
  assert.deepEqual(
    letters.map((l) => [(l.event as { event_id: string }).event_id, l.position, l.index, l.reason]),
    [
      ['e2', log.records[0].start, 2, 'price is not a number (event_id e2)'],
      ['e9', log.records[2].start, 1, 'price is not a number (event_id e9)'],
    ],
  )
  assert.equal(counters.deadLettered, 2)
  assert.equal(committer.position, log.head)
})

test('the cursor only ever moves to a record boundary with nothing unresolved before it', async (t) => {
  const { sink, advances, isolator: iso } = await isolator(t)
  sink.rejectEvents((e) => e.event_id === 'e5')
  const log = new MemoryLog()
  for (let r = 0; r < 3; r++) log.append(numberedEvents(r * 4, 4))
  await iso.isolate(refs(log))
  const boundaries = new Set([...log.records.map((r) => r.start), log.head])
  for (const position of advances) assert.ok(boundaries.has(position), `${position} is a record boundary`)
  assert.equal(advances.at(-1), log.head)
})

test('a record that does not decode is dead-lettered whole, its neighbours delivered', async (t) => {
  const { sink, deadLetter, counters, isolator: iso } = await isolator(t)
  const log = new MemoryLog()
  log.append(numberedEvents(0, 2))
  const bad = log.appendRaw(Buffer.from('{"event_id":"broken\n'))
  log.append(numberedEvents(2, 2))
  await iso.isolate(refs(log))
  assert.deepEqual(ids(sink.events), ids(numberedEvents(0, 4)))
  const letters = await deadLetter.list()
  assert.equal(letters.length, 1)
  assert.equal(letters[0].position, bad.start)
  assert.match(letters[0].reason, /^WAL record does not decode/)
  assert.equal(counters.deadLettered, 1)
})

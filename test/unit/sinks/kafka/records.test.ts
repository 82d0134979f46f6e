import assert from 'node:assert/strict'
import { test } from 'node:test'
import { partitionOf } from '../../../../src/connectors/kafka/client.ts'
import { encodeEvents } from '../../../../src/intake/serialize.ts'
import {
  BATCH_OVERHEAD,
  batchRecords,
  CHUNK_BYTES,
  chunkLimit,
  cutRounds,
  type OutgoingRecord,
  recordSize,
} from '../../../../src/sinks/kafka/records.ts'
import { makeEvents, sparseEvent } from '../../../helpers/events.ts'

test('each event is one record: key = event_id, value = its WAL line without the newline', () => {
  const events = [...makeEvents(5, 'r'), sparseEvent('weird "id"\n\u00e9')]
  const ndjson = encodeEvents(events)
  const lines = ndjson.toString('utf8').trimEnd().split('\n')
  const records = batchRecords({ events, ndjson, from: 0, to: 1 }, 4)
  assert.deepEqual(
    records.map((r) => r.key.toString('utf8')),
    events.map((e) => e.event_id),
  )
  assert.deepEqual(
    records.map((r) => r.value.toString('utf8')),
    lines,
  )
  for (const r of records) assert.equal(r.partition, partitionOf(r.key, 4))
  // Slices of the batch's bytes, not copies.
  assert.equal(records[0].value.buffer, ndjson.buffer)
  // Without NDJSON: the same bytes from the events.
  const decoded = batchRecords({ events, from: 0, to: 1 }, 4)
  assert.deepEqual(
    decoded.map((r) => [r.key.toString(), r.value.toString(), r.partition]),
    records.map((r) => [r.key.toString(), r.value.toString(), r.partition]),
  )
  assert.deepEqual(batchRecords({ events: [], ndjson: Buffer.alloc(0), from: 0, to: 0 }, 4), [])
})

const record = (partition: number, bytes: number, id = ''): OutgoingRecord => ({
  key: Buffer.from(id),
  value: Buffer.alloc(bytes - id.length),
  partition,
})

test('records are cut into chunks of one partition under the limit, in log order, each record once', () => {
  const records: OutgoingRecord[] = []
  for (let i = 0; i < 300; i++) records.push(record(i % 3, 100, String(i)))
  const limit = 2000
  const rounds = cutRounds(records, limit)
  const seen: OutgoingRecord[] = []
  for (const round of rounds) {
    assert.ok(
      new Set(round.map((chunk) => chunk[0].partition)).size === round.length,
      'one chunk per partition',
    )
    for (const chunk of round) {
      assert.ok(chunk.every((r) => r.partition === chunk[0].partition))
      const size = BATCH_OVERHEAD + chunk.reduce((sum, r) => sum + recordSize(r), 0)
      assert.ok(size <= limit || chunk.length === 1)
      seen.push(...chunk)
    }
  }
  assert.equal(seen.length, 300)
  assert.equal(new Set(seen).size, 300)
  for (let p = 0; p < 3; p++) {
    const order = seen.filter((r) => r.partition === p).map((r) => Number(r.key.toString()))
    assert.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
    )
  }
})

test('a record bigger than the limit goes alone; a round stops at its byte bound', () => {
  const rounds = cutRounds([record(0, 100), record(0, 5000), record(0, 100)], 1000)
  assert.deepEqual(
    rounds.map((round) => round.map((chunk) => chunk.length)),
    [[1], [1], [1]],
  )
  const wide = Array.from({ length: 10 }, (_, p) => record(p, 900))
  const cut = cutRounds(wide, 1000, 3000)
  assert.deepEqual(
    cut.map((round) => round.length),
    [4, 4, 2],
  )
  assert.deepEqual(cutRounds([], 1000), [])
})

test("the chunk limit keeps a margin under the topic's max.message.bytes, at most CHUNK_BYTES", () => {
  assert.equal(chunkLimit(1_048_588), CHUNK_BYTES)
  assert.equal(chunkLimit(3000), Math.floor((3000 - BATCH_OVERHEAD) * 0.9))
  assert.equal(chunkLimit(10), 1)
})

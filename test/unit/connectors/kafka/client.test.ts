import assert from 'node:assert/strict'
import { test } from 'node:test'
import { murmur2, partitionOf } from '../../../../src/connectors/kafka/client.ts'

test("murmur2 is Kafka's (the vectors of its own Utils test), and partitionOf is the Java client's", () => {
  const vectors: [string, number][] = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ]
  for (const [text, hash] of vectors) assert.equal(murmur2(Buffer.from(text)), hash, text)
  assert.equal(partitionOf(Buffer.from('foobar'), 6), (-790332482 & 0x7fffffff) % 6)
  for (let i = 0; i < 100; i++) {
    const p = partitionOf(Buffer.from(`key-${i}`), 7)
    assert.ok(Number.isInteger(p) && p >= 0 && p < 7)
  }
})

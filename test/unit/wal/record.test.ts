import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { crc32c } from '../../../src/wal/crc.ts'
import { decodeRecord, encodeRecord, HEADER_BYTES } from '../../../src/wal/record.ts'

const MAX = 1024

test('crc32c matches the Castagnoli check value', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283)
})

test('a record round-trips: length and crc32c header, then the payload', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: MAX }), fc.nat(16), (bytes, lead) => {
      const payload = Buffer.from(bytes)
      const record = encodeRecord(payload)
      assert.equal(record.length, HEADER_BYTES + payload.length)
      assert.equal(record.readUInt32LE(0), payload.length)
      assert.equal(record.readUInt32LE(4), crc32c(payload))
      const buf = Buffer.concat([Buffer.alloc(lead, 7), record, Buffer.from('next')])
      const result = decodeRecord(buf, lead, MAX)
      assert.equal(result.status, 'ok')
      if (result.status === 'ok') {
        assert.equal(result.size, record.length)
        assert.deepEqual(result.payload, payload)
      }
    }),
  )
})

test('a record cut anywhere decodes as incomplete and says how many bytes it needs', () => {
  const record = encodeRecord(Buffer.from('hello, wal'))
  for (let cut = 0; cut < record.length; cut++) {
    const result = decodeRecord(record, 0, MAX, cut)
    assert.equal(result.status, 'incomplete', `cut at ${cut}`)
    if (result.status === 'incomplete')
      assert.equal(result.needed, cut < HEADER_BYTES ? HEADER_BYTES : record.length)
  }
})

test('a zero-filled header is corrupt, not an empty record', () => {
  const result = decodeRecord(Buffer.alloc(64), 0, MAX)
  assert.equal(result.status, 'corrupt')
  if (result.status === 'corrupt') assert.match(result.reason, /length is 0/)
})

test('a length above the maximum is corrupt', () => {
  const record = encodeRecord(Buffer.alloc(MAX + 1, 1))
  const result = decodeRecord(record, 0, MAX)
  assert.equal(result.status, 'corrupt')
  if (result.status === 'corrupt') assert.match(result.reason, /exceeds the maximum/)
})

test('any single flipped bit in the payload or the checksum is detected', () => {
  const record = encodeRecord(Buffer.from('{"event_name":"product_view","user_id":"user_123"}'))
  for (let byte = 4; byte < record.length; byte++) {
    for (let bit = 0; bit < 8; bit++) {
      const damaged = Buffer.from(record)
      damaged[byte] ^= 1 << bit
      const result = decodeRecord(damaged, 0, MAX)
      assert.equal(result.status, 'corrupt', `byte ${byte} bit ${bit}`)
    }
  }
})

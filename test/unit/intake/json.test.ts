import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type ErrorCode, isSpillwayError } from '../../../src/errors.ts'
import { jsonText, ndjsonNestingError, nestingError } from '../../../src/intake/json.ts'

function assertThrowsCode(fn: () => unknown, code: ErrorCode, message?: RegExp): void {
  assert.throws(fn, (error) => {
    assert.ok(isSpillwayError(error, code), `expected ${code}, got ${String(error)}`)
    if (message) assert.match(error.message, message)
    return true
  })
}

describe('jsonText', () => {
  test('valid UTF-8 is decoded as it is', () => {
    assert.equal(jsonText(Buffer.from('{"a":"é€𝄞"}')), '{"a":"é€𝄞"}')
  })

  test('a leading UTF-8 BOM is dropped, one inside the text is kept', () => {
    assert.equal(jsonText(Buffer.from('\ufeff{"a":"\ufeff"}')), '{"a":"\ufeff"}')
    assert.equal(jsonText(Buffer.from('\ufeff')), '')
  })

  test('invalid UTF-8 is refused naming the byte, never turned into U+FFFD', () => {
    assertThrowsCode(
      () => jsonText(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])),
      'SPW_ERR_INTAKE_BAD_ENCODING',
      /^body is not valid UTF-8: byte 6 \(0xff\)/,
    )
    // A truncated sequence, an overlong encoding and an encoded surrogate (CESU-8) are all invalid.
    for (const bytes of [
      [0x22, 0xe2, 0x82],
      [0x22, 0xc0, 0xaf],
      [0x22, 0xed, 0xa0, 0x80],
    ]) {
      assertThrowsCode(() => jsonText(Buffer.from(bytes)), 'SPW_ERR_INTAKE_BAD_ENCODING', /byte 1 /)
    }
  })

  test('in NDJSON the error names the line too', () => {
    const body = Buffer.concat([
      Buffer.from('{"a":1}\n{"a":2}\n{"a":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}'),
    ])
    assertThrowsCode(() => jsonText(body, true), 'SPW_ERR_INTAKE_BAD_ENCODING', /byte 22 \(0xc3\), line 3/)
  })
})

describe('nestingError', () => {
  const deep = (n: number) => '['.repeat(n) + ']'.repeat(n)

  test('nesting up to the limit passes, one level more is refused naming the limit', () => {
    assert.equal(nestingError(deep(5), 5), undefined)
    assert.match(nestingError(deep(6), 5) ?? '', /^nested more than 5 levels deep/)
    assert.equal(nestingError(`{"a":{"b":[1,{"c":[]}]}}`, 5), undefined)
    assert.match(nestingError(`{"a":{"b":[1,{"c":[{}]}]}}`, 5) ?? '', /more than 5 levels/)
  })

  test('many containers side by side are not depth', () => {
    const wide = `[${Array.from({ length: 1000 }, () => '{"a":[1,2]}').join(',')}]`
    assert.equal(nestingError(wide, 3), undefined)
    assert.match(nestingError(wide, 2) ?? '', /more than 2 levels/)
  })

  test('brackets inside strings, escaped quotes included, are not nesting', () => {
    const text = `[{"a":"[[[[[[[[{{{{{{","b":"\\"[[[[[[[[[","c":"\\\\","d":[]}]`
    assert.equal(nestingError(text, 3), undefined)
    // …and closing brackets inside a string cannot hide real depth.
    const hidden = `[[[["]]]]]]]]",[[[[[]]]]]]]]]`
    assert.match(nestingError(hidden, 5) ?? '', /more than 5 levels/)
  })

  test('an unterminated string ends the scan (JSON.parse reports it)', () => {
    assert.equal(nestingError('[["abc', 5), undefined)
  })

  test('NDJSON is scanned line by line: depth does not carry from one line to the next', () => {
    const lines = ['{"a":[[1]]}', '', '[[[[', '{"b":"[[[[[[[["}', '[[[]]]']
    assert.equal(ndjsonNestingError(lines.join('\n'), 4), undefined)
    assert.equal(ndjsonNestingError(lines.join('\r\n'), 4), undefined)
    lines.push('{"c":[[[[{}]]]]}')
    assert.equal(ndjsonNestingError(lines.join('\n'), 4), 'line 6 is nested more than 4 levels deep')
    assert.equal(nestingError(lines.slice(0, 5).join('\n'), 6), 'nested more than 6 levels deep')
  })

  test('NDJSON lines without brackets do not make the scan quadratic', () => {
    const text = `${'{"a":1}\n'.repeat(200_000)}[[[[[[`
    assert.equal(ndjsonNestingError(text, 5), 'line 200001 is nested more than 5 levels deep')
  })

  test('a 16 MB body of brackets is refused without building anything', () => {
    const text = deep(8_000_000)
    const started = process.memoryUsage().heapUsed
    assert.match(nestingError(text, 12) ?? '', /more than 12 levels/)
    assert.ok(process.memoryUsage().heapUsed - started < 64 * 1024 * 1024)
  })
})

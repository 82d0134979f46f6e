import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { integerLiteral, quoteIdentifier, quoteString } from '../../../../src/sinks/clickhouse/escape.ts'

/**
 * ClickHouse's reading of a quoted literal (readQuotedString / readBackQuotedString): from the
 * opening quote, a backslash escapes the next character (`\xHH` is a byte, `\n` and friends are
 * control characters, any other character stands for itself) and the first unescaped quote ends
 * it. Returns the value and where the literal ended.
 */
function readLiteral(sql: string, quote: string): { value: string; end: number } {
  assert.equal(sql[0], quote, 'starts with its quote')
  const named: Record<string, string> = {
    b: '\b',
    f: '\f',
    n: '\n',
    r: '\r',
    t: '\t',
    '0': '\0',
    a: '\x07',
    v: '\v',
  }
  let value = ''
  for (let i = 1; i < sql.length; i++) {
    const ch = sql[i]
    if (ch === quote) return { value, end: i + 1 }
    if (ch !== '\\') {
      value += ch
      continue
    }
    const next = sql[++i]
    if (next === 'x') {
      value += String.fromCharCode(Number.parseInt(sql.slice(i + 1, i + 3), 16))
      i += 2
    } else {
      value += named[next] ?? next
    }
  }
  throw new Error('unterminated literal')
}

const ATTEMPTS = [
  "' OR '1'='1",
  "'; DROP TABLE events; --",
  "\\'; DROP TABLE events; --",
  "\\\\'; SELECT 1; --",
  'trailing backslash \\',
  "it's",
  '`; DROP DATABASE default; --',
  'nul \0 inside',
  'new\nline\r\ttab',
  '\x1b[31mansi\x7f',
  'unicode é 漢字 🎉 \u2028\u2029',
  'lone surrogate \ud800',
  '\\x27 written out',
  '',
]

test('quoteString: every attempt reads back as itself and the literal ends at the last character', () => {
  for (const attempt of ATTEMPTS) {
    const literal = quoteString(attempt)
    const read = readLiteral(literal, "'")
    assert.equal(read.value, attempt, JSON.stringify(attempt))
    assert.equal(read.end, literal.length, `nothing after the literal for ${JSON.stringify(attempt)}`)
    assert.doesNotMatch(literal, /[\x00-\x1f\x7f]/, 'no raw control characters')
  }
})

test('quoteString: property — any string round-trips and cannot end the literal early', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (value) => {
      const literal = quoteString(value)
      const read = readLiteral(literal, "'")
      assert.equal(read.value, value)
      assert.equal(read.end, literal.length)
    }),
    { numRuns: 2000 },
  )
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom("'", '\\', '\0', '\n', 'x', '`', '"'), { maxLength: 30 }),
      (chars) => {
        const value = chars.join('')
        const literal = quoteString(value)
        assert.deepEqual(readLiteral(literal, "'"), { value, end: literal.length })
      },
    ),
    { numRuns: 2000 },
  )
})

test('quoteIdentifier: back-quoted, escaped the same way; empty names are refused', () => {
  assert.equal(quoteIdentifier('events'), '`events`')
  assert.equal(quoteIdentifier('my db'), '`my db`')
  assert.equal(quoteIdentifier('a`b\\c'), '`a\\`b\\\\c`')
  for (const attempt of [...ATTEMPTS.filter(Boolean), '`', '\\`', 'x`; DROP TABLE t; --']) {
    const literal = quoteIdentifier(attempt)
    assert.deepEqual(readLiteral(literal, '`'), { value: attempt, end: literal.length })
  }
  assert.throws(() => quoteIdentifier(''), TypeError)
})

test('plain values keep their plain form', () => {
  assert.equal(quoteString('signup'), "'signup'")
  assert.equal(quoteString("it's"), "'it\\'s'")
  assert.equal(quoteString('a\\b'), "'a\\\\b'")
  assert.equal(quoteString('\0\n'), "'\\x00\\x0a'")
})

test('integerLiteral accepts only safe integers', () => {
  assert.equal(integerLiteral(1723475612), '1723475612')
  assert.equal(integerLiteral(-5), '-5')
  for (const bad of [1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) {
    assert.throws(() => integerLiteral(bad), TypeError)
  }
  assert.throws(() => quoteString(1 as unknown as string), TypeError)
})

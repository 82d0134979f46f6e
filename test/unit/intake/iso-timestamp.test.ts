/**
 * Issue 17: `timestamp` may be an ISO-8601 string with a zone, as Segment's and PostHog's clients
 * send it; it is stored as the same Unix seconds (the fraction dropped), and a string that is not
 * a real instant is refused naming `timestamp` and what is wrong.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { validateBatch } from '../../../src/intake/batch.ts'
import { validateEvent } from '../../../src/intake/validate.ts'
import { CTX, LIMITS, NOW_SECONDS, validBody } from './fixtures.ts'

const accept = (timestamp: unknown, extra: Record<string, unknown> = {}) => {
  const result = validateEvent(validBody({ timestamp, ...extra }), CTX, LIMITS)
  assert.ok(result.ok, result.ok ? '' : result.error)
  return result.event
}
const reject = (timestamp: unknown) => {
  const result = validateEvent(validBody({ timestamp }), CTX, LIMITS)
  assert.equal(result.ok, false, `${JSON.stringify(timestamp)} was accepted`)
  return result.ok ? '' : result.error
}

describe('ISO-8601 timestamps', () => {
  test('a string with a zone is stored as the Unix seconds it names', () => {
    // NOW_SECONDS is 2024-08-12T15:13:32Z.
    assert.equal(accept('2024-08-12T15:13:32Z').timestamp, NOW_SECONDS)
    assert.equal(accept('2024-08-12T17:13:32+02:00').timestamp, NOW_SECONDS)
    assert.equal(accept('2024-08-12T10:13:32-05:00').timestamp, NOW_SECONDS)
    assert.equal(accept('2024-08-12T21:13:32+0600').timestamp, NOW_SECONDS)
    assert.equal(accept('2024-08-12T15:12Z').timestamp, NOW_SECONDS - 92)
    assert.equal(accept('2024-08-12 15:13:32z').timestamp, NOW_SECONDS)
  })

  test('fractional seconds are dropped: the second it falls in, as the integer form would carry it', () => {
    assert.equal(accept('2024-08-12T15:13:31.123Z').timestamp, NOW_SECONDS - 1)
    assert.equal(accept('2024-08-12T15:13:31.999999Z').timestamp, NOW_SECONDS - 1)
    assert.equal(accept('2024-08-12T15:13:31,5+00:00').timestamp, NOW_SECONDS - 1)
  })

  test('the string and its integer are the same event: same content id, same stored line', () => {
    const { event_id: _, ...body } = validBody()
    const fromString = validateEvent({ ...body, timestamp: '2024-08-12T15:12:32.750Z' }, CTX, LIMITS)
    const fromNumber = validateEvent({ ...body, timestamp: NOW_SECONDS - 60 }, CTX, LIMITS)
    assert.ok(fromString.ok && fromNumber.ok)
    assert.deepEqual(fromString.event, fromNumber.event)
  })

  test('sent_at corrects an ISO timestamp like an integer one', () => {
    const event = accept('2024-08-12T15:12:32Z', { sent_at: NOW_SECONDS - 100 })
    assert.equal(event.timestamp, NOW_SECONDS - 60 + 100)
  })

  test('a batch keeps the client timestamp as seconds', () => {
    const result = validateBatch([validBody({ timestamp: '2024-08-12T15:12:32Z' })], new Map(), CTX, LIMITS)
    assert.deepEqual(result.clientTimestamps, [NOW_SECONDS - 60])
  })

  test('a string without a zone is refused, saying how to add one', () => {
    assert.equal(
      reject('2024-08-12T15:13:32'),
      'timestamp has no time zone, got "2024-08-12T15:13:32"; add Z (UTC) or an offset such as +02:00',
    )
    assert.equal(
      reject('2024-08-12T15:13:32.123'),
      'timestamp has no time zone, got "2024-08-12T15:13:32.123"; add Z (UTC) or an offset such as +02:00',
    )
  })

  test('dates and times that do not exist are refused, naming what is wrong', () => {
    assert.equal(
      reject('2024-02-30T10:00:00Z'),
      'timestamp is not a real date, got "2024-02-30T10:00:00Z": 2024-02 has 29 days',
    )
    assert.equal(
      reject('2023-02-29T10:00:00Z'),
      'timestamp is not a real date, got "2023-02-29T10:00:00Z": 2023-02 has 28 days',
    )
    assert.equal(
      reject('2024-13-01T10:00:00Z'),
      'timestamp is not a real date, got "2024-13-01T10:00:00Z": there is no month 13',
    )
    assert.equal(
      reject('2024-04-31T10:00:00Z'),
      'timestamp is not a real date, got "2024-04-31T10:00:00Z": 2024-04 has 30 days',
    )
    assert.equal(
      reject('2024-08-12T24:00:00Z'),
      'timestamp is not a real time of day, got "2024-08-12T24:00:00Z": hours run to 23, minutes and seconds to 59',
    )
    assert.equal(
      reject('2024-08-12T15:13:60Z'),
      'timestamp is not a real time of day, got "2024-08-12T15:13:60Z": hours run to 23, minutes and seconds to 59',
    )
    assert.equal(
      reject('2024-08-12T15:13:32+24:00'),
      'timestamp has a zone offset beyond ±23:59, got "2024-08-12T15:13:32+24:00"',
    )
  })

  test('years out of range are refused: before 1970, far in the future, or not four digits', () => {
    assert.equal(
      reject('1969-12-31T23:59:59Z'),
      'timestamp must be after 1970-01-01T00:00:00Z, got "1969-12-31T23:59:59Z"',
    )
    assert.equal(
      reject('1970-01-01T00:00:00Z'),
      'timestamp must be after 1970-01-01T00:00:00Z, got "1970-01-01T00:00:00Z"',
    )
    assert.equal(
      reject('9999-12-31T23:59:59Z'),
      `timestamp is ${253402300799 - NOW_SECONDS} seconds in the future, more than the 300 allowed for clock skew`,
    )
    assert.equal(
      reject('+010000-01-01T00:00:00Z'),
      'timestamp must be an integer of Unix seconds or an ISO-8601 string with a zone, got "+010000-01-01T00:00:00Z"',
    )
  })

  test('strings that are not ISO-8601 date-times name both accepted forms', () => {
    for (const text of ['yesterday', '2024-08-12', '12/08/2024 15:13:32Z', '', ' 2024-08-12T15:13:32Z']) {
      assert.equal(
        reject(text),
        `timestamp must be an integer of Unix seconds or an ISO-8601 string with a zone, got ${JSON.stringify(text)}`,
      )
    }
  })
})

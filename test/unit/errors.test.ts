import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ERRORS, type ErrorCode, isSpillwayError, SpillwayError, spillwayError } from '../../src/errors.ts'

test('every error code has a stable shape, an HTTP status and a retry flag', () => {
  for (const [code, spec] of Object.entries(ERRORS) as [ErrorCode, (typeof ERRORS)[ErrorCode]][]) {
    assert.match(code, /^SPW_ERR_[A-Z]+_[A-Z_]+$/)
    const error = spillwayError(code, 'message')
    assert.ok(error instanceof SpillwayError)
    assert.equal(error.code, code)
    assert.equal(error.statusCode, spec.status)
    assert.equal(error.retryable, spec.retryable)
    assert.ok(spec.status >= 400 && spec.status < 600)
    // A client may retry exactly the 503s and nothing it caused itself.
    if (spec.status === 503) assert.equal(spec.retryable, true, code)
    if (spec.status >= 400 && spec.status < 500) assert.equal(spec.retryable, false, code)
    assert.ok(isSpillwayError(error, code))
  }
})

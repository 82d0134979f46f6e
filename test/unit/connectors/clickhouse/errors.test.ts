import assert from 'node:assert/strict'
import { test } from 'node:test'
import { exceptionCode } from '../../../../src/connectors/clickhouse/errors.ts'

test('the code comes from the header first, else from the start of the body', () => {
  assert.equal(exceptionCode({ status: 500, codeHeader: '241', body: 'Code: 27. …' }), 241)
  assert.equal(exceptionCode({ status: 500, body: 'Code: 27, e.displayText() = …' }), 27)
  assert.equal(exceptionCode({ status: 500, body: 'oops Code: 27' }), undefined, 'only at the start')
  assert.equal(exceptionCode({ status: 500, codeHeader: 'nope', body: '' }), undefined)
})

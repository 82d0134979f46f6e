/**
 * The client package ships the server's field table as a copy (it is published on its own and
 * must run in a browser, so it cannot import from the server's tree): the copy must be the same
 * bytes, or the client would judge events by other rules than the server.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'

const ORIGINAL = 'src/event/fields.ts'
const COPY = 'packages/client/src/event-fields.ts'
const root = new URL('../../../', import.meta.url)

test('the client package holds an identical copy of the field table', () => {
  const original = readFileSync(new URL(ORIGINAL, root), 'utf8')
  const copy = readFileSync(new URL(COPY, root), 'utf8')
  assert.ok(original === copy, `${COPY} differs from ${ORIGINAL}; run: cp ${ORIGINAL} ${COPY}`)
})

test('the field table imports nothing, so the copy runs in a browser as it is', () => {
  const source = readFileSync(new URL(ORIGINAL, root), 'utf8')
  assert.doesNotMatch(source, /^\s*import\s/m)
  assert.doesNotMatch(source, /\b(?:require|process|Buffer|globalThis)\b/)
})

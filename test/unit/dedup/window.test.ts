import assert from 'node:assert/strict'
import { test } from 'node:test'
import { dedupWindow } from '../../../src/dedup/window.ts'

test('the dedup window gives every layer the same span: Redis TTL seconds, cache ms, warm-up start', () => {
  const window = dedupWindow(86_400)
  assert.equal(window.seconds, 86_400)
  assert.equal(window.ms, 86_400_000)
  assert.equal(window.since(1_700_000_000_000), 1_700_000_000_000 - 86_400_000)
})

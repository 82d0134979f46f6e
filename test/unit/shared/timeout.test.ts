import assert from 'node:assert/strict'
import { test } from 'node:test'
import { sleep, withTimeout } from '../../../src/shared/timeout.ts'

test('withTimeout answers with the promise when it settles in time', async () => {
  assert.equal(await withTimeout(Promise.resolve(7), 10_000, () => 'late'), 7)
  await assert.rejects(
    withTimeout(Promise.reject(new Error('boom')), 10_000, () => 'late'),
    /boom/,
  )
})

test("withTimeout answers with onTimeout's value, or its throw, when the promise is late", async () => {
  const never = new Promise<number>(() => {})
  assert.equal(await withTimeout(never, 5, () => 'late'), 'late')
  await assert.rejects(
    withTimeout(never, 5, () => {
      throw new Error('no answer within 5 ms')
    }),
    /no answer within 5 ms/,
  )
})

test('withTimeout clears its timer once the promise settled (no timer keeps the process alive)', async () => {
  const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  let timedOut = false
  await withTimeout(Promise.resolve(), 60_000, () => {
    timedOut = true
  })
  await withTimeout(Promise.reject(new Error('x')), 60_000, () => {}).catch(() => {})
  const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  assert.equal(after, before)
  assert.equal(timedOut, false)
})

test('a promise that rejects after its timeout is handled, never an unhandled rejection', async () => {
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown) => unhandled.push(reason)
  process.on('unhandledRejection', onUnhandled)
  try {
    const late = sleep(20).then(() => Promise.reject(new Error('late failure')))
    assert.equal(await withTimeout(late, 1, () => 'timed out'), 'timed out')
    await sleep(60)
    assert.deepEqual(unhandled, [])
  } finally {
    process.off('unhandledRejection', onUnhandled)
  }
})

test('sleep ends early when its signal aborts', async () => {
  const controller = new AbortController()
  const started = Date.now()
  setTimeout(() => controller.abort(), 10)
  await sleep(10_000, controller.signal)
  assert.ok(Date.now() - started < 1000)
})

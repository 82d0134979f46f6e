/**
 * The calls and notes between a cluster's primary and its workers (src/cluster/ipc.ts), over a
 * pair of in-memory channels that deliver asynchronously and in order, as node's IPC does.
 */
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { test } from 'node:test'
import { type Channel, Rpc } from '../../../src/cluster/ipc.ts'
import { isSpillwayError, spillwayError } from '../../../src/errors.ts'

class End extends EventEmitter implements Channel {
  peer: End | undefined
  open = true
  send(message: unknown, callback?: (error: Error | null) => void): boolean {
    if (!this.open || !this.peer?.open)
      throw Object.assign(new Error('channel closed'), { code: 'ERR_IPC_CHANNEL_CLOSED' })
    const copy = JSON.parse(JSON.stringify(message))
    setImmediate(() => {
      this.peer!.emit('message', copy)
      callback?.(null)
    })
    return true
  }
}

function pair(): [End, End] {
  const a = new End()
  const b = new End()
  a.peer = b
  b.peer = a
  return [a, b]
}

test('a call is answered with the handler’s value; notes arrive in order', async () => {
  const [a, b] = pair()
  const primary = new Rpc(a).handle('add', (args) => (args as number[]).reduce((x, y) => x + y, 0))
  const worker = new Rpc(b)
  const notes: unknown[] = []
  primary.onNote('head', (body) => notes.push(body))
  assert.equal(await worker.call('add', [1, 2, 3], 1000), 6)
  for (let i = 0; i < 5; i++) void worker.note('head', i)
  assert.equal(await worker.note('head', 5), true)
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(notes, [0, 1, 2, 3, 4, 5])
})

test('a SpillwayError keeps its code (and so its HTTP status) across the channel; others become plain errors', async () => {
  const [a, b] = pair()
  new Rpc(a)
    .handle('query', async () => {
      throw spillwayError('SPW_ERR_QUERY_INVALID', 'from must be before to')
    })
    .handle('broken', () => {
      throw new TypeError('oops')
    })
  const worker = new Rpc(b)
  await assert.rejects(worker.call('query', null, 1000), (error: unknown) => {
    assert.ok(isSpillwayError(error, 'SPW_ERR_QUERY_INVALID'))
    assert.equal(error.statusCode, 400)
    assert.equal(error.message, 'from must be before to')
    return true
  })
  await assert.rejects(
    worker.call('broken', null, 1000),
    (error: Error) => !isSpillwayError(error) && error.message === 'oops',
  )
  await assert.rejects(worker.call('missing', null, 1000), /no handler for missing/)
})

test('an unanswered call rejects after its timeout (503, retryable); a late answer is dropped', async () => {
  const [a, b] = pair()
  let release!: () => void
  new Rpc(a).handle('slow', () => new Promise<string>((resolve) => (release = () => resolve('late'))))
  const worker = new Rpc(b)
  await assert.rejects(worker.call('slow', null, 30), (error: unknown) => {
    assert.ok(isSpillwayError(error, 'SPW_ERR_SERVER_NOT_READY'))
    assert.match(error.message, /slow call .* not answered within 30 ms/)
    return true
  })
  release()
  await new Promise((resolve) => setTimeout(resolve, 10)) // the late reply arrives and is ignored
})

test('calls on a closed channel, or waiting when it closes, reject at once', async () => {
  const [a, b] = pair()
  new Rpc(a).handle('never', () => new Promise(() => {}))
  const worker = new Rpc(b)
  const waiting = worker.call('never', null, 60_000)
  worker.close()
  await assert.rejects(waiting, /channel to the other cluster process is closed/)
  await assert.rejects(worker.call('never', null, 60_000), /closed/)
  const [c, d] = pair()
  const other = new Rpc(d)
  c.open = false // the primary died: send throws
  await assert.rejects(other.call('x', null, 60_000), /closed/)
  assert.equal(await other.note('head', 1), false)
})

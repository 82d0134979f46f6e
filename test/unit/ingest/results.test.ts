/**
 * `?results=full` on the batch routes: one entry per input event with its fate and its id
 * (generated ones included); without it the answer is the counts and the rejected indexes, byte
 * for byte as before.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadConfig } from '../../../src/config/load.ts'
import type { WalWriter } from '../../../src/wal/writer.ts'
import { stubApp } from '../../helpers/app-stubs.ts'

async function setup(t: { after: (fn: () => Promise<void>) => void }) {
  const config = loadConfig({ env: {}, overrides: { logLevel: 'silent' } })
  return (await stubApp(t, config, { append: async () => 0 } as unknown as WalWriter)).app
}

const now = Math.floor(Date.now() / 1000)
const ev = (extra: Record<string, unknown>) => ({
  event_name: 'v',
  channel: 'web',
  user_id: 'u',
  timestamp: now,
  ...extra,
})

test('?results=full answers every index with its status and event_id, generated ids included; conflicts show by index', async (t) => {
  const app = await setup(t)
  await app.inject({ method: 'POST', url: '/events', payload: ev({ event_id: 'known' }) })
  const batch = [
    ev({ event_id: 'a' }),
    ev({ user_id: 'generated' }),
    ev({ event_id: 'known' }),
    { event_id: 'bad', channel: 'fax' },
    ev({ event_id: 'a' }),
    ev({ event_id: 'known', user_id: 'other' }),
  ]
  const res = await app.inject({ method: 'POST', url: '/events/batch?results=full', payload: batch })
  assert.equal(res.statusCode, 202, res.body)
  const body = res.json()
  assert.equal(body.accepted, 2)
  assert.equal(body.duplicates, 2)
  assert.deepEqual(
    body.rejected.map((r: { index: number }) => r.index),
    [3, 5],
  )
  const results = body.results as Record<string, unknown>[]
  assert.equal(results.length, 6)
  assert.deepEqual(
    results.map((r) => [r.index, r.status, r.event_id]),
    [
      [0, 'accepted', 'a'],
      [1, 'accepted', results[1].event_id],
      [2, 'duplicate', 'known'],
      [3, 'rejected', 'bad'],
      [4, 'duplicate', 'a'],
      [5, 'rejected', 'known'],
    ],
  )
  assert.match(String(results[1].event_id), /^[0-9a-f-]{16,}/, 'the generated id is given')
  assert.match(String(results[3].error), /event_name/)
  assert.equal(results[3].reason, 'invalid')
  assert.match(String(results[5].error), /already used for a different event/)
  assert.equal(results[5].reason, 'conflict')
  assert.equal(results[0].error, undefined)
})

test('?results=full on an all-rejected batch: 400 with the results; on NDJSON a line that is not JSON has a null id', async (t) => {
  const app = await setup(t)
  const res = await app.inject({
    method: 'POST',
    url: '/events/bulk?results=full',
    headers: { 'content-type': 'application/x-ndjson' },
    payload: '{"event_id":"x"}\nnot json\n',
  })
  assert.equal(res.statusCode, 400)
  const results = res.json().results
  assert.deepEqual(
    results.map((r: Record<string, unknown>) => [r.index, r.status, r.event_id]),
    [
      [0, 'rejected', 'x'],
      [1, 'rejected', null],
    ],
  )
})

test('without results the batch answer is byte-identical to the counts and rejected indexes', async (t) => {
  const app = await setup(t)
  const res = await app.inject({
    method: 'POST',
    url: '/events/batch?wait=true',
    payload: [ev({ event_id: 'a' }), ev({ event_id: 'a' }), { event_id: 'b' }],
  })
  assert.equal(res.statusCode, 202)
  const rejected = JSON.parse(res.body).rejected
  assert.equal(res.body, JSON.stringify({ accepted: 1, duplicates: 1, rejected }))
})

test('an unknown or repeated results value is a 400 naming the parameter', async (t) => {
  const app = await setup(t)
  for (const url of [
    '/events/batch?results=ful',
    '/events/batch?results=',
    '/events/bulk?results=full&results=full',
  ]) {
    const res = await app.inject({ method: 'POST', url, payload: [ev({})] })
    assert.equal(res.statusCode, 400, url)
    assert.match(res.json().error, /^results /, url)
  }
})

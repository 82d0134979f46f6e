import assert from 'node:assert/strict'
import { test } from 'node:test'
import { renderFrame, safe } from '../../../src/cli/top.ts'
import { Feed } from '../../../src/dashboard/feed.ts'

async function statsWith(exposition: string, details = [] as { sink: string; lastError: string | null }[]) {
  let clock = 1_000_000
  const feed = new Feed({
    render: async () => ({ body: exposition }),
    sinkDetails: async () =>
      details.map((d) => ({ ...d, lastErrorAt: d.lastError ? clock : null, lastDeliveredAt: null })),
    version: '9.9.9',
    clock: () => (clock += 1000),
  })
  await feed.sample()
  await feed.sample()
  return feed.stats()
}

const EXPOSITION = `events_accepted_total 42
sink_breaker_state{sink="http",state="open"} 1
sink_breaker_state{sink="http",state="closed"} 0
events_published_total{sink="http"} 7
`

test('a frame shows the node, the totals and each sink with its breaker and last error', async () => {
  const stats = await statsWith(EXPOSITION, [{ sink: 'http', lastError: 'connect ECONNREFUSED 127.0.0.1:9' }])
  const frame = renderFrame(stats, stats.history, {
    color: false,
    width: 200,
    ready: 'not ready',
    url: 'http://x:1',
  })
  assert.match(frame, /v9\.9\.9/)
  assert.match(frame, /totals: 42 accepted/)
  assert.match(frame, /^http\s+open\s+0\s+7\s/m)
  assert.match(frame, /connect ECONNREFUSED 127\.0\.0\.1:9/)
  assert.match(frame, /not ready/)
  assert.doesNotMatch(frame, /\x1b/, 'no colour codes when colour is off')
})

test("the server's text cannot drive the terminal: control characters are replaced", async () => {
  const stats = await statsWith(EXPOSITION, [{ sink: 'http', lastError: 'boom\x1b[2J\x1b]0;owned\x07\r\n' }])
  const frame = renderFrame(stats, stats.history, {
    color: false,
    width: 200,
    ready: 'ready',
    url: 'http://x:1',
  })
  assert.doesNotMatch(frame, /[\x00-\x09\x0b-\x1f]/)
  assert.match(frame, /boom\?\[2J\?\]0;owned\?\?\?/)
  assert.equal(safe('a\u009bb'), 'a?b')
})

test('lines are cut at the terminal width, colour codes closed', async () => {
  const stats = await statsWith(EXPOSITION)
  const frame = renderFrame(stats, stats.history, {
    color: true,
    width: 30,
    ready: 'ready',
    url: 'http://x:1',
  })
  for (const line of frame.split('\n')) {
    const visible = line.replace(/\x1b\[[0-9;?]*m/g, '')
    assert.ok(visible.length <= 30, JSON.stringify(visible))
  }
})

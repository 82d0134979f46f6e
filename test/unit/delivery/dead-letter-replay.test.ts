/**
 * `dlq replay` (src/delivery/dlq-replay.ts) against the real server in this process: what is sent,
 * what is recorded, and that a line is never sent twice.
 */
import assert from 'node:assert/strict'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { type AddressInfo, createServer } from 'node:net'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { DuckDBInstance } from '@duckdb/node-api'
import { deadLetterStates } from '../../../src/delivery/dlq-ledger.ts'
import { replayDeadLetters, replayLine } from '../../../src/delivery/dlq-replay.ts'
import type { NormalizedEvent } from '../../../src/intake/types.ts'
import type { RunningServer } from '../../../src/server.ts'
import { type DeadLetterEntry, DeadLetterStore, deadLetterUsage } from '../../../src/shared/dead-letter.ts'
import { lockDirectory } from '../../../src/wal/lock.ts'
import { startTestServer } from '../../helpers/in-process.ts'
import { makeTempDir, removeTempDir } from '../../helpers/temp-dir.ts'

const now = Math.floor(Date.now() / 1000)
const input = (over: Record<string, unknown> = {}) => ({
  event_name: 'replayed',
  channel: 'web',
  user_id: 'u1',
  timestamp: now - 30,
  ...over,
})
const normalized = (id: string, over: Partial<NormalizedEvent> = {}): NormalizedEvent => ({
  event_id: id,
  event_name: 'sink_refused',
  channel: 'api',
  campaign_id: null,
  user_id: `user-${id}`,
  timestamp: now - 60,
  received_at: Date.now() - 60_000,
  tags: ['x'],
  metadata: { id },
  ...over,
})

async function postNdjson(url: string, lines: string[]) {
  const response = await fetch(`${url}/events/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: lines.join('\n'),
  })
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers
  return { status: response.status, body: (await response.json()) as any }
}

/** Rows of an event name once delivery caught up (polls the server's GET /metrics). */
async function storedCount(server: { url: string }, eventName: string, expected: number): Promise<number> {
  let total = -1
  for (let i = 0; i < 100; i++) {
    const answer = await fetch(`${server.url}/metrics?event_name=${eventName}`)
    total = ((await answer.json()) as { total_events: number }).total_events
    if (total === expected) {
      // Still there a moment later, and not more.
      await new Promise((resolve) => setTimeout(resolve, 300))
      const again = await fetch(`${server.url}/metrics?event_name=${eventName}`)
      return ((await again.json()) as { total_events: number }).total_events
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return total
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise((resolve) => probe.close(resolve))
  return port
}

async function writeEntries(dataDir: string, entries: DeadLetterEntry[], source = 'delivery') {
  const store = new DeadLetterStore(join(dataDir, 'deadletter'), { source })
  await store.append(entries)
  await store.close()
}

/**
 * A data directory and servers on it; the servers are closed before the directory is removed (a
 * server whose WAL vanished would wait out its drain budget on close).
 */
async function scope(t: TestContext) {
  const dataDir = await makeTempDir('spillway-replay-')
  const servers: RunningServer[] = []
  t.after(async () => {
    for (const s of servers) await s.close()
    await removeTempDir(dataDir)
  })
  return {
    dataDir,
    dir: join(dataDir, 'deadletter'),
    server: async (overrides: Record<string, unknown> = {}) => {
      const s = await startTestServer(t, { dataDir, deliveryLingerMs: 10, ...overrides })
      servers.push(s)
      return s
    },
  }
}

test('intake rejections are replayed once the cause is fixed, and a second run sends nothing', async (t) => {
  const { dir, server } = await scope(t)
  const strict = await server({ maxTags: 0 })
  const first = await postNdjson(strict.url, [
    JSON.stringify(input({ event_id: 'fixed-1' })),
    JSON.stringify(input({ event_id: 'fixed-2', tags: ['a'] })),
    JSON.stringify(input({ event_id: 'fixed-3' })),
    JSON.stringify(input({ event_id: 'fixed-4', tags: ['b', 'c'] })),
  ])
  assert.equal(first.status, 202)
  assert.equal(first.body.rejected.length, 2)
  await strict.close()

  // The fix: a server that allows tags.
  const fixed = await server()
  const report = await replayDeadLetters({ dir, url: fixed.url })
  assert.equal(report.pending, 2)
  assert.equal(report.sent, 2)
  assert.equal(report.accepted, 2)
  assert.deepEqual(report.rejected, [])
  assert.equal(report.requests, 1)

  const again = await replayDeadLetters({ dir, url: fixed.url })
  assert.equal(again.pending, 0)
  assert.equal(again.sent, 0)
  assert.equal(again.requests, 0)
  assert.equal(await storedCount(fixed, 'replayed', 4), 4, 'each event stored once')
  const states = await deadLetterStates(dir)
  assert.deepEqual(
    states.map((s) => [s.pending, s.replay?.outcome]),
    [
      [false, 'accepted'],
      [false, 'accepted'],
    ],
  )
})

test('a replayed entry still invalid is marked in the ledger, not written again: the store does not grow', async (t) => {
  const { dir, server } = await scope(t)
  const srv = await server()
  const answer = await postNdjson(srv.url, [
    JSON.stringify(input()),
    JSON.stringify({ ...input(), user_id: '' }),
  ])
  assert.equal(answer.status, 202)
  const usage = await deadLetterUsage(dir)
  assert.equal(usage.entries, 1)

  for (let run = 1; run <= 3; run++) {
    const report = await replayDeadLetters({ dir, url: srv.url })
    assert.equal(report.pending, 1, `run ${run}: the entry is still pending`)
    assert.equal(report.sent, 1)
    assert.equal(report.accepted, 0)
    assert.equal(report.rejected.length, 1)
    assert.match(report.rejected[0].reason, /user_id must not be empty/)
    assert.deepEqual(await deadLetterUsage(dir), usage, `run ${run}: the store did not grow`)
  }
  const states = await deadLetterStates(dir)
  assert.equal(states.length, 1)
  assert.equal(states[0].pending, true, 'still the only copy: a later replay tries it again')
  assert.equal(states[0].replay?.outcome, 'invalid')
  assert.match(states[0].replay?.reason ?? '', /user_id must not be empty/)
  const ledger = await readFile(join(dir, 'replayed', 'ledger.jsonl'), 'utf8')
  assert.equal(ledger.trimEnd().split('\n').length, 1, 'the same outcome is recorded once, not once per run')
})

test('the ledger of a replay before this version still closes the lines it marked rejected', async (t) => {
  const { dataDir, dir } = await scope(t)
  await writeEntries(
    dataDir,
    [{ at: 1, reason: 'user_id is required', event: input({ user_id: '' }) }],
    'intake',
  )
  const [stored] = await deadLetterStates(dir)
  await mkdir(join(dir, 'replayed'), { recursive: true })
  await writeFile(
    join(dir, 'replayed', 'ledger.jsonl'),
    `${JSON.stringify({ id: stored.id, at: 1, outcome: 'rejected', reason: 'user_id is required' })}\n`,
  )
  const [state] = await deadLetterStates(dir)
  assert.equal(state.pending, false, 'it was written again as a new line back then')
})

test('the raw text of an NDJSON line that was not JSON goes back as it was sent', async (t) => {
  const { dir, server } = await scope(t)
  const srv = await server()
  await postNdjson(srv.url, [JSON.stringify(input()), '{"event_name": oops', '"just a string"', '[1,2]'])
  const before = await deadLetterStates(dir)
  assert.deepEqual(
    before.map((s) => s.entry.event),
    ['{"event_name": oops', 'just a string', [1, 2]],
  )
  assert.deepEqual(
    before.map((s) => replayLine(s.entry)),
    [{ line: '{"event_name": oops' }, { line: '"just a string"' }, { line: '[1,2]' }],
  )
  const bodies: string[] = []
  const report = await replayDeadLetters({
    dir,
    url: srv.url,
    fetch: (url, init) => {
      bodies.push(String(init?.body))
      return fetch(url, init)
    },
  })
  assert.deepEqual(bodies, ['{"event_name": oops\n"just a string"\n[1,2]\n'], 'sent exactly as received')
  assert.equal(report.rejected.length, 3)
  assert.match(report.rejected[0].reason, /line 1 is not valid JSON/)
  assert.match(report.rejected[1].reason, /event must be a JSON object, got "just a string"/)
  const after = await deadLetterStates(dir)
  assert.deepEqual(
    after.map((s) => [s.entry.event, s.pending, s.replay?.outcome]),
    [
      ['{"event_name": oops', true, 'invalid'],
      ['just a string', true, 'invalid'],
      [[1, 2], true, 'invalid'],
    ],
    'kept once each, marked',
  )
})

test('events a sink refused go back with their event_id, without received_at, and are stored once', async (t) => {
  const { dataDir, dir, server } = await scope(t)
  const ids = ['sink-a', 'sink-b', 'sink-c']
  await writeEntries(
    dataDir,
    ids.map((id, index) => ({
      at: Date.now(),
      sink: 'duckdb',
      reason: 'Conversion Error: simulated',
      index,
      position: 4096,
      event: normalized(id),
    })),
  )
  assert.equal(
    (replayLine({ at: 1, sink: 'duckdb', reason: 'r', event: normalized('x') }) as { line: string }).line,
    '{"event_id":"x","event_name":"sink_refused","channel":"api","campaign_id":null,"user_id":"user-x",' +
      `"timestamp":${now - 60},"tags":["x"],"metadata":{"id":"x"}}`,
  )
  const srv = await server()
  const report = await replayDeadLetters({ dir, url: srv.url, source: 'duckdb' })
  assert.equal(report.accepted, 3)
  assert.equal(await storedCount(srv, 'sink_refused', 3), 3)
  await srv.close()

  const db = await DuckDBInstance.create(join(dataDir, 'spillway.duckdb'))
  const conn = await db.connect()
  const rows = (
    await conn.runAndReadAll(`SELECT event_id FROM events WHERE event_name = 'sink_refused' ORDER BY 1`)
  ).getRowObjects()
  conn.closeSync()
  db.closeSync()
  assert.deepEqual(
    rows.map((r) => r['event_id']),
    ids,
  )
})

test('--sink selects one source; a dry run sends and records nothing', async (t) => {
  const { dataDir, dir } = await scope(t)
  await writeEntries(dataDir, [{ at: 1, sink: 'duckdb', reason: 'r', event: normalized('d1') }])
  await writeEntries(
    dataDir,
    [{ at: 2, reason: 'user_id is required', index: 0, event: input({ user_id: null }) }],
    'intake',
  )
  let requests = 0
  const counting: typeof fetch = async (...args) => {
    requests++
    return fetch(...args)
  }
  const dry = await replayDeadLetters({ dir, url: 'http://127.0.0.1:1', dryRun: true, fetch: counting })
  assert.equal(dry.dryRun, true)
  assert.equal(dry.pending, 2)
  assert.equal(dry.sent, 2)
  assert.equal(requests, 0)
  assert.deepEqual(
    (await deadLetterStates(dir)).map((s) => s.pending),
    [true, true],
  )
  const intakeOnly = await replayDeadLetters({
    dir,
    url: 'http://127.0.0.1:1',
    source: 'intake',
    dryRun: true,
  })
  assert.equal(intakeOnly.pending, 1)
})

test('an unreachable server stops the replay and leaves everything pending', async (t) => {
  const { dataDir, dir } = await scope(t)
  await writeEntries(dataDir, [{ at: 1, sink: 'duckdb', reason: 'r', event: normalized('u1') }])
  const port = await closedPort()
  const report = await replayDeadLetters({ dir, url: `http://127.0.0.1:${port}` })
  assert.match(
    report.stopped ?? '',
    new RegExp(`cannot reach http://127.0.0.1:${port}/events/batch: ECONNREFUSED`),
  )
  assert.equal(report.sent, 0)
  assert.deepEqual(
    (await deadLetterStates(dir)).map((s) => s.pending),
    [true],
  )
})

test('a 503 stops the replay after what was answered; the rest stays pending', async (t) => {
  const { dataDir, dir, server } = await scope(t)
  await writeEntries(
    dataDir,
    Array.from({ length: 5 }, (_, i) => ({ at: i, sink: 'duckdb', reason: 'r', event: normalized(`s${i}`) })),
  )
  const srv = await server()
  let calls = 0
  const flaky: typeof fetch = async (...args) => {
    if (++calls === 2)
      return new Response('{"error":"ingest queue is full"}', {
        status: 503,
        headers: { 'retry-after': '1' },
      })
    return fetch(...args)
  }
  const report = await replayDeadLetters({ dir, url: srv.url, chunkEvents: 2, fetch: flaky })
  assert.equal(report.accepted, 2)
  assert.match(report.stopped ?? '', /HTTP 503: ingest queue is full/)
  assert.deepEqual(
    (await deadLetterStates(dir)).map((s) => s.pending),
    [false, false, true, true, true],
  )
  const rest = await replayDeadLetters({ dir, url: srv.url, chunkEvents: 2 })
  assert.equal(rest.accepted, 3)
  assert.equal(await storedCount(srv, 'sink_refused', 5), 5)
})

test('chunks hold at most 1000 events', async (t) => {
  const { dataDir, dir, server } = await scope(t)
  await writeEntries(
    dataDir,
    Array.from({ length: 2500 }, (_, i) => ({
      at: i,
      sink: 'duckdb',
      reason: 'r',
      event: normalized(`bulk-${i}`),
    })),
  )
  const srv = await server()
  const sizes: number[] = []
  const counting: typeof fetch = async (url, init) => {
    sizes.push(String(init?.body).trimEnd().split('\n').length)
    return fetch(url, init)
  }
  const report = await replayDeadLetters({ dir, url: srv.url, fetch: counting })
  assert.deepEqual(sizes, [1000, 1000, 500])
  assert.equal(report.accepted, 2500)
  assert.equal(await storedCount(srv, 'sink_refused', 2500), 2500)
})

test('a chunk answered 413 is halved; an event too large on its own fails and stays pending', async (t) => {
  const { dataDir, dir, server } = await scope(t)
  const entries: DeadLetterEntry[] = Array.from({ length: 6 }, (_, i) => ({
    at: i,
    sink: 'duckdb',
    reason: 'r',
    event: normalized(`small-${i}`),
  }))
  entries.splice(3, 0, {
    at: 9,
    sink: 'duckdb',
    reason: 'r',
    event: normalized('big', { metadata: { blob: 'b'.repeat(3000) } }),
  })
  await writeEntries(dataDir, entries)
  const srv = await server({ maxBatchBytes: 1024 })
  const report = await replayDeadLetters({ dir, url: srv.url })
  assert.equal(report.accepted, 6)
  assert.equal(report.failed.length, 1)
  assert.match(report.failed[0].reason, /^HTTP 413: body is larger than 1024 bytes/)
  assert.ok(report.requests > 3, `halved (${report.requests} requests)`)
  const states = await deadLetterStates(dir)
  const big = states.find((s) => (s.entry.event as NormalizedEvent).event_id === 'big')
  assert.equal(big?.pending, true)
  assert.equal(big?.replay?.outcome, 'failed')
  assert.equal(states.filter((s) => s.pending).length, 1)
})

test('entries that are not one event are skipped and stay pending', async (t) => {
  const { dataDir, dir } = await scope(t)
  await writeEntries(dataDir, [
    { at: 1, sink: 'duckdb', reason: 'WAL record does not decode: …', position: 0, event: '{"a":\n{"b":' },
    { at: 2, reason: 'event must be a JSON object', event: ['x'], eventTruncated: 'cut at 64 levels' },
  ])
  const report = await replayDeadLetters({ dir, url: 'http://127.0.0.1:1' })
  assert.equal(report.skipped.length, 2)
  assert.equal(report.requests, 0)
  assert.match(report.skipped[0].reason, /several lines of raw text/)
  assert.match(report.skipped[1].reason, /stored cut/)
})

test('a second replay of the same store is refused while one runs', async (t) => {
  const { dataDir, dir } = await scope(t)
  await writeEntries(dataDir, [{ at: 1, sink: 'duckdb', reason: 'r', event: normalized('l1') }])
  await mkdir(join(dir, 'replayed'), { recursive: true })
  // The running replay's lock (a kernel lock: a second one is refused in the same process too).
  const running = lockDirectory(join(dir, 'replayed'))
  t.after(() => running.release())
  await assert.rejects(
    replayDeadLetters({ dir, url: 'http://127.0.0.1:1' }),
    new RegExp(`another dlq replay \\(process ${process.pid}\\) is running`),
  )
})

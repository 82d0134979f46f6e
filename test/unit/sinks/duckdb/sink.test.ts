import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { type DuckDBConnection, DuckDBDataChunk, DuckDBInstance, VARCHAR } from '@duckdb/node-api'
import { isSpillwayError } from '../../../../src/errors.ts'
import { encodeEvents } from '../../../../src/intake/serialize.ts'
import type { NormalizedEvent } from '../../../../src/intake/types.ts'
import { openDuckDb } from '../../../../src/sinks/duckdb/database.ts'
import { DuckDbSink, type DuckDbSinkOptions } from '../../../../src/sinks/duckdb/sink.ts'
import { makeEvents, sparseEvent } from '../../../helpers/events.ts'

/** Sinks of each test, closed (newest first) before its directory is removed. */
const opened = new WeakMap<TestContext, DuckDbSink[]>()

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-duckdb-'))
  opened.set(t, [])
  t.after(async () => {
    for (const sink of opened.get(t)!.reverse()) await sink.close()
    await rm(dir, { recursive: true, force: true })
  })
  return dir
}

async function openSink(
  t: TestContext,
  options: Partial<DuckDbSinkOptions> & { path: string },
): Promise<DuckDbSink> {
  const sink = new DuckDbSink(options)
  await sink.open()
  opened.get(t)!.push(sink)
  return sink
}

async function rows(sink: DuckDbSink, sql: string): Promise<Record<string, unknown>[]> {
  const connection = await sink.connect()
  try {
    return (await connection.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[]
  } finally {
    connection.closeSync()
  }
}

async function count(sink: DuckDbSink): Promise<number> {
  const [row] = await rows(sink, 'SELECT count(*)::INTEGER AS n FROM events')
  return Number(row['n'])
}

test('open creates the directory and both tables on a fresh file', async (t) => {
  const dir = await tempDir(t)
  const sink = await openSink(t, { path: join(dir, 'nested', 'deeper', 'spillway.duckdb') })
  const columns = await rows(
    sink,
    `SELECT column_name, data_type, is_nullable FROM information_schema.columns
     WHERE table_name = 'events' ORDER BY ordinal_position`,
  )
  assert.deepEqual(
    columns.map(
      (c) => `${c['column_name']} ${c['data_type']}${c['is_nullable'] === 'NO' ? ' NOT NULL' : ''}`,
    ),
    [
      'event_id VARCHAR NOT NULL',
      'event_name VARCHAR NOT NULL',
      'channel VARCHAR NOT NULL',
      'campaign_id VARCHAR',
      'user_id VARCHAR NOT NULL',
      'timestamp TIMESTAMP NOT NULL',
      'received_at TIMESTAMP NOT NULL',
      'tags VARCHAR[]',
      'metadata JSON',
      'tenant VARCHAR',
    ],
  )
  const cursors = await rows(
    sink,
    `SELECT column_name, data_type FROM information_schema.columns
     WHERE table_name = 'spillway_cursors' ORDER BY ordinal_position`,
  )
  assert.deepEqual(
    cursors.map((c) => `${c['column_name']} ${c['data_type']}`),
    ['sink VARCHAR', 'position BIGINT', 'updated_at TIMESTAMP'],
  )
  assert.equal(await sink.loadCursor(), null, 'nothing committed yet')
  await sink.ping()
})

test('write stores every row and loadCursor returns the batch end', async (t) => {
  const dir = await tempDir(t)
  const sink = await openSink(t, { path: join(dir, 'db.duckdb') })
  const events = makeEvents(5000, 'a')
  assert.deepEqual(await sink.write({ events, from: 0, to: 4096 }), { kind: 'delivered' })
  assert.equal(await sink.loadCursor(), 4096)
  assert.equal(await count(sink), 5000)
  const [first] = await rows(
    sink,
    `SELECT event_id, event_name, channel, campaign_id, user_id, epoch("timestamp")::BIGINT AS ts,
            epoch_ms(received_at) AS received_ms, tags, metadata FROM events WHERE event_id = 'a-1'`,
  )
  assert.deepEqual(first, {
    event_id: 'a-1',
    event_name: 'name_1',
    channel: 'mobile',
    campaign_id: null,
    user_id: 'user_1',
    ts: 1_723_475_613n,
    received_ms: 1_723_475_612_345n,
    tags: ['t1', 'x'],
    metadata: '{"i":1,"nested":{"ok":true}}',
  })
  const [stamp] = await rows(
    sink,
    `SELECT strftime("timestamp", '%Y-%m-%dT%H:%M:%S') AS s FROM events WHERE event_id = 'a-0'`,
  )
  assert.equal(stamp['s'], '2024-08-12T15:13:32', 'event time is stored as UTC')

  assert.equal((await sink.write({ events: makeEvents(10, 'b'), from: 4096, to: 5000 })).kind, 'delivered')
  assert.equal(await sink.loadCursor(), 5000)
  assert.equal(await count(sink), 5010)
})

test("the appender's rows belong to the connection's open transaction (ROLLBACK leaves none)", async () => {
  const instance = await DuckDBInstance.create(':memory:')
  const connection = await instance.connect()
  const other = await instance.connect()
  try {
    await connection.run('CREATE TABLE t (a VARCHAR NOT NULL)')
    const appender = await connection.createAppender('t')
    const chunk = DuckDBDataChunk.create([VARCHAR], 2048)
    chunk.setColumnValues(
      0,
      Array.from({ length: 2048 }, (_, i) => `v${i}`),
    )
    await connection.run('BEGIN TRANSACTION')
    appender.appendDataChunk(chunk)
    appender.appendDataChunk(chunk)
    appender.flushSync()
    const read = async (c: DuckDBConnection) =>
      (await c.runAndReadAll('SELECT count(*) FROM t')).getRows()[0][0]
    assert.equal(await read(connection), 4096n, 'visible inside the transaction')
    assert.equal(await read(other), 0n, 'invisible outside before COMMIT')
    await connection.run('ROLLBACK')
    assert.equal(await read(connection), 0n, 'gone after ROLLBACK')
    appender.closeSync()
    assert.equal(await read(other), 0n, 'closing the appender does not bring them back')
  } finally {
    other.closeSync()
    connection.closeSync()
    instance.closeSync()
  }
})

test('a failure between append and commit rolls back every row and leaves the cursor unchanged', async (t) => {
  const dir = await tempDir(t)
  let fail = false
  const sink = await openSink(t, {
    path: join(dir, 'db.duckdb'),
    beforeCommit: () => {
      if (fail) throw new Error('IO Error: could not write file "db.duckdb.wal": No space left on device')
    },
  })
  await sink.write({ events: makeEvents(100, 'ok'), from: 0, to: 100 })
  fail = true
  const verdict = await sink.write({ events: makeEvents(5000, 'lost'), from: 100, to: 200 })
  assert.equal(verdict.kind, 'retry')
  assert.ok(verdict.kind === 'retry' && isSpillwayError(verdict.error, 'SPW_ERR_SINK_UNAVAILABLE'))
  assert.equal(await count(sink), 100)
  assert.equal(await sink.loadCursor(), 100)
  fail = false
  assert.equal((await sink.write({ events: makeEvents(5000, 'lost'), from: 100, to: 200 })).kind, 'delivered')
  assert.equal(await count(sink), 5100, 'the retried batch is stored once')
  assert.equal(await sink.loadCursor(), 200)
})

test('a batch holding a value that cannot be stored is refused as permanent, with nothing of it kept', async (t) => {
  const dir = await tempDir(t)
  const sink = await openSink(t, { path: join(dir, 'db.duckdb') })
  await sink.write({ events: makeEvents(10, 'ok'), from: 0, to: 10 })
  // The bad event sits in the second chunk, so a whole first chunk is appended before it fails.
  const cases: [string, Partial<NormalizedEvent>, RegExp][] = [
    ['a fractional timestamp', { timestamp: 1.5 }, /event 2500 .*timestamp must be an integer/],
    ['a timestamp beyond the TIMESTAMP range', { timestamp: 9_000_000_000_000_000 }, /int64/],
    ['a missing user_id', { user_id: null as unknown as string }, /user_id must be a string/],
  ]
  for (const [what, bad, reason] of cases) {
    const events = makeEvents(3000, 'bad')
    events[2500] = { ...events[2500], ...bad }
    const verdict = await sink.write({ events, from: 10, to: 20 })
    assert.equal(verdict.kind, 'permanent', what)
    assert.ok(verdict.kind === 'permanent' && isSpillwayError(verdict.error, 'SPW_ERR_SINK_REJECTED'))
    assert.match(verdict.error.message, reason, what)
    assert.equal(await count(sink), 10, `${what}: no row of the batch remains`)
    assert.equal(await sink.loadCursor(), 10, `${what}: cursor unchanged`)
  }
  assert.equal((await sink.write({ events: makeEvents(3000, 'good'), from: 10, to: 20 })).kind, 'delivered')
  assert.equal(await count(sink), 3010, 'the sink keeps working after refusals')
})

test('a NOT NULL violation found by DuckDB at flush is permanent and rolled back', async (t) => {
  const dir = await tempDir(t)
  const sink = await openSink(t, { path: join(dir, 'db.duckdb') })
  const connection = await sink.connect()
  // Make the table stricter than the sink knows, so DuckDB (not the sink) finds the bad value.
  await connection.run('ALTER TABLE events ALTER COLUMN campaign_id SET NOT NULL')
  const events: NormalizedEvent[] = makeEvents(3000, 'x').map((e) => ({ ...e, campaign_id: 'cmp' }))
  events[2900] = { ...events[2900], campaign_id: null }
  const verdict = await sink.write({ events, from: 0, to: 10 })
  assert.equal(verdict.kind, 'permanent')
  assert.match(
    verdict.kind === 'permanent' ? verdict.error.message : '',
    /NOT NULL constraint failed: events.campaign_id/,
  )
  assert.equal(await count(sink), 0)
  assert.equal(await sink.loadCursor(), null)
  connection.closeSync()
})

test('rows and cursor survive close and reopen, and delivery resumes at the cursor', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'db.duckdb')
  const first = new DuckDbSink({ path })
  await first.open()
  await first.write({ events: makeEvents(2500, 'a'), from: 0, to: 700 })
  await first.close()

  const again = await openSink(t, { path })
  assert.equal(await again.loadCursor(), 700, 'delivery resumes after the last committed batch')
  assert.equal(await count(again), 2500)
  await again.write({ events: makeEvents(100, 'b'), from: 700, to: 800 })
  assert.equal(await count(again), 2600)
  const [distinct] = await rows(again, 'SELECT count(DISTINCT event_id)::INTEGER AS n FROM events')
  assert.equal(distinct['n'], 2600)
})

test('a record re-sent after reopen from the committed cursor stores no event twice', async (t) => {
  // Delivery cut one WAL record (position 100..200, events r-0..r-9) into two pieces; the first
  // piece ended inside the record, so it committed cursor 100 (the record's start). A crash
  // before the second piece means the whole record is re-sent from 100 after the restart.
  const dir = await tempDir(t)
  const path = join(dir, 'db.duckdb')
  const before = makeEvents(5, 'p', 1_000)
  const record = makeEvents(10, 'r', 2_000)
  const after = makeEvents(5, 'n', 3_000)
  const first = new DuckDbSink({ path })
  await first.open()
  await first.write({ events: [...before, ...record.slice(0, 4)], from: 0, to: 100 })
  await first.close()

  const sink = await openSink(t, { path })
  assert.equal(await sink.loadCursor(), 100)
  assert.equal((await sink.write({ events: record.slice(0, 6), from: 100, to: 100 })).kind, 'delivered')
  assert.equal(
    (await sink.write({ events: [...record.slice(6), ...after], from: 100, to: 300 })).kind,
    'delivered',
  )
  const stored = await rows(sink, 'SELECT event_id, count(*)::INTEGER AS n FROM events GROUP BY event_id')
  assert.equal(stored.length, 20, 'every event is stored')
  assert.deepEqual(
    stored.filter((r) => r['n'] !== 1),
    [],
    'no event is stored twice',
  )
  assert.equal(await sink.loadCursor(), 300)
  // Past the replayed record the direct path is back: an identical event is not filtered any more.
  await sink.write({ events: [sparseEvent('r-0', { received_at: 2_000 })], from: 300, to: 400 })
  assert.equal(await count(sink), 21)
})

test('two tenants sharing an event_id are two rows on every path; a replay skips only the same tenant', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'db.duckdb')
  const alice = sparseEvent('order-42', { tenant: 'alice', user_id: 'a', received_at: 2_000 })
  const bob = sparseEvent('order-42', { tenant: 'bob', user_id: 'b', received_at: 2_000 })
  const none = sparseEvent('order-42', { user_id: 'n', received_at: 2_000 })
  const first = new DuckDbSink({ path })
  await first.open()
  // The NDJSON path (read_ndjson), then a piece that commits the record's start as its cursor.
  await first.write({ events: [], ndjson: encodeEvents([alice, none]), from: 0, to: 100 })
  await first.write({ events: [bob], from: 100, to: 100 })
  await first.close()

  const sink = await openSink(t, { path })
  // The record re-sent from 100 after a reopen: the replay path, anti-joined on (tenant, event_id).
  const carol = sparseEvent('order-42', { tenant: 'carol', user_id: 'c', received_at: 2_000 })
  assert.equal((await sink.write({ events: [bob, carol], from: 100, to: 200 })).kind, 'delivered')
  const stored = await rows(sink, 'SELECT tenant, event_id, user_id FROM events ORDER BY user_id')
  assert.deepEqual(
    stored.map((r) => `${r['tenant']} ${r['event_id']} ${r['user_id']}`),
    ['alice order-42 a', 'bob order-42 b', 'carol order-42 c', ' order-42 n'],
  )
  assert.deepEqual(
    (await sink.recentKeys(0, 10)).map(([key]) => key).sort(),
    ['alice/order-42', 'bob/order-42', 'carol/order-42', 'order-42'],
    'the dedup keys, to warm the delivery cache',
  )
})

test('a table made before tenants gets the tenant column at open, its rows the empty tenant', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'old.duckdb')
  const db = await DuckDBInstance.create(path)
  const connection = await db.connect()
  await connection.run(`CREATE TABLE events (event_id VARCHAR NOT NULL, event_name VARCHAR NOT NULL,
    channel VARCHAR NOT NULL, campaign_id VARCHAR, user_id VARCHAR NOT NULL, "timestamp" TIMESTAMP NOT NULL,
    received_at TIMESTAMP NOT NULL, tags VARCHAR[], metadata JSON)`)
  await connection.run(`INSERT INTO events VALUES ('old-1', 'v', 'web', NULL, 'u', now(), now(), [], NULL)`)
  connection.closeSync()
  db.closeSync()

  const sink = await openSink(t, { path })
  await sink.write({
    events: [],
    ndjson: encodeEvents([sparseEvent('new-1', { tenant: 'alice' })]),
    from: 0,
    to: 10,
  })
  await sink.write({ events: [sparseEvent('new-2', { tenant: 'bob' })], from: 10, to: 20 })
  const stored = await rows(sink, 'SELECT event_id, tenant FROM events ORDER BY event_id')
  assert.deepEqual(
    stored.map((r) => `${r['event_id']}:${r['tenant']}`),
    ['new-1:alice', 'new-2:bob', 'old-1:'],
  )
})

test('a replayed piece that fails once is still deduplicated when it is retried', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'db.duckdb')
  const record = makeEvents(10, 'r', 2_000)
  const first = new DuckDbSink({ path })
  await first.open()
  await first.write({ events: record.slice(0, 4), from: 0, to: 100 })
  await first.close()

  let failures = 1
  const sink = await openSink(t, {
    path,
    beforeCommit: () => {
      if (failures-- > 0) throw new Error('IO Error: disk hiccup')
    },
  })
  assert.equal((await sink.write({ events: record, from: 100, to: 200 })).kind, 'retry')
  assert.equal(await count(sink), 4, 'the failed attempt left nothing')
  assert.equal((await sink.write({ events: record, from: 100, to: 200 })).kind, 'delivered')
  assert.equal(await count(sink), 10, 'the retry stored only the events not stored before')
})

test('pieces that share their end position are each stored and the cursor never moves back', async (t) => {
  const dir = await tempDir(t)
  const sink = await openSink(t, { path: join(dir, 'db.duckdb') })
  await sink.write({ events: makeEvents(3, 'a'), from: 0, to: 50 })
  await sink.write({ events: makeEvents(3, 'b'), from: 50, to: 50 })
  await sink.write({ events: makeEvents(3, 'c'), from: 50, to: 50 })
  assert.equal(await count(sink), 9)
  assert.equal(await sink.loadCursor(), 50)
  await sink.write({ events: [], from: 40, to: 40 })
  assert.equal(await sink.loadCursor(), 50, 'a lower position does not move the cursor back')
})

test('an empty batch commits only the cursor', async (t) => {
  const dir = await tempDir(t)
  const sink = await openSink(t, { path: join(dir, 'db.duckdb') })
  assert.deepEqual(await sink.write({ events: [], from: 123, to: 123 }), { kind: 'delivered' })
  assert.equal(await sink.loadCursor(), 123)
  assert.equal(await count(sink), 0)
})

test('a SIGKILL between append and COMMIT leaves exactly the rows and cursor of the last commit', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'db.duckdb')
  const child = spawn(process.execPath, [join(import.meta.dirname, 'fixtures', 'crash-writer.ts'), path], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (data) => {
    stderr += data
  })
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('exit', (c, s) => resolve([c, s])),
  )
  assert.equal(signal, 'SIGKILL', `the writer was killed mid-transaction (exit ${code}): ${stderr}`)

  const sink = await openSink(t, { path })
  assert.equal(await sink.loadCursor(), 100)
  const stored = await rows(
    sink,
    `SELECT split_part(event_id, '-', 1) AS batch, count(*)::INTEGER AS n FROM events GROUP BY batch ORDER BY batch`,
  )
  assert.deepEqual(stored, [{ batch: 'committed', n: 3000 }])
})

test('unicode, quotes, newlines and NUL in strings, tags and nested metadata round-trip', async (t) => {
  const dir = await tempDir(t)
  const sink = await openSink(t, { path: join(dir, 'db.duckdb') })
  const nasty = `héllo "wörld" 'it''s' \\ back\nslash\ttab \u0000nul 😀 𝄞 中文 ‮rtl`
  const metadata = {
    text: nasty,
    nested: { deeper: { list: [1, 2.5, -3e-7, 'x', null, true, { k: nasty }] }, empty: {} },
    'key with "quotes"': "it's",
    big: 12345678901234,
  }
  const original = sparseEvent(nasty, {
    event_name: `ev\n${nasty}`,
    campaign_id: `cmp'--; DROP TABLE events; --`,
    user_id: `user "${nasty}"`,
    tags: [nasty, '', '[a, b]', '"quoted"', "o'neil", '中文'],
    metadata,
  })
  assert.equal(
    (await sink.write({ events: [original, sparseEvent('plain')], from: 0, to: 1 })).kind,
    'delivered',
  )
  const [row] = await rows(
    sink,
    `SELECT event_id, event_name, campaign_id, user_id, tags, metadata FROM events WHERE event_id <> 'plain'`,
  )
  assert.deepEqual(
    { ...row, metadata: JSON.parse(String(row['metadata'])) },
    {
      event_id: nasty,
      event_name: `ev\n${nasty}`,
      campaign_id: `cmp'--; DROP TABLE events; --`,
      user_id: `user "${nasty}"`,
      tags: [nasty, '', '[a, b]', '"quoted"', "o'neil", '中文'],
      metadata,
    },
  )
  const [json] = await rows(
    sink,
    `SELECT metadata->>'$.nested.deeper.list[6].k' AS k FROM events WHERE event_id <> 'plain'`,
  )
  assert.equal(json['k'], nasty, 'metadata is queryable JSON')
})

test('an NDJSON batch is stored exactly as the same events through the appender', async (t) => {
  const dir = await tempDir(t)
  const nasty = `héllo "wörld" 'it''s' \\ back\nslash\ttab \u0000nul 😀 𝄞 中文`
  const events = [
    sparseEvent('a', {
      tags: [nasty, ''],
      metadata: { nested: { list: [1, 2.5, null, { k: nasty }] } },
      campaign_id: null,
    }),
    sparseEvent(nasty, { event_name: `ev\n${nasty}`, user_id: `u'${nasty}`, tags: [], metadata: null }),
    ...makeEvents(3000, 'bulk'),
  ]
  const viaEvents = await openSink(t, { path: join(dir, 'events.duckdb') })
  const viaNdjson = await openSink(t, { path: join(dir, 'ndjson.duckdb') })
  assert.equal(viaNdjson.acceptsNdjson, true)
  assert.equal((await viaEvents.write({ events, from: 0, to: 10 })).kind, 'delivered')
  const ndjson = encodeEvents(events)
  const batch = {
    from: 0,
    to: 10,
    ndjson,
    get events(): NormalizedEvent[] {
      throw new Error('the NDJSON path must not decode events')
    },
  }
  assert.equal((await viaNdjson.write(batch)).kind, 'delivered')
  const all = 'SELECT * FROM events ORDER BY event_id'
  assert.deepEqual(await rows(viaNdjson, all), await rows(viaEvents, all))
  assert.equal(await viaNdjson.loadCursor(), 10)
})

test('a malformed NDJSON batch is refused as permanent and leaves nothing', async (t) => {
  const dir = await tempDir(t)
  const sink = await openSink(t, { path: join(dir, 'db.duckdb') })
  const ndjson = Buffer.from(`${JSON.stringify(sparseEvent('ok'))}\n{"event_id": 5, "event_name": null}\n`)
  const verdict = await sink.write({ from: 0, to: 5, ndjson, events: [] })
  assert.equal(verdict.kind, 'permanent', JSON.stringify(verdict))
  assert.equal(await count(sink), 0)
  assert.equal(await sink.loadCursor(), null)
})

test('one instance per file per process: openDuckDb shares it and closes it with the last release', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'db.duckdb')
  const a = await openDuckDb(path)
  const b = await openDuckDb(join(dir, '.', 'db.duckdb'))
  assert.equal(a.instance, b.instance)
  const sink = new DuckDbSink({ path })
  await sink.open()
  await sink.write({ events: makeEvents(3, 'x'), from: 0, to: 3 })
  const reader = await b.connect()
  assert.equal((await reader.runAndReadAll('SELECT count(*) FROM events')).getRows()[0][0], 3n)
  await sink.close()
  await a.release()
  assert.equal(
    (await reader.runAndReadAll('SELECT count(*) FROM events')).getRows()[0][0],
    3n,
    'b still open',
  )
  await b.release()
  await assert.rejects(reader.run('SELECT 1'), /disconnected/)
  const c = await openDuckDb(path)
  assert.notEqual(c.instance, a.instance, 'a new instance after the last release')
  await c.release()
})

test('a sink on a caller-owned instance leaves the instance open on close', async (t) => {
  const dir = await tempDir(t)
  const instance = await DuckDBInstance.create(join(dir, 'db.duckdb'))
  t.after(() => instance.closeSync())
  const sink = new DuckDbSink({ path: 'unused', instance, name: 'second' })
  await sink.open()
  await sink.write({ events: makeEvents(2, 'x'), from: 0, to: 9 })
  await sink.close()
  const connection = await instance.connect()
  const cursor = (await connection.runAndReadAll('SELECT sink, position FROM spillway_cursors')).getRows()
  assert.deepEqual(cursor, [['second', 9n]])
  connection.closeSync()
})

test('write, ping and connect reject before open and after close', async (t) => {
  const dir = await tempDir(t)
  const sink = new DuckDbSink({ path: join(dir, 'db.duckdb') })
  await assert.rejects(sink.write({ events: [], from: 0, to: 0 }), /not open/)
  await assert.rejects(sink.ping(), /not open/)
  await sink.open()
  await sink.ping()
  await sink.close()
  await sink.close()
  await assert.rejects(sink.ping(), /not open/)
  await assert.rejects(sink.connect(), /not open/)
})

/**
 * The sink's requests, against a fake ClickHouse HTTP interface that plays an 18.16 or a modern
 * server (the real 18.16 is in test/integration/clickhouse-*.test.ts; no modern server is
 * available here, so what the sink asks of one is pinned down in these tests).
 */
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type TestContext, test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { loadConfig } from '../../../../src/config/load.ts'
import { isSpillwayError } from '../../../../src/errors.ts'
import { encodeEvents } from '../../../../src/intake/serialize.ts'
import { clickhouseSinkOptions } from '../../../../src/sinks/clickhouse/config.ts'
import { ClickHouseQueryBackend } from '../../../../src/sinks/clickhouse/query.ts'
import { ClickHouseSink } from '../../../../src/sinks/clickhouse/sink.ts'
import { sparseEvent } from '../../../helpers/events.ts'

interface Seen {
  readonly sql: string
  readonly search: URLSearchParams
  readonly headers: IncomingMessage['headers']
  readonly data: Buffer
}

interface Fake {
  readonly url: string
  readonly seen: Seen[]
  /** Answers to the next INSERTs, in order; then 200. */
  readonly insertAnswers: { status: number; body: string }[]
  columns: string[]
  /** A server that cannot change a sorting key (answers MODIFY ORDER BY with an error). */
  fixedKey: boolean
  down: boolean
  server: Server
}

async function fakeClickHouse(t: TestContext, kind: 'legacy' | 'modern'): Promise<Fake> {
  const fake: Fake = {
    url: '',
    seen: [],
    insertAnswers: [],
    columns: [
      'event_id',
      'event_name',
      'channel',
      'campaign_id',
      'user_id',
      'timestamp',
      'received_at',
      'tags',
      'metadata',
      'tenant',
    ],
    fixedKey: false,
    down: false,
    server: undefined as unknown as Server,
  }
  fake.server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    let body = Buffer.concat(chunks)
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body)
    const search = new URL(req.url!, 'http://x').searchParams
    const sql = search.get('query') ?? body.toString()
    fake.seen.push({ sql, search, headers: req.headers, data: search.has('query') ? body : Buffer.alloc(0) })
    if (fake.down) return res.socket?.destroy()
    const send = (status: number, text: string) => res.writeHead(status).end(text)
    if (sql === 'SELECT version()') return send(200, kind === 'modern' ? '24.3.2.23\n' : '18.16.1\n')
    if (sql.includes('FROM system.settings')) {
      return send(
        200,
        kind === 'modern'
          ? 'async_insert\nwait_for_async_insert\ninput_format_json_read_objects_as_strings\n'
          : '',
      )
    }
    if (sql === 'SELECT {p:UInt8}') {
      return kind === 'modern'
        ? send(200, `${search.get('param_p')}\n`)
        : send(500, 'Code: 62, e.displayText() = DB::Exception: Syntax error')
    }
    if (sql.startsWith('CREATE')) return send(200, '')
    if (sql.startsWith('ALTER')) {
      if (fake.fixedKey && sql.includes('MODIFY ORDER BY')) return send(500, 'Code: 48, not implemented')
      fake.columns.push('tenant')
      return send(200, '')
    }
    if (sql.includes('FROM system.columns')) return send(200, fake.columns.map((c) => `${c}\n`).join(''))
    if (sql.includes('FROM system.tables')) return send(200, 'ReplacingMergeTree\n')
    if (sql === 'SELECT 1') return send(200, '1\n')
    if (sql.startsWith('INSERT')) {
      const answer = fake.insertAnswers.shift() ?? { status: 200, body: '' }
      return send(answer.status, answer.body)
    }
    if (sql.startsWith('SELECT uniqExact')) return send(200, '3\t2\n')
    send(500, `Code: 62, unexpected ${sql}`)
  })
  await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve))
  Object.assign(fake, { url: `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}` })
  t.after(() => new Promise<void>((resolve) => fake.server.close(() => resolve())))
  return fake
}

async function openSink(
  t: TestContext,
  url: string,
  options: Partial<ConstructorParameters<typeof ClickHouseSink>[0]> = {},
) {
  const sink = new ClickHouseSink({ url, database: 'db', ...options })
  t.after(() => sink.close())
  await sink.open()
  return sink
}

const inserts = (fake: Fake) => fake.seen.filter((s) => s.sql.startsWith('INSERT'))

test('modern server: WAL bytes pass untouched, objects read as strings, async insert for small batches', async (t) => {
  const fake = await fakeClickHouse(t, 'modern')
  const sink = await openSink(t, fake.url)
  const ddl = fake.seen.find((s) => s.sql.startsWith('CREATE TABLE'))!.sql
  assert.match(ddl, /LowCardinality\(String\)/)
  assert.match(ddl, /DateTime64\(3, 'UTC'\)/)

  const small = encodeEvents([sparseEvent('a', { metadata: { k: 'v' } }), sparseEvent('b')])
  assert.deepEqual(await sink.write({ events: [], ndjson: small, from: 0, to: 1 }), { kind: 'delivered' })
  const [first] = inserts(fake)
  assert.equal(
    first.sql,
    'INSERT INTO `db`.`events` (event_id, tenant, event_name, channel, campaign_id, user_id, timestamp, received_at, tags, metadata) FORMAT JSONEachRow',
  )
  assert.equal(first.headers['content-encoding'], 'gzip')
  assert.deepEqual(first.data, small, 'the WAL bytes themselves')
  assert.equal(first.search.get('input_format_json_read_objects_as_strings'), '1')
  assert.equal(first.search.get('input_format_null_as_default'), '1')
  assert.equal(first.search.get('async_insert'), '1')
  assert.equal(first.search.get('wait_for_async_insert'), '1')

  const big = encodeEvents(Array.from({ length: 1500 }, (_, i) => sparseEvent(`big-${i}`)))
  assert.equal((await sink.write({ events: [], ndjson: big, from: 1, to: 2 })).kind, 'delivered')
  const second = inserts(fake)[1]
  assert.equal(second.search.get('async_insert'), null, 'a large batch is a part by itself')

  const query = new ClickHouseQueryBackend(sink)
  assert.deepEqual(await query.totals({ event_name: "x'y", from: 5 }), { total_events: 3, unique_users: 2 })
  const select = fake.seen.at(-1)!
  assert.equal(select.search.get('param_name'), "x'y")
  assert.equal(select.search.get('param_from'), '5')
  assert.ok(!select.sql.includes("x'y"))
})

test('18.16: metadata re-encoded as a string, no settings the server lacks, literals in queries', async (t) => {
  const fake = await fakeClickHouse(t, 'legacy')
  const sink = await openSink(t, fake.url)
  assert.doesNotMatch(fake.seen.find((s) => s.sql.startsWith('CREATE TABLE'))!.sql, /LowCardinality|CODEC/)
  const events = [sparseEvent('a', { metadata: { k: 'v' } })]
  assert.equal((await sink.write({ events, from: 0, to: 1 })).kind, 'delivered')
  const [insert] = inserts(fake)
  assert.deepEqual(JSON.parse(insert.data.toString()).metadata, '{"k":"v"}')
  for (const name of ['async_insert', 'input_format_json_read_objects_as_strings']) {
    assert.equal(insert.search.get(name), null, name)
  }
  const query = new ClickHouseQueryBackend(sink)
  await query.totals({ event_name: "x'y" })
  assert.match(fake.seen.at(-1)!.sql, /event_name = 'x\\'y'/)
})

test('credentials go in a Basic header, from the URL or the options, never in the URL', async (t) => {
  const fake = await fakeClickHouse(t, 'legacy')
  const withUrl = await openSink(t, fake.url.replace('//', '//alice:s%3Acret@'))
  await withUrl.ping()
  const basic = (user: string, password: string) =>
    `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
  assert.equal(fake.seen.at(-1)!.headers.authorization, basic('alice', 's:cret'))
  const withOptions = await openSink(t, fake.url, { user: 'bob', password: 'pw' })
  await withOptions.ping()
  assert.equal(fake.seen.at(-1)!.headers.authorization, basic('bob', 'pw'))
  assert.ok(
    fake.seen.every((s) => !s.search.toString().includes('cret') && !s.search.toString().includes('pw')),
  )
})

test('a server down at start is not fatal: writes retry, ping says why, and it connects later', async (t) => {
  const fake = await fakeClickHouse(t, 'legacy')
  fake.down = true
  const sink = await openSink(t, fake.url)
  const verdict = await sink.write({ events: [sparseEvent('a')], from: 0, to: 1 })
  assert.equal(verdict.kind, 'retry')
  await assert.rejects(sink.ping(), (e) => isSpillwayError(e, 'SPW_ERR_SINK_UNAVAILABLE'))
  fake.down = false
  await sink.ping()
  assert.equal((await sink.write({ events: [sparseEvent('a')], from: 0, to: 1 })).kind, 'delivered')
})

test('a dropped table is created again before the next attempt', async (t) => {
  const fake = await fakeClickHouse(t, 'legacy')
  const sink = await openSink(t, fake.url)
  fake.insertAnswers.push({
    status: 404,
    body: "Code: 60, e.displayText() = DB::Exception: Table db.events doesn't exist.",
  })
  const creates = () => fake.seen.filter((s) => s.sql.startsWith('CREATE TABLE')).length
  assert.equal(creates(), 1)
  assert.equal((await sink.write({ events: [sparseEvent('a')], from: 0, to: 1 })).kind, 'retry')
  assert.equal((await sink.write({ events: [sparseEvent('a')], from: 0, to: 1 })).kind, 'delivered')
  assert.equal(creates(), 2)
})

test('a retry of the same batch sends the same compressed body without re-encoding it', async (t) => {
  const fake = await fakeClickHouse(t, 'legacy')
  const sink = await openSink(t, fake.url)
  fake.insertAnswers.push({
    status: 500,
    body: 'Code: 252, e.displayText() = DB::Exception: Too many parts (300)',
  })
  const batch = { events: [sparseEvent('a'), sparseEvent('b')], from: 0, to: 1 }
  const first = await sink.write(batch)
  assert.equal(first.kind === 'retry' && first.afterMs, 2000, 'too many parts: throttled')
  assert.equal((await sink.write(batch)).kind, 'delivered')
  const [a, b] = inserts(fake)
  assert.deepEqual(a.data, b.data)
})

test('an existing table without the sink columns fails the start naming them', async (t) => {
  const fake = await fakeClickHouse(t, 'legacy')
  fake.columns = ['event_id', 'ts']
  const sink = new ClickHouseSink({ url: fake.url, database: 'db' })
  t.after(() => sink.close())
  await assert.rejects(sink.open(), /exists without the column\(s\) event_name, channel/)
})

test('a table made before tenants gets the tenant column, in its sorting key where the server can', async (t) => {
  const before = (fake: Fake) => {
    fake.columns = fake.columns.filter((c) => c !== 'tenant')
  }
  const fake = await fakeClickHouse(t, 'legacy')
  before(fake)
  const batch = { events: [sparseEvent('a', { tenant: 'alice' })], from: 0, to: 1 }
  const sink = await openSink(t, fake.url)
  assert.equal((await sink.write(batch)).kind, 'delivered')
  assert.deepEqual(
    fake.seen.filter((s) => s.sql.startsWith('ALTER')).map((s) => s.sql),
    ['ALTER TABLE `db`.`events` ADD COLUMN tenant String, MODIFY ORDER BY (event_name, event_id, tenant)'],
  )
  assert.match(inserts(fake)[0].sql, /\(event_id, tenant, event_name, .*\) FORMAT JSONEachRow/)

  const fixed = await fakeClickHouse(t, 'modern')
  before(fixed)
  fixed.fixedKey = true
  const other = await openSink(t, fixed.url)
  assert.equal((await other.write(batch)).kind, 'delivered')
  assert.deepEqual(
    fixed.seen.filter((s) => s.sql.startsWith('ALTER')).map((s) => s.sql),
    [
      'ALTER TABLE `db`.`events` ADD COLUMN tenant LowCardinality(String), MODIFY ORDER BY (event_name, event_id, tenant)',
      'ALTER TABLE `db`.`events` ADD COLUMN tenant LowCardinality(String)',
    ],
  )
})

test('config: a URL is required and must be the HTTP interface; batch sizes become batchLimits', () => {
  const config = (env: Record<string, string>) =>
    loadConfig({ env: { SPILLWAY_SINKS: 'clickhouse', ...env } })
  assert.throws(
    () => clickhouseSinkOptions(config({}), 'clickhouse'),
    (e) =>
      isSpillwayError(e, 'SPW_ERR_CONFIG_INVALID') && /set clickhouseUrl \(CLICKHOUSE_URL/.test(e.message),
  )
  assert.throws(
    () => clickhouseSinkOptions(config({ CLICKHOUSE_URL: 'tcp://127.0.0.1:9000' }), 'clickhouse'),
    /expected the HTTP interface/,
  )
  const options = clickhouseSinkOptions(
    config({
      CLICKHOUSE_URL: 'http://127.0.0.1:8123',
      CLICKHOUSE_DATABASE: 'analytics',
      CLICKHOUSE_BATCH_ROWS: '50000',
      CLICKHOUSE_BATCH_BYTES: '33554432',
    }),
    'clickhouse',
  )
  assert.equal(options.database, 'analytics')
  const sink = new ClickHouseSink(options)
  assert.deepEqual(sink.batchLimits, { rows: 50_000, bytes: 33_554_432 })
  assert.deepEqual(new ClickHouseSink({ url: 'http://x:1' }).batchLimits, {
    rows: undefined,
    bytes: undefined,
  })
})

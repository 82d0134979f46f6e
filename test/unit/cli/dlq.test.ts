/**
 * `spillway dlq list` and `spillway dlq replay`: the listing (order, filters, counts) and the real
 * command as a user runs it, against a server in this process.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { promisify } from 'node:util'
import { formatListing, formatReplay, listDlq, replayExitCode } from '../../../src/cli/dlq.ts'
import { loadConfig } from '../../../src/config/load.ts'
import type { RunningServer } from '../../../src/server.ts'
import { type DeadLetterEntry, DeadLetterStore } from '../../../src/shared/dead-letter.ts'
import { startTestServer } from '../../helpers/in-process.ts'
import { NODE, ROOT } from '../../helpers/server-process.ts'
import { makeTempDir, removeTempDir } from '../../helpers/temp-dir.ts'

const now = Math.floor(Date.now() / 1000)

async function dataDirWith(t: TestContext, entries: Record<string, DeadLetterEntry[]>) {
  const dataDir = await makeTempDir('spillway-cli-dlq-')
  const servers: RunningServer[] = []
  t.after(async () => {
    for (const s of servers) await s.close()
    await removeTempDir(dataDir)
  })
  for (const [source, list] of Object.entries(entries)) {
    const store = new DeadLetterStore(join(dataDir, 'deadletter'), { source })
    await store.append(list)
    await store.close()
  }
  return {
    dataDir,
    config: loadConfig({ env: {}, overrides: { dataDir } }),
    server: async () => {
      const s = await startTestServer(t, { dataDir, deliveryLingerMs: 10 })
      servers.push(s)
      return s
    },
  }
}

const ENTRIES: Record<string, DeadLetterEntry[]> = {
  intake: [
    {
      at: 1_000,
      reason: 'user_id is required',
      index: 2,
      event: { event_name: 'a', channel: 'web', timestamp: now },
    },
    {
      at: 3_000,
      reason: 'user_id is required',
      index: 0,
      event: { event_name: 'b', channel: 'web', timestamp: now },
    },
    { at: 4_000, reason: 'line 1 is not valid JSON: oops', index: 1, event: '{oops' },
  ],
  delivery: [
    {
      at: 2_000,
      sink: 'duckdb',
      reason: 'Conversion Error: bad value',
      index: 0,
      position: 4096,
      event: {
        event_id: 'sink-1',
        event_name: 'refused',
        channel: 'api',
        campaign_id: null,
        user_id: 'u',
        timestamp: now - 5,
        received_at: Date.now(),
        tags: [],
        metadata: null,
      },
    },
  ],
}

test('dlq list shows pending entries newest first with a count per reason', async (t) => {
  const { config } = await dataDirWith(t, ENTRIES)
  const listing = await listDlq(config, {})
  assert.equal(listing.order, 'newest first')
  assert.equal(listing.total, 4)
  assert.deepEqual(
    listing.entries.map((e) => [e.time, e.source, e.reason]),
    [
      ['1970-01-01T00:00:04.000Z', 'intake', 'line 1 is not valid JSON: oops'],
      ['1970-01-01T00:00:03.000Z', 'intake', 'user_id is required'],
      ['1970-01-01T00:00:02.000Z', 'duckdb', 'Conversion Error: bad value'],
      ['1970-01-01T00:00:01.000Z', 'intake', 'user_id is required'],
    ],
  )
  assert.deepEqual(listing.byReason, [
    { reason: 'user_id is required', count: 2 },
    { reason: 'Conversion Error: bad value', count: 1 },
    { reason: 'line 1 is not valid JSON: oops', count: 1 },
  ])
  const text = formatListing(listing)
  assert.match(text, /4 entries, 4 shown, newest first/)
  assert.match(
    text,
    /00:00:02\.000Z {2}duckdb {3}#0 {5}Conversion Error: bad value\n {4}\{"event_id":"sink-1"/,
  )
  assert.match(text, /\(text\) "\{oops"/)
  assert.match(text, /by reason:\n {7}2 {2}user_id is required/)
})

test('dlq list --sink and --limit filter; the counts cover every matching entry', async (t) => {
  const { config } = await dataDirWith(t, ENTRIES)
  const intake = await listDlq(config, { sink: 'intake', limit: '1' })
  assert.equal(intake.total, 3)
  assert.equal(intake.shown, 1)
  assert.equal(intake.entries[0].reason, 'line 1 is not valid JSON: oops')
  assert.equal(
    intake.byReason.reduce((n, r) => n + r.count, 0),
    3,
  )
  const duckdb = await listDlq(config, { sink: 'duckdb' })
  assert.deepEqual(
    duckdb.entries.map((e) => e.source),
    ['duckdb'],
  )
  await assert.rejects(listDlq(config, { limit: '0' }), /--limit must be a positive integer/)
})

test('after a replay, dlq list hides what was replayed; --all shows it with its outcome', async (t) => {
  const { config, server } = await dataDirWith(t, ENTRIES)
  const srv = await server()
  const { stdout, code } = await cli([
    'dlq',
    'replay',
    '--data-dir',
    config.dataDir,
    '--url',
    srv.url,
    '--json',
  ])
  const report = JSON.parse(stdout)
  assert.equal(code, 1, 'exit 1: some were rejected again')
  assert.equal(report.pending, 4)
  assert.equal(report.accepted, 1)
  assert.equal(report.rejected.length, 3)

  const pending = await listDlq(config, {})
  assert.equal(pending.replayed, 1)
  // The three rejected again stay pending, once each, marked with the server's reasons.
  assert.equal(pending.total, 3)
  assert.ok(pending.entries.every((e) => e.replay?.outcome === 'invalid'))
  assert.match(formatListing(pending), /\[replay invalid: user_id is required\]/)
  const all = await listDlq(config, { all: 'true' })
  assert.equal(all.total, 4, 'the store did not grow')
  const accepted = all.entries.find((e) => e.replay?.outcome === 'accepted')
  assert.equal(accepted?.source, 'duckdb')

  // Nothing that was replayed is sent again.
  const again = await cli([
    'dlq',
    'replay',
    '--data-dir',
    config.dataDir,
    '--url',
    srv.url,
    '--sink',
    'duckdb',
  ])
  assert.equal(again.code, 0)
  assert.match(again.stdout, /^replayed 0 of 0 pending entries/)
})

test('dlq replay prints what happened and exits 0 when everything was accepted', async (t) => {
  const { config, server } = await dataDirWith(t, { delivery: ENTRIES['delivery'] })
  const srv = await server()
  const dry = await cli(['dlq', 'replay', '--data-dir', config.dataDir, '--url', srv.url, '--dry-run'])
  assert.equal(dry.code, 0)
  assert.match(
    dry.stdout,
    /^dry run: 1 of 1 pending entries would be sent to http:\/\/127\.0\.0\.1:\d+\/events\/batch/,
  )
  const { stdout, code } = await cli(['dlq', 'replay', '--data-dir', config.dataDir, '--url', srv.url])
  assert.equal(code, 0, stdout)
  assert.match(
    stdout,
    /^replayed 1 of 1 pending entries to .* in 1 request: 1 accepted \(0 duplicates\), 0 rejected again, 0 failed/,
  )
})

test('dlq list --json from the command line; bad commands and flags exit 2', async (t) => {
  const { config } = await dataDirWith(t, ENTRIES)
  const listed = await cli(['dlq', 'list', '--data-dir', config.dataDir, '--json', '--limit', '2'])
  assert.equal(listed.code, 0)
  const listing = JSON.parse(listed.stdout)
  assert.equal(listing.total, 4)
  assert.equal(listing.entries.length, 2)
  const unknown = await cli(['dlq', 'frobnicate', '--data-dir', config.dataDir])
  assert.equal(unknown.code, 2)
  assert.match(unknown.stderr, /unknown dlq command "frobnicate"; use list, replay or purge/)
  const badFlag = await cli(['dlq', 'list', '--data-dir', config.dataDir, '--frobnicate'])
  assert.equal(badFlag.code, 2)
  assert.match(badFlag.stderr, /unknown flag --frobnicate/)
})

test('dlq purge drops what every filter matches and frees its bytes; --dry-run changes nothing', async (t) => {
  const { config } = await dataDirWith(t, ENTRIES)
  const dataDir = config.dataDir
  const reasons = async () => (await listDlq(config, {})).entries.map((e) => e.reason).sort()
  const all = await reasons()
  assert.equal(all.length, 4)

  const dry = await cli(['dlq', 'purge', '--data-dir', dataDir, '--reason', 'required', '--dry-run'])
  assert.equal(dry.code, 0, dry.stderr)
  assert.match(
    dry.stdout,
    /^dry run: would drop 2 entries \(\d+ bytes, 0 files removed\) from .*; it holds 4 entries, \d+ bytes/,
  )
  assert.deepEqual(await reasons(), all)

  // --sink and --before together: the intake entries older than 3.5 s after the epoch.
  const both = await cli([
    'dlq',
    'drop',
    '--data-dir',
    dataDir,
    '--sink',
    'intake',
    '--before',
    '1970-01-01T00:00:03.500Z',
    '--json',
  ])
  assert.equal(both.code, 0, both.stderr)
  const report = JSON.parse(both.stdout)
  assert.equal(report.entries, 2)
  assert.ok(report.bytes > 0)
  assert.deepEqual(report.left.entries, 2)
  assert.deepEqual(await reasons(), ['Conversion Error: bad value', 'line 1 is not valid JSON: oops'])

  const byReason = await cli(['dlq', 'purge', '--data-dir', dataDir, '--reason', 'Conversion', '--json'])
  assert.equal(JSON.parse(byReason.stdout).filesRemoved, 1, 'the delivery file had no entry left')
  assert.deepEqual(await reasons(), ['line 1 is not valid JSON: oops'])

  const none = await cli(['dlq', 'purge', '--data-dir', dataDir])
  assert.equal(none.code, 2)
  assert.match(
    none.stderr,
    /dlq purge needs a filter \(--reason TEXT, --sink S, --before TIME, --replayed\) or --all/,
  )
  const badTime = await cli(['dlq', 'purge', '--data-dir', dataDir, '--before', 'yesterday'])
  assert.equal(badTime.code, 2)
  assert.match(badTime.stderr, /--before must be an ISO-8601 time .* or Unix seconds, got "yesterday"/)

  const everything = await cli(['dlq', 'purge', '--data-dir', dataDir, '--all'])
  assert.equal(everything.code, 0)
  assert.match(everything.stdout, /^dropped 1 entry .*; it now holds 0 entries, 0 bytes/)
  assert.deepEqual(await reasons(), [])
})

test('dlq purge --replayed drops what a replay got accepted, not what is still pending', async (t) => {
  const { config, server } = await dataDirWith(t, ENTRIES)
  const srv = await server()
  const replayed = await cli([
    'dlq',
    'replay',
    '--data-dir',
    config.dataDir,
    '--url',
    srv.url,
    '--sink',
    'duckdb',
  ])
  assert.equal(replayed.code, 0, replayed.stdout)
  const { stdout, code } = await cli(['dlq', 'purge', '--data-dir', config.dataDir, '--replayed', '--json'])
  assert.equal(code, 0)
  assert.equal(JSON.parse(stdout).entries, 1)
  const left = await listDlq(config, { all: 'true' })
  assert.equal(left.total, 3)
  assert.ok(left.entries.every((e) => e.source === 'intake'))
})

test('a replay that stopped early says so and exits 1', () => {
  const report = {
    url: 'http://x',
    dryRun: false,
    pending: 3,
    sent: 0,
    requests: 1,
    accepted: 0,
    duplicates: 0,
    rejected: [],
    failed: [],
    skipped: [{ id: 'f#1', reason: 'the entry holds several lines of raw text' }],
    stopped: 'cannot reach http://x/events/batch: ECONNREFUSED',
  }
  assert.equal(replayExitCode(report), 1)
  const text = formatReplay(report)
  assert.match(text, /skipped \(cannot be replayed as one event; still pending\):\n {2}f#1/)
  assert.match(text, /stopped early: cannot reach .*ECONNREFUSED; the rest is still pending, run again later/)
})

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(NODE, [join(ROOT, 'src/cli/main.ts'), ...args], {
      env: { ...process.env, SPILLWAY_DATA_DIR: '' },
    })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

/**
 * One flipped byte in a sealed WAL segment, against the real server process: it must cost the one
 * record it hit, not the rest of the segment. A first server takes 2,000 events, one request each
 * (one WAL record each), while its only sink (http, to a port nobody listens on) delivers nothing,
 * so every segment stays on disk. It stops; one byte of a record in the middle of a sealed segment
 * is flipped; a second server on the same data directory delivers the log to a new DuckDB sink.
 */
import assert from 'node:assert/strict'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { decodeRecord } from '../../src/wal/record.ts'
import { freePort } from '../helpers/clickhouse.ts'
import { postJson, send } from '../helpers/http.ts'
import { parsePrometheusText, sampleValue } from '../helpers/prometheus-text.ts'
import { startServerProcess } from '../helpers/server-process.ts'
import { storedEventCounts } from '../helpers/store-check.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'
import { eventually, sleep } from '../helpers/wait.ts'

const EVENTS = 2000
const now = Math.floor(Date.now() / 1000)

test('one flipped byte in a sealed WAL segment costs one event: 1,999 of 2,000 stored, the damage counted, shown and kept', {
  timeout: 180_000,
}, async (t) => {
  const dataDir = await makeTempDir('spillway-wal-damage-')
  t.after(() => removeTempDir(dataDir))
  const walDir = join(dataDir, 'wal')
  // One process (no worker shards): the API's appends are the node WAL's records, one per request.
  const common = {
    SPILLWAY_WORKERS: '1',
    SPILLWAY_WAL_SEGMENT_BYTES: String(64 * 1024),
    SPILLWAY_SHUTDOWN_TIMEOUT_MS: '500',
  }

  // 1. 2,000 events into the WAL; the sink is down, so nothing is delivered or deleted.
  const first = await startServerProcess(dataDir, {
    ...common,
    SPILLWAY_SINKS: 'http',
    SPILLWAY_HTTP_SINK_URL: `http://127.0.0.1:${await freePort()}/ingest`,
  })
  t.after(() => first.kill('SIGKILL'))
  // One request at a time: each event is a WAL record of its own.
  const ids = Array.from({ length: EVENTS }, (_, i) => `damage-${i}`)
  for (const [n, id] of ids.entries()) {
    const event = {
      event_id: id,
      event_name: 'wal_damage',
      channel: 'web',
      user_id: `user_${n % 37}`,
      timestamp: now - 60,
      metadata: { n },
    }
    // A busy machine may shed with 503 + Retry-After; a client retries.
    for (let attempt = 0; ; attempt++) {
      const answer = await postJson(`${first.url}/events`, event)
      if (answer.status === 202) break
      assert.equal(answer.status, 503, JSON.stringify(answer.body))
      assert.ok(attempt < 50, 'accepted within 50 tries')
      await sleep(100)
    }
  }
  first.kill('SIGTERM')
  assert.deepEqual(await first.exited(), { code: 0, signal: null }, `graceful exit; see ${first.logFile}`)

  // 2. Flip one byte in the payload of a record in the middle of a sealed segment.
  const segments = (await readdir(walDir)).filter((n) => n.endsWith('.wal')).sort()
  assert.ok(segments.length >= 4, `several segments (${segments.length})`)
  const victimSegment = join(walDir, segments[Math.floor(segments.length / 2) - 1])
  const bytes = await readFile(victimSegment)
  const records: { offset: number; size: number; id: string }[] = []
  for (let at = 0; at < bytes.length; ) {
    const r = decodeRecord(bytes, at, 1 << 30)
    assert.equal(r.status, 'ok')
    if (r.status !== 'ok') break
    records.push({ offset: at, size: r.size, id: JSON.parse(r.payload.toString()).event_id })
    at += r.size
  }
  const victim = records[Math.floor(records.length / 2)]
  bytes[victim.offset + 8 + 30] ^= 0x02
  await writeFile(victimSegment, bytes)

  // 3. A new DuckDB sink reads the whole log from its start.
  const second = await startServerProcess(dataDir, { ...common, SPILLWAY_SINKS: 'duckdb' })
  t.after(() => second.kill('SIGKILL'))
  await eventually(
    async () => {
      const answer = await send(`${second.url}/metrics?event_name=wal_damage`)
      return answer.status === 200 && answer.body.total_events === EVENTS - 1
    },
    `${EVENTS - 1} events stored`,
    60_000,
  )

  const ready = await send(`${second.url}/ready`)
  assert.equal(ready.status, 200, JSON.stringify(ready.body))
  const kept = join(
    walDir,
    'damaged',
    `${segments[Math.floor(segments.length / 2) - 1]}.${victim.offset}-${victim.offset + victim.size}.damaged`,
  )
  assert.deepEqual(ready.body.details.wal.damage, {
    ranges: 1,
    bytes: victim.size,
    keptIn: 'see the server log', // a path: kept out of answers anyone can read (issue 15, item 15)
    keptFiles: 1,
    keptBytes: victim.size,
  })
  assert.deepEqual(await readFile(kept), bytes.subarray(victim.offset, victim.offset + victim.size))

  const metrics = parsePrometheusText(await (await fetch(`${second.metricsUrl}/metrics`)).text())
  assert.equal(sampleValue(metrics, 'wal_damaged_ranges_total'), 1)
  assert.equal(sampleValue(metrics, 'wal_damaged_bytes_total'), victim.size)
  assert.match(await readFile(second.logFile, 'utf8'), /"msg":"WalRecordDamaged"/)

  second.kill('SIGTERM')
  assert.deepEqual(await second.exited(), { code: 0, signal: null }, `graceful exit; see ${second.logFile}`)
  const stored = await storedEventCounts(join(dataDir, 'spillway.duckdb'))
  assert.equal(stored.size, EVENTS - 1)
  assert.equal(stored.has(victim.id), false, 'the event in the damaged record is the one missing')
  assert.ok(
    [...stored.values()].every((n) => n === 1),
    'each stored once',
  )
})

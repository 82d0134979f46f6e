/**
 * A store deleted under a running server, for real: `spillway serve` (one process, DuckDB) takes
 * events in 64 KiB WAL segments, delivers them and deletes the segments it delivered; it is
 * stopped and its DuckDB file deleted. The WAL no longer holds the events of the deleted
 * segments, so after a restart DuckDB would silently miss them. Then:
 * - a start refuses (exit 2), naming the sink, the store file and the WAL range that is gone;
 * - `--accept-store-loss` starts, logging a warning that names the same, and delivers what the
 *   WAL still holds;
 * - after that, a start without the flag works again (the loss was accepted once, not forever).
 */
import assert from 'node:assert/strict'
import { mkdir, readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { parseSegmentName } from '../../src/wal/segment.ts'
import { destroyAgent, send } from '../helpers/http.ts'
import { type ServerProcess, startServerProcess } from '../helpers/server-process.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'
import { eventually } from '../helpers/wait.ts'

const SEGMENT_BYTES = 64 * 1024

test('a deleted DuckDB file refuses the next start, naming what was lost, unless --accept-store-loss', {
  timeout: 5 * 60_000,
}, async (t) => {
  const base = await makeTempDir('spillway-storeloss-')
  const dataDir = join(base, 'data')
  const duckdbPath = join(dataDir, 'spillway.duckdb')
  await mkdir(dataDir)
  let server: ServerProcess | undefined
  t.after(async () => {
    destroyAgent()
    if (server && server.proc.exitCode === null && server.proc.signalCode === null) {
      server.kill('SIGKILL')
      await server.exited()
    }
    await removeTempDir(base)
  })
  const env = {
    SPILLWAY_WAL_SEGMENT_BYTES: String(SEGMENT_BYTES),
    SPILLWAY_DELIVERY_LINGER_MS: '20',
    SPILLWAY_WORKERS: '1',
  }
  const start = (args: string[] = []) => startServerProcess(dataDir, env, args)
  const stop = async () => {
    server!.kill('SIGTERM')
    assert.deepEqual(
      await server!.exited(),
      { code: 0, signal: null },
      `graceful exit; see ${server!.logFile}`,
    )
  }
  const stored = async (url: string) =>
    (await send(`${url}/metrics?event_name=store_loss`)).body.total_events as number

  // 1. Events in many segments, delivered; the delivered segments are deleted.
  server = await start()
  const now = Math.floor(Date.now() / 1000)
  let sent = 0
  for (let b = 0; b < 40; b++) {
    const lines = Array.from({ length: 50 }, () =>
      JSON.stringify({
        event_id: `e-${sent++}`,
        event_name: 'store_loss',
        channel: 'web',
        user_id: `u-${sent % 37}`,
        timestamp: now - (sent % 300),
        metadata: { pad: 'p'.repeat(300) },
      }),
    )
    const answer = await send(`${server.url}/events/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: lines.join('\n'),
    })
    assert.equal(answer.status, 202, JSON.stringify(answer.body))
  }
  const url = server.url
  await eventually(async () => (await stored(url)) === sent, `${sent} events in DuckDB`, 60_000)
  const oldest = await eventually(
    async () => {
      const start = await oldestSegment(join(dataDir, 'wal'))
      return start !== undefined && start > 0 ? start : undefined
    },
    'delivered WAL segments to be deleted',
    30_000,
  )
  t.diagnostic(`${sent} events delivered; the WAL now starts at ${oldest}`)
  await stop()

  // 2. The store is deleted while the server is down.
  for (const name of await readdir(dataDir)) {
    if (name.startsWith('spillway.duckdb')) await rm(join(dataDir, name))
  }
  const walStart = await oldestSegment(join(dataDir, 'wal'))
  assert.ok(walStart !== undefined && walStart > 0)

  // 3. A start refuses, saying what is gone.
  server = undefined
  await assert.rejects(start(), /exited \(code 2/)
  const refusal = await lastLog(dataDir)
  t.diagnostic(`refused: ${refusal.split('\n').find((line) => line.includes('SPW_ERR'))}`)
  assert.match(refusal, /SPW_ERR_SINK_STORE_LOST/)
  assert.match(refusal, /sink duckdb/)
  assert.ok(refusal.includes(duckdbPath), `the refusal names the store file ${duckdbPath}`)
  assert.ok(
    refusal.includes(`WAL positions 0 to ${walStart}`),
    `the refusal names the lost range 0..${walStart}`,
  )
  assert.match(refusal, /--accept-store-loss/)

  // 4. With the flag it starts, warns, and delivers what the WAL still holds.
  server = await start(['--accept-store-loss'])
  assert.equal((await send(`${server.url}/ready`)).status, 200)
  const kept = await eventually(
    async () => {
      const n = await stored(server!.url)
      return n > 0 ? n : undefined
    },
    'the events still in the WAL to be delivered again',
    60_000,
  )
  const warned = (await readFile(server.logFile, 'utf8'))
    .split('\n')
    .find((line) => line.includes('DeliveryStoreLossAccepted'))
  assert.ok(warned, 'a DeliveryStoreLossAccepted warning')
  const warning = JSON.parse(warned)
  assert.equal(warning.level, 40, 'logged at warn')
  assert.equal(warning.sink, 'duckdb')
  assert.equal(warning.store, duckdbPath)
  assert.deepEqual([warning.lostFrom, warning.lostTo], [0, walStart])
  assert.ok(kept < sent, `only what the WAL kept is back (${kept} of ${sent})`)
  await stop()

  // 5. The loss was accepted once: the next start needs no flag.
  server = await start()
  assert.equal((await send(`${server.url}/ready`)).status, 200)
  await stop()
})

async function oldestSegment(walDir: string): Promise<number | undefined> {
  const starts = (await readdir(walDir))
    .map((name) => parseSegmentName(name))
    .filter((start): start is number => start !== undefined)
  return starts.length === 0 ? undefined : Math.min(...starts)
}

/** The newest server log of the data directory (a refused start leaves one, see server-process.ts). */
async function lastLog(dataDir: string): Promise<string> {
  const logs = (await readdir(dataDir)).filter((name) => name.startsWith('server-') && name.endsWith('.log'))
  logs.sort()
  return readFile(join(dataDir, logs[logs.length - 1]), 'utf8')
}

/**
 * A full disk, for real: the data directory (WAL and dead letters) of the real server process is
 * an 8 MiB tmpfs; DuckDB lives on the ordinary disk, so delivery keeps going and WAL segments
 * (256 KiB here) are deleted as they are delivered. A ballast file takes every free byte of the
 * tmpfs while clients keep sending single events and NDJSON batches (some with invalid events, so
 * the dead-letter store is written too). Then:
 * - every answer is 202 or 503 with a JSON error and Retry-After — never a 500, never a crash;
 * - `spillway wal verify` is clean while the disk is full and after the run;
 * - `/ready` answers 503 naming the cause while WAL writes fail, so a load balancer sends elsewhere;
 *   once the ballast is removed it turns 200 again by itself, with no event sent (a node taken out
 *   of rotation gets no writes that could succeed);
 * - once the ballast is removed the same process accepts again (no restart);
 * - every 202-acked event ends up in DuckDB exactly once.
 * Needs root (mount); skipped, saying why, where mounting a tmpfs is refused.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, open, readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { eventBody } from '../helpers/events.ts'
import { type Answer, destroyAgent, send } from '../helpers/http.ts'
import { type ServerProcess, startServerProcess } from '../helpers/server-process.ts'
import { storedEventCounts, walVerify } from '../helpers/store-check.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'

const run = promisify(execFile)
const TMPFS_SIZE = '8m'
const CLIENTS = 8

test('a full disk answers 503 with Retry-After, corrupts nothing, and the server recovers by itself', {
  timeout: 5 * 60_000,
}, async (t) => {
  const base = await makeTempDir('spillway-diskfull-')
  const dataDir = join(base, 'data')
  await mkdir(dataDir)
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE}`, 'tmpfs', dataDir])
  } catch (error) {
    await removeTempDir(base)
    const why = (error as { stderr?: string }).stderr?.trim() || (error as Error).message
    t.skip(`mounting a ${TMPFS_SIZE} tmpfs is refused here (${why}); this test needs root or CAP_SYS_ADMIN`)
    return
  }
  let server: ServerProcess | undefined
  t.after(async () => {
    destroyAgent()
    if (server && server.proc.exitCode === null && server.proc.signalCode === null) {
      server.kill('SIGKILL')
      await server.exited()
    }
    await run('umount', [dataDir]).catch(() => run('umount', ['-l', dataDir]))
    await removeTempDir(base)
  })

  const duckdbPath = join(base, 'spillway.duckdb')
  const env = {
    SPILLWAY_DATA_DIR: dataDir,
    SPILLWAY_DUCKDB_PATH: duckdbPath,
    SPILLWAY_WAL_SEGMENT_BYTES: String(256 * 1024),
    SPILLWAY_DELIVERY_LINGER_MS: '20',
  }
  // The log goes to `base` (the ordinary disk), the data to the tmpfs.
  server = await startServerProcess(base, env)
  const url = server.url

  const acked = new Set<string>()
  const sent = new Set<string>()
  const statuses = new Map<number, number>()
  let first503: Answer | undefined
  const now = Math.floor(Date.now() / 1000)
  let seq = 0
  const event = (id: string) =>
    eventBody({
      event_id: id,
      event_name: 'disk_full',
      user_id: `user_${seq % 101}`,
      timestamp: now - (seq++ % 600),
      metadata: { pad: 'p'.repeat(200) },
    })

  /** One request; checks the answer is 202 or a proper 503. */
  const request = async (phase: string, batch: boolean): Promise<number> => {
    const ids = batch
      ? Array.from({ length: 40 }, () => `${phase}-${seq}-${Math.random()}`)
      : [`${phase}-${seq}`]
    for (const id of ids) sent.add(id)
    const lines = ids.map((id) => JSON.stringify(event(id)))
    // Invalid events in batches go to the dead-letter store, which is on the full disk too.
    if (batch)
      lines.push(
        JSON.stringify(
          eventBody({ event_id: undefined, event_name: 'invalid', channel: 'tv', timestamp: now }),
        ),
      )
    const answer = batch
      ? await send(`${url}/events/batch`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-ndjson' },
          body: lines.join('\n'),
        })
      : await send(`${url}/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: lines[0],
        })
    statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
    if (answer.status === 202) {
      if (batch) assert.equal(answer.body.accepted, ids.length, JSON.stringify(answer.body))
      for (const id of ids) acked.add(id)
    } else {
      assert.equal(
        answer.status,
        503,
        `only 202 or 503, got ${answer.status}: ${JSON.stringify(answer.body)}`,
      )
      assert.equal(typeof answer.body.error, 'string', 'a 503 carries a JSON error')
      assert.ok(answer.headers['retry-after'], 'a 503 carries Retry-After')
      first503 ??= answer
    }
    return answer.status
  }

  // 1. Normal operation.
  for (let i = 0; i < 100; i++) assert.equal(await request('warm', i % 4 === 0), 202)

  // 2. Fill the tmpfs to the last byte with a ballast file.
  const ballast = join(dataDir, 'ballast')
  const ballastBytes = await fill(ballast)
  t.diagnostic(`ballast took ${(ballastBytes / 1024 / 1024).toFixed(2)} MiB; the tmpfs is full`)

  // 3. Clients keep sending: 503s must appear, and nothing else but 202s.
  let refused = 0
  const until = Date.now() + 4000
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (let n = 0; Date.now() < until || refused < 20; n++) {
        if ((await request(`full-c${c}`, (n + c) % 3 === 0)) === 503) refused++
        if (Date.now() > until + 20_000) break
      }
    }),
  )
  assert.ok(refused >= 20, `the full disk was refused with 503s (${refused})`)
  t.diagnostic(`while full: ${fmt(statuses)}; first 503: ${JSON.stringify(first503?.body)}`)
  assert.equal(server.proc.exitCode, null, 'the server is still running')
  assert.equal((await send(`${url}/health`)).status, 200)
  const notReady = await send(`${url}/ready`)
  t.diagnostic(`/ready while full: ${notReady.status} ${JSON.stringify(notReady.body)}`)
  assert.equal(notReady.status, 503, '/ready is 503 while WAL writes fail')
  assert.match(String(notReady.body.error), /WAL writes failing: no space left on device/)
  assert.ok(notReady.headers['retry-after'], 'a 503 from /ready carries Retry-After')

  // 4. Nothing is corrupt, even now.
  const during = await walVerify(dataDir)
  assert.equal(during.ok, true, JSON.stringify(during))

  // 5. Free the space: /ready turns 200 without any event sent, then the same process accepts
  // again, without a restart.
  await rm(ballast)
  const freedAt = Date.now()
  for (;;) {
    const ready = await send(`${url}/ready`)
    if (ready.status === 200) break
    assert.ok(
      Date.now() - freedAt < 30_000,
      `/ready 200 within 30 s of the space coming back, no event sent (${JSON.stringify(ready.body)})`,
    )
    await sleep(200)
  }
  t.diagnostic(`/ready 200 again ${Date.now() - freedAt} ms after the ballast was removed`)
  let streak = 0
  while (streak < 50) {
    assert.ok(Date.now() - freedAt < 30_000, 'accepting again within 30 s of the space coming back')
    streak = (await request('after', streak % 5 === 0)) === 202 ? streak + 1 : 0
  }
  t.diagnostic(`accepting again ${Date.now() - freedAt} ms after the ballast was removed`)

  // 6. A graceful stop drains the WAL into DuckDB; the log and the dead letters are intact.
  server.kill('SIGTERM')
  assert.deepEqual(await server.exited(), { code: 0, signal: null }, `graceful exit; see ${server.logFile}`)
  const after = await walVerify(dataDir)
  assert.equal(after.ok, true, JSON.stringify(after))
  assert.deepEqual(after.warnings, [], 'no torn tail after a graceful stop')
  const deadLetters = await deadLetterLines(join(dataDir, 'deadletter'))
  assert.ok(deadLetters.parsed > 0, 'the invalid events were dead-lettered')
  assert.deepEqual(deadLetters.broken, [], 'no half-written dead-letter line (failed appends are cut back)')

  const stored = await storedEventCounts(duckdbPath)
  const twice = [...stored].filter(([, n]) => n > 1)
  assert.deepEqual(twice.slice(0, 10), [], 'no event stored twice')
  const missing = [...acked].filter((id) => !stored.has(id))
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} acked events missing from DuckDB`)
  const unknown = [...stored.keys()].filter((id) => !sent.has(id))
  assert.deepEqual(unknown.slice(0, 10), [], 'only events that were sent are stored')
  t.diagnostic(
    `${fmt(statuses)} in all; ${acked.size} acked, ${stored.size} stored, ${deadLetters.parsed} dead letters`,
  )
})

/** Writes zeros until the filesystem says ENOSPC; resolves with the bytes written. */
async function fill(path: string): Promise<number> {
  const file = await open(path, 'w')
  let total = 0
  try {
    for (const size of [1024 * 1024, 4096, 1]) {
      const chunk = Buffer.alloc(size)
      for (;;) {
        try {
          const { bytesWritten } = await file.write(chunk)
          total += bytesWritten
          if (bytesWritten < size) break
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error
          break
        }
      }
    }
  } finally {
    await file.close()
  }
  return total
}

async function deadLetterLines(dir: string): Promise<{ parsed: number; broken: string[] }> {
  let parsed = 0
  const broken: string[] = []
  for (const name of (await readdir(dir)).filter((n) => n.endsWith('.jsonl'))) {
    for (const line of (await readFile(join(dir, name), 'utf8')).split('\n')) {
      if (line === '') continue
      try {
        JSON.parse(line)
        parsed++
      } catch {
        broken.push(`${name}: ${line.slice(0, 80)}`)
      }
    }
  }
  return { parsed, broken }
}

function fmt(statuses: Map<number, number>): string {
  return [...statuses]
    .sort(([a], [b]) => a - b)
    .map(([status, n]) => `${status}×${n}`)
    .join(' ')
}

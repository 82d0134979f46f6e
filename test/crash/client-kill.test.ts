/**
 * The durable client when the app itself dies: a child process (client-child.ts) tracks 10,000
 * events through a FileQueue and is SIGKILLed twice — first while the server is not even up, so
 * thousands of events exist only in the queue file, then while it is delivering them. Each
 * restart replays the file. At the end every event whose track() had resolved is in DuckDB
 * exactly once (replays of events already delivered are dropped by the server as duplicates of
 * their event_id), nothing is stored twice, and the queue file is empty.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { test } from 'node:test'
import { DuckDBInstance } from '@duckdb/node-api'
import { freePort } from '../helpers/clickhouse.ts'
import { type ServerProcess, startServerProcess } from '../helpers/server-process.ts'
import { storedEventCounts } from '../helpers/store-check.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'
import { eventually } from '../helpers/wait.ts'

const EVENTS = 10_000
const CHILD = new URL('./client-child.ts', import.meta.url).pathname

interface Run {
  readonly proc: ChildProcess
  /** seq → event_id of every event whose track() resolved. */
  readonly acked: Map<number, string>
  recovered: number
  readonly lines: string[]
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

function runChild(env: Record<string, string>, acked: Map<number, string>): Run {
  const proc = spawn(process.execPath, [CHILD], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const run: Run = {
    proc,
    acked,
    recovered: -1,
    lines: [],
    exited: once(proc, 'exit').then(([code, signal]) => ({ code, signal })),
  }
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const [word, seq, id] = line.split(' ')
    if (word === 'ok') acked.set(Number(seq), id)
    else if (word === 'recovered') run.recovered = Number(seq)
    else run.lines.push(line)
  })
  proc.stderr!.on('data', (chunk: Buffer) => run.lines.push(chunk.toString()))
  return run
}

async function storedSeqs(path: string): Promise<Map<number, number>> {
  const db = await DuckDBInstance.create(path)
  const conn = await db.connect()
  try {
    const rows = (
      await conn.runAndReadAll(
        "SELECT user_id, count(*)::INTEGER AS n FROM events WHERE event_name = 'client_durable' GROUP BY user_id",
      )
    ).getRowObjects()
    return new Map(rows.map((r) => [Number(String(r['user_id']).slice(4)), Number(r['n'])]))
  } finally {
    conn.closeSync()
    db.closeSync()
  }
}

test(`a durable client SIGKILLed twice loses none of ${EVENTS} tracked events and stores none twice`, {
  timeout: 180_000,
}, async (t) => {
  const dataDir = await makeTempDir('spillway-client-durable-')
  const queueDir = join(dataDir, 'client-queue')
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  let server: ServerProcess | undefined
  const children: ChildProcess[] = []
  t.after(async () => {
    for (const child of children) child.kill('SIGKILL')
    server?.kill('SIGKILL')
    await removeTempDir(dataDir)
  })
  const acked = new Map<number, string>()
  const next = () => (acked.size === 0 ? 0 : Math.max(...acked.keys()) + 1)
  const child = (gen: number) => {
    const run = runChild(
      {
        SPW_URL: url,
        SPW_QUEUE_DIR: queueDir,
        SPW_FROM: String(next()),
        SPW_TO: String(EVENTS),
        SPW_GEN: String(gen),
      },
      acked,
    )
    children.push(run.proc)
    return run
  }
  const killAt = async (run: Run, count: number) => {
    await eventually(
      async () => acked.size >= count,
      `${count} events tracked; child said ${run.lines.join(' | ')}`,
      60_000,
    )
    run.proc.kill('SIGKILL')
    assert.equal((await run.exited).signal, 'SIGKILL')
  }

  // 1. No server yet: everything tracked waits in the queue file.
  const first = child(1)
  await killAt(first, 3000)

  // 2. The server is up; the second run replays the file and is killed while delivering.
  server = await startServerProcess(dataDir, { HTTP_PORT: String(port) }, ['--workers', '1'])
  const second = child(2)
  await eventually(async () => second.recovered >= 0, 'the second run opened its queue', 30_000)
  assert.ok(second.recovered >= 3000, `the second run recovered ${second.recovered} events`)
  await killAt(second, acked.size + 2000)

  // 3. The last run replays what is left, tracks the rest and closes once all is delivered.
  const third = child(3)
  const exit = await third.exited
  assert.deepEqual(exit, { code: 0, signal: null }, third.lines.join('\n'))
  assert.ok(
    third.lines.some((l) => l.startsWith('closed ')),
    third.lines.join('\n'),
  )
  assert.deepEqual(
    third.lines.filter((l) => l.startsWith('error')),
    [],
  )
  assert.equal(
    (await stat(join(queueDir, 'events.log'))).size,
    0,
    'the queue file is empty once all is delivered',
  )

  server.kill('SIGTERM')
  assert.deepEqual(await server.exited(), { code: 0, signal: null }, `graceful exit; see ${server.logFile}`)
  server = undefined

  const stored = await storedEventCounts(join(dataDir, 'spillway.duckdb'))
  const twice = [...stored].filter(([, n]) => n > 1)
  assert.deepEqual(twice.slice(0, 10), [], 'no event_id stored twice')
  const missing = [...acked].filter(([, id]) => !stored.has(id))
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} acked events missing from DuckDB`)
  // An event whose track() resolved just before a kill, but that the child had not reported yet,
  // is stored too; the next run tracked its sequence number again, as an app would.
  const seqs = await storedSeqs(join(dataDir, 'spillway.duckdb'))
  assert.equal(seqs.size, EVENTS, 'every sequence number is stored')
  const extra = [...seqs.values()].reduce((a, n) => a + n, 0) - EVENTS
  assert.ok(
    extra <= 2 * 50,
    `${extra} events were tracked again after a kill (at most one group of 50 per kill)`,
  )
  t.diagnostic(`recovered by run 2: ${second.recovered}; acked ${acked.size}; stored ${stored.size}`)
  t.diagnostic(`run 3: ${third.lines.find((l) => l.startsWith('closed '))}`)
})

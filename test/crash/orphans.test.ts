/**
 * Nothing outlives what started it: `npm start` killed (npm forwards SIGTERM to the server it execs),
 * a parent killed with SIGKILL (the server is reparented), and a cluster primary killed with SIGKILL. Real
 * processes; the server is a grandchild here, so it is watched by PID and through its log.
 *
 * The server notices its parent is gone within a second and stops as on SIGTERM (drain, WAL
 * closed, lock released); a worker stops when its channel to the primary closes.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { NODE, ROOT, startServerProcess } from '../helpers/server-process.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'
import { sleep } from '../helpers/wait.ts'

const MAIN = join(ROOT, 'src/cli/main.ts')

/** Retries `check` (which throws until it holds) every 100 ms for up to `timeoutMs`. */
async function within(timeoutMs: number, check: () => unknown): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      await check()
      return
    } catch (error) {
      if (Date.now() > deadline) throw error
      await sleep(100)
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function logEntries(file: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(file, 'utf8').catch(() => '')
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>
      } catch {
        return {}
      }
    })
}

/** Starts `argv` with stdout/stderr to a file in dataDir (the server inherits them); the server's pid from its log. */
async function startUnder(t: TestContext, dataDir: string, argv: string[]) {
  const log = join(dataDir, 'out.log')
  const { openSync } = await import('node:fs')
  const fd = openSync(log, 'a')
  const parent: ChildProcess = spawn(argv[0], argv.slice(1), {
    cwd: ROOT,
    env: {
      ...process.env,
      PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env['PATH']}`,
      HTTP_PORT: '0',
      METRICS_PORT: '0',
      SPILLWAY_HOST: '127.0.0.1',
      SPILLWAY_DATA_DIR: dataDir,
      SPILLWAY_WORKERS: '1',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', fd, fd],
  })
  let serverPid = 0
  t.after(() => {
    if (alive(serverPid)) process.kill(serverPid, 'SIGKILL')
    if (parent.exitCode === null && parent.signalCode === null) parent.kill('SIGKILL')
  })
  await within(60_000, async () => {
    const started = (await logEntries(log)).find((e) => e['msg'] === 'ServerStarted')
    assert.ok(started, `the server started; see ${log}`)
    serverPid = started['pid'] as number
  })
  assert.notEqual(serverPid, parent.pid, 'the server runs under the parent, not as it')
  return { parent, serverPid, log }
}

/** The server stops by itself, as on SIGTERM, and leaves the data directory to the next start. */
async function assertStopsGracefully(serverPid: number, log: string, dataDir: string, why: string) {
  await within(30_000, () => assert.ok(!alive(serverPid), `server ${serverPid} still runs; see ${log}`))
  const msgs = (await logEntries(log)).map((e) => e['msg'])
  assert.ok(msgs.includes(why), `it said why it stopped (${why}); see ${log}`)
  assert.ok(msgs.includes('ServerStopped'), `it drained and stopped; see ${log}`)
  // The lock was released: a new server starts on the same data directory.
  const next = await startServerProcess(dataDir, { SPILLWAY_WORKERS: '1' })
  next.kill('SIGTERM')
  assert.equal((await next.exited()).code, 0)
}

test('npm start killed with SIGTERM: the server does not stay behind as an orphan', {
  timeout: 120_000,
}, async (t) => {
  const dataDir = await makeTempDir('spillway-orphan-npm-')
  t.after(() => removeTempDir(dataDir))
  const { parent, serverPid, log } = await startUnder(t, dataDir, ['npm', 'start'])
  parent.kill('SIGTERM')
  await once(parent, 'exit')
  // `npm start` execs node (package.json), so npm's forwarded SIGTERM reaches the server itself.
  await assertStopsGracefully(serverPid, log, dataDir, 'ServerShutdownRequested')
})

test('a parent killed with SIGKILL: the server notices and stops as on SIGTERM', {
  timeout: 120_000,
}, async (t) => {
  const dataDir = await makeTempDir('spillway-orphan-kill9-')
  t.after(() => removeTempDir(dataDir))
  // A parent that starts the server and lives on, like a supervisor or a shell script.
  const script = `require('node:child_process').spawn(process.execPath, [${JSON.stringify(MAIN)}, 'serve'], { stdio: 'inherit' }); setInterval(() => {}, 1e6)`
  const { parent, serverPid, log } = await startUnder(t, dataDir, [NODE, '-e', script])
  parent.kill('SIGKILL')
  await once(parent, 'exit')
  await assertStopsGracefully(serverPid, log, dataDir, 'ServerParentGone')
})

test('serve --workers 2: workers stop when the primary is killed with SIGKILL', {
  timeout: 120_000,
}, async (t) => {
  const dataDir = await makeTempDir('spillway-orphan-workers-')
  t.after(() => removeTempDir(dataDir))
  const server = await startServerProcess(dataDir, { SPILLWAY_WORKERS: '2' })
  t.after(() => server.kill('SIGKILL'))
  let workers: number[] = []
  await within(30_000, async () => {
    workers = (await logEntries(server.logFile))
      .filter((e) => e['msg'] === 'WorkerStarted')
      .map((e) => e['workerPid'] as number)
    assert.equal(workers.length, 2)
  })
  t.after(() => {
    for (const pid of workers) if (alive(pid)) process.kill(pid, 'SIGKILL')
  })
  server.kill('SIGKILL')
  await server.exited()
  await within(30_000, () => assert.deepEqual(workers.filter(alive), [], 'no worker outlives its primary'))
})

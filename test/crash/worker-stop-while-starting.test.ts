/**
 * `serve --workers 2` stopped (SIGTERM) while a restarted worker is still starting. The primary
 * tells each worker to shut down; a worker that has not finished its start yet must still obey,
 * not drop the message and leave the primary waiting `shutdownTimeoutMs` to SIGKILL it. The new
 * worker is frozen (SIGSTOP) right after it is forked, so the message surely arrives mid-start.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { startServerProcess } from '../helpers/server-process.ts'
import { eventually, sleep } from '../helpers/wait.ts'

/** Far above a worker's start (≈1 s), so reaching it means the message was lost. */
const SHUTDOWN_TIMEOUT_MS = 20_000

async function childrenOf(pid: number): Promise<number[]> {
  const children: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8')
      // pid (comm) state ppid …; comm may hold spaces, so split after its closing parenthesis.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) children.push(Number(entry))
    } catch {}
  }
  return children
}

test('a worker told to stop while it is still starting stops; the primary does not wait it out', {
  timeout: 120_000,
}, async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'spillway-stop-starting-'))
  t.after(async () => {
    if (!process.env['KEEP_DATA']) await rm(dataDir, { recursive: true, force: true })
  })
  const server = await startServerProcess(dataDir, {
    SPILLWAY_WORKERS: '2',
    SPILLWAY_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
  })
  t.after(() => server.kill('SIGKILL'))
  const primary = server.proc.pid!
  const before = await childrenOf(primary)
  assert.equal(before.length, 2, 'two workers')

  process.kill(before[0], 'SIGKILL')
  const fresh = await eventually(
    async () => (await childrenOf(primary)).find((pid) => !before.includes(pid)),
    'the primary to fork a new worker',
    10_000,
  )
  process.kill(fresh, 'SIGSTOP')
  const log = await readFile(server.logFile, 'utf8')
  assert.equal(log.split('"WorkerStarted"').length - 1, 2, 'the new worker had not listened yet')

  const stopAsked = Date.now()
  server.kill('SIGTERM')
  await sleep(500) // the primary's shutdown message waits in the frozen worker's channel
  process.kill(fresh, 'SIGCONT')
  assert.deepEqual(await server.exited(), { code: 0, signal: null }, `graceful exit; see ${server.logFile}`)
  const took = Date.now() - stopAsked
  t.diagnostic(`the server stopped ${took} ms after SIGTERM`)
  const after = await readFile(server.logFile, 'utf8')
  assert.ok(!after.includes('"WorkerStopTimedOut"'), `no worker had to be killed; see ${server.logFile}`)
  assert.ok(took < SHUTDOWN_TIMEOUT_MS, `stopped in ${took} ms`)
})

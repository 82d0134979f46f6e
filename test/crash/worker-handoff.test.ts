/**
 * `serve --workers 2`: a connection the primary handed to a worker that dies before it took it.
 * node:cluster's round-robin hands each new connection to a worker and keeps its own copy of the
 * socket until the worker answers "accepted"; a worker killed in between never answers, and the
 * client waited forever (no answer, no close) — the hang the worker-restart test once showed.
 * Here the worker is frozen (SIGSTOP) so a connection is surely in flight to it, then killed.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { startServerProcess } from '../helpers/server-process.ts'
import { eventually, sleep } from '../helpers/wait.ts'

/** A hang is forever; this only bounds how long the test waits to call it one. */
const HUNG_AFTER_MS = 20_000

async function workerPids(logFile: string, shard: number): Promise<number[]> {
  const pids: number[] = []
  for (const line of (await readFile(logFile, 'utf8')).split('\n')) {
    if (!line.includes('"WorkerStarted"')) continue
    const entry = JSON.parse(line) as { shard: number; workerPid: number }
    if (entry.shard === shard) pids.push(entry.workerPid)
  }
  return pids
}

/** GET on a new connection: the status, the socket error's code, or 'hung'. */
function fresh(url: string): Promise<string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      resolve('hung')
      req.destroy()
    }, HUNG_AFTER_MS)
    const req = request(url, { agent: false }, (res) => {
      res.resume()
      res.on('end', () => {
        clearTimeout(timer)
        resolve(String(res.statusCode))
      })
    })
    req.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      resolve(error.code ?? error.message)
    })
    req.end()
  })
}

test('a connection handed to a worker that dies before taking it is closed, never left hanging', {
  timeout: 120_000,
}, async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'spillway-handoff-'))
  t.after(async () => {
    if (!process.env['KEEP_DATA']) await rm(dataDir, { recursive: true, force: true })
  })
  const server = await startServerProcess(dataDir, { SPILLWAY_WORKERS: '2' })
  t.after(() => server.kill('SIGKILL'))
  const [pid] = await workerPids(server.logFile, 0)
  assert.ok(pid, `shard 0 has a worker; see ${server.logFile}`)

  process.kill(pid, 'SIGSTOP')
  // Round-robin: one of these is handed to the frozen worker (and waits there), the rest to the other.
  const answers = Array.from({ length: 8 }, () => fresh(`${server.url}/health`))
  await sleep(1000)
  process.kill(pid, 'SIGKILL')
  await eventually(
    async () => (await workerPids(server.logFile, 0)).length > 1,
    'the primary to restart the worker of shard 0',
    30_000,
  )
  const settled = await Promise.all(answers)
  t.diagnostic(`answers: ${settled.join(', ')}`)
  assert.ok(!settled.includes('hung'), `no connection is left hanging: ${settled.join(', ')}`)
  assert.ok(settled.filter((s) => s === '200').length >= 6, 'the other worker answered its share')

  server.kill('SIGTERM')
  assert.deepEqual(await server.exited(), { code: 0, signal: null }, `graceful exit; see ${server.logFile}`)
})

/**
 * `spillway load` end to end, as a user runs it: the CLI against a real `spillway serve` (WAL +
 * DuckDB). What it reports as accepted must be what the server stored; thresholds, reports and
 * bad input set the documented exit codes.
 */
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import type { LoadResult } from '../../src/loadgen/types.ts'
import { NODE, ROOT, startServerProcess } from '../helpers/server-process.ts'
import { storedEventCounts } from '../helpers/store-check.ts'

const run = promisify(execFile)

/** Runs `spillway load …`; its exit code, stdout and stderr (a non-zero exit does not throw). */
async function load(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(NODE, [join(ROOT, 'src/cli/main.ts'), 'load', ...args], {
      maxBuffer: 64 << 20,
      timeout: 120_000,
    })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

test('open and closed runs against a real server: what it reports accepted is what was stored', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'spillway-load-'))
  t.after(() => rm(dataDir, { recursive: true, force: true }))
  const server = await startServerProcess(dataDir, { SPILLWAY_WORKERS: '1' })
  let stopped = false
  t.after(() => {
    if (!stopped) server.kill('SIGKILL')
  })

  // Open model: a 0 → 400/s ramp then 400/s, single events, 10% duplicates, with a JSON result and
  // an HTML report.
  const out = join(dataDir, 'open.json')
  const html = join(dataDir, 'open.html')
  const open = await load([
    '--url',
    server.url,
    '--stages',
    '1s:400,1s:400',
    '--duplicates',
    '10%',
    '--threshold',
    'errors<1%',
    '--threshold',
    'p99<10s',
    '--out',
    out,
    '--html',
    html,
    '--seed',
    '11',
  ]) // prettier-ignore
  assert.equal(open.code, 0, open.stderr + open.stdout)
  assert.match(open.stdout, /thresholds {2}all passed/)
  assert.match(open.stdout, /status {6}202 600 {2}400 0/)
  const result = JSON.parse(await readFile(out, 'utf8')) as LoadResult
  assert.equal(result.plan.model, 'open')
  assert.equal(result.requests.scheduled, 600)
  assert.equal(result.requests.summary['202'], 600)
  assert.ok(
    result.events.duplicates > 20 && result.events.duplicates < 110,
    `${result.events.duplicates} duplicates`,
  )
  assert.equal(result.thresholds.length, 2)
  assert.ok(result.timeline.length >= 2)
  const report = await readFile(html, 'utf8')
  assert.match(report, /^<!doctype html>/i)
  assert.equal(report.match(/<svg/g)?.length, 3)

  // Closed model: NDJSON batches of 50, gzip, 4 connections, 40 requests.
  const closed = await load([
    '--url',
    server.url,
    '--connections',
    '4',
    '--requests',
    '40',
    '--batch',
    '50',
    '--gzip',
    '--json',
    '--quiet',
  ])
  assert.equal(closed.code, 0, closed.stderr)
  const batch = JSON.parse(closed.stdout) as LoadResult
  assert.equal(batch.plan.model, 'closed')
  assert.equal(batch.requests.summary['202'], 40)
  assert.equal(batch.events.sent, 2000)
  assert.equal(batch.throughput.eventsPerSec > 0, true)

  // Every accepted event is stored once: the distinct events of both runs.
  server.kill('SIGTERM')
  assert.equal((await server.exited()).code, 0)
  stopped = true
  const stored = await storedEventCounts(join(dataDir, 'spillway.duckdb'))
  assert.equal(stored.size, 600 - result.events.duplicates + 2000 - batch.events.duplicates)
  assert.deepEqual(
    [...stored.values()].filter((n) => n !== 1),
    [],
  )
})

test('a threshold that fails exits 99; a server that is not there exits 1; a bad flag exits 2 naming it', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'spillway-load-'))
  t.after(() => rm(dataDir, { recursive: true, force: true }))
  const server = await startServerProcess(dataDir, { SPILLWAY_WORKERS: '1' })
  t.after(() => server.kill('SIGKILL'))

  const failing = await load([
    '--url',
    server.url,
    '--rate',
    '100',
    '--duration',
    '1s',
    '--threshold',
    'p50<1us,rate>=1',
  ])
  assert.equal(failing.code, 99, failing.stderr)
  assert.match(failing.stdout, /thresholds {2}FAILED/)
  assert.match(failing.stdout, /FAIL {2}p50<1us/)
  assert.match(failing.stdout, /pass {2}rate>=1 /)

  // The producer tool's flags: --rate per worker, --burst in all.
  const producer = await load([
    '--url',
    server.url,
    '--rate',
    '200',
    '--burst',
    '100',
    '--workers',
    '2',
    '--json',
    '--quiet',
  ])
  assert.equal(producer.code, 0, producer.stderr)
  const flood = JSON.parse(producer.stdout) as LoadResult
  assert.equal(flood.plan.preset, 'producer')
  assert.equal(flood.requests.summary['202'], 100)

  // Ctrl-C: the schedule stops, the answers in flight are awaited, the summary says so, exit 130.
  const child = spawn(NODE, [
    join(ROOT, 'src/cli/main.ts'),
    'load',
    '--url',
    server.url,
    '--rate',
    '200',
    '--duration',
    '60s',
  ])
  let stdout = ''
  child.stdout.on('data', (d) => {
    stdout += d
  })
  child.stderr.once('data', () => setTimeout(() => child.kill('SIGINT'), 1000))
  const [code] = await once(child, 'exit')
  assert.equal(code, 130)
  assert.match(stdout, /stopped early \(Ctrl-C\)/)
  assert.match(stdout, /status {6}202 \d+ {2}400 0/)

  server.kill('SIGTERM')
  await server.exited()
  const gone = await load(['--url', server.url, '--rate', '50', '--duration', '500ms', '--quiet'])
  assert.equal(gone.code, 1, gone.stdout)
  assert.match(gone.stderr, /answered no request/)
  assert.match(gone.stdout, /connection errors 25/)

  const bad = await load(['--url', server.url, '--rate', 'fast'])
  assert.equal(bad.code, 2)
  assert.match(bad.stderr, /--rate must be a number > 0, got "fast"/)
  const badThreshold = await load(['--url', server.url, '--rate', '5', '--threshold', 'p95 < 60 parsecs'])
  assert.equal(badThreshold.code, 2)
  assert.match(badThreshold.stderr, /threshold "p95 < 60 parsecs"/)
})

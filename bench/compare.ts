/**
 * Issue 14's goals in one run, each against a bare node:http server measured in the same run
 * (bench/baseline-server.ts), with PASS/FAIL and the README table regenerated:
 *   1. closed loop (wrk -t1 -c64, one event per request): durable default ≥ 0.85×, buffered ≥ 0.95×
 *   2. open model at 15k req/s (spillway load): p95 and p99 ≤ 1.5× the bare server's; no errors;
 *      every 202 stored
 *   3. overload: twice the closed-loop maximum offered for 20 s, then half of it: goodput ≥ 0.9× the
 *      maximum, 202 p99 ≤ 100 ms, 503 p99 ≤ 5 ms, every 202 stored, back to normal within 1 s
 *   4. NDJSON batches of 1000, durable: ≥ 300k events/s, DuckDB backlog drained within 2 s
 * Spillway runs with its defaults (workers included) unless a goal says otherwise.
 *   npm run bench:compare [-- --seconds 10 --goals 1,2,3,4 --no-readme]
 */
import { execFile, spawn } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { parseArgs } from '../src/cli/args.ts'
import type { LoadResult } from '../src/loadgen/types.ts'
import { type ServerProcess, startServerProcess } from '../test/helpers/server-process.ts'
import { storedEventCounts } from '../test/helpers/store-check.ts'
import { BENCH_DIR, ensureWrk, machine, startBaseline, wrk } from './lib.ts'
import { loadAndDrain } from './ndjson-batch.ts'

const run = promisify(execFile)
const { flags } = parseArgs(process.argv.slice(2))
const SECONDS = Number(flags['seconds'] ?? 10)
const OPEN_SECONDS = Number(flags['open-seconds'] ?? 20)
const GOALS = new Set(String(flags['goals'] ?? '1,2,3,4').split(','))
const README = join(BENCH_DIR, '../README.md')

interface Row {
  readonly goal: string
  readonly measure: string
  readonly bare: string
  readonly spillway: string
  readonly target: string
  readonly pass: boolean
}
const rows: Row[] = []
const notes: string[] = []

function row(goal: string, measure: string, bare: string, spillway: string, target: string, pass: boolean) {
  rows.push({ goal, measure, bare, spillway, target, pass })
  process.stderr.write(
    `${pass ? 'PASS' : 'FAIL'}  ${goal} ${measure}: bare ${bare}, spillway ${spillway} (${target})\n`,
  )
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
const ms = (n: number) => `${n < 10 ? n.toFixed(1) : Math.round(n)} ms`

interface Spillway extends ServerProcess {
  readonly dataDir: string
}

async function startSpillway(env: Record<string, string> = {}): Promise<Spillway> {
  const dataDir = await mkdtemp(join(process.env['BENCH_TMP'] ?? tmpdir(), 'spillway-compare-'))
  const server = await startServerProcess(dataDir, env)
  return Object.assign(server, { dataDir })
}

/** Stops the server gracefully and counts what its DuckDB file holds: rows, and ids stored twice. */
async function stopAndCount(server: Spillway): Promise<{ rows: number; twice: number }> {
  server.kill('SIGTERM')
  const { code } = await server.exited()
  if (code !== 0) throw new Error(`server exited ${code}; see ${server.logFile}`)
  const counts = await storedEventCounts(join(server.dataDir, 'spillway.duckdb'))
  let total = 0
  let twice = 0
  for (const n of counts.values()) {
    total += n
    if (n > 1) twice++
  }
  await rm(server.dataDir, { recursive: true, force: true })
  return { rows: total, twice }
}

/** `spillway load` in its own process (so the generator's CPU is its own), its JSON result. */
async function load(url: string, args: string[]): Promise<LoadResult> {
  const out = join(tmpdir(), `compare-load-${process.pid}-${Date.now()}.json`)
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(BENCH_DIR, '../src/cli/main.ts'), 'load', '--url', url, '--quiet', '--out', out, ...args],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    )
    child.once('exit', (code) =>
      code === 0 || code === 99 ? resolve() : reject(new Error(`spillway load exited ${code}`)),
    )
  })
  const result = JSON.parse(readFileSync(out, 'utf8')) as LoadResult
  await rm(out, { force: true })
  return result
}

async function closedLoop(url: string): Promise<{ rps: number; p99: number; non2xx: number }> {
  await wrk(`${url}/events`, 'single-event.lua', { seconds: 2, connections: 64 }) // warm-up
  const r = await wrk(`${url}/events`, 'single-event.lua', { seconds: SECONDS, connections: 64 })
  return { rps: r.requestsPerSec, p99: r.latencyMs.p99, non2xx: r.non2xx }
}

const started = new Date()
const load1 = loadavg()[0]
process.stderr.write(`bench:compare on ${machine()}, load average ${load1.toFixed(2)}\n`)
if (load1 > 1) notes.push(`load average was ${load1.toFixed(2)} at the start: the machine was not idle.`)
await ensureWrk()

// ---- 1. closed loop ----------------------------------------------------------------------------
const baseline = await startBaseline()
const bareClosed = await closedLoop(baseline.url)
let spillwayMax = 0
if (GOALS.has('1') || GOALS.has('3')) {
  const durable = await startSpillway()
  const d = await closedLoop(durable.url)
  const stored = await stopAndCount(durable)
  spillwayMax = d.rps - d.non2xx / SECONDS
  row(
    '1',
    'closed loop req/s, durable (defaults)',
    fmt(bareClosed.rps),
    `${fmt(d.rps)} (${(d.rps / bareClosed.rps).toFixed(2)}×)`,
    '≥ 0.85×',
    d.rps / bareClosed.rps >= 0.85 && d.non2xx === 0,
  )
  if (d.non2xx > 0) notes.push(`goal 1 durable: ${fmt(d.non2xx)} answers were not 2xx.`)
  if (stored.twice > 0) notes.push(`goal 1 durable: ${stored.twice} ids stored twice.`)
  if (GOALS.has('1')) {
    const buffered = await startSpillway({ SPILLWAY_ACK: 'buffered' })
    const b = await closedLoop(buffered.url)
    await stopAndCount(buffered)
    row(
      '1',
      'closed loop req/s, --ack buffered',
      fmt(bareClosed.rps),
      `${fmt(b.rps)} (${(b.rps / bareClosed.rps).toFixed(2)}×)`,
      '≥ 0.95×',
      b.rps / bareClosed.rps >= 0.95 && b.non2xx === 0,
    )
    const one = await startSpillway({ SPILLWAY_WORKERS: '1' })
    const w1 = await closedLoop(one.url)
    await stopAndCount(one)
    row(
      '5',
      'closed loop req/s, default workers vs --workers 1',
      `${fmt(w1.rps)} (workers 1)`,
      `${fmt(d.rps)} (default)`,
      'default ≥ workers 1 (within 5 % noise)',
      d.rps >= w1.rps * 0.95,
    )
  }
}

// ---- 2. open model at 15k/s --------------------------------------------------------------------
if (GOALS.has('2')) {
  const args = ['--rate', '15000', '--duration', `${OPEN_SECONDS}s`]
  const bare = await load(baseline.url, args)
  const server = await startSpillway()
  const s = await load(server.url, args)
  const stored = await stopAndCount(server)
  const acked = s.requests.byStatus['202'] ?? 0
  const p95 = s.latencyMs.p95 / bare.latencyMs.p95
  const p99 = s.latencyMs.p99 / bare.latencyMs.p99
  row(
    '2',
    '15k req/s open: p95',
    ms(bare.latencyMs.p95),
    `${ms(s.latencyMs.p95)} (${p95.toFixed(2)}×)`,
    '≤ 1.5×',
    p95 <= 1.5,
  )
  row(
    '2',
    '15k req/s open: p99',
    ms(bare.latencyMs.p99),
    `${ms(s.latencyMs.p99)} (${p99.toFixed(2)}×)`,
    '≤ 1.5×',
    p99 <= 1.5,
  )
  row(
    '2',
    '15k req/s open: errors; 202s stored',
    `${(bare.requests.errorRate * 100).toFixed(2)} %`,
    `${(s.requests.errorRate * 100).toFixed(2)} %; ${fmt(acked)} acked, ${fmt(stored.rows)} stored`,
    'no errors; every 202 stored once',
    s.requests.errorRate === 0 && stored.rows === acked && stored.twice === 0,
  )
  notes.push(
    `goal 2: the generator used ${Math.round(s.generator.cpuPercent)} % of a core against Spillway, ${Math.round(bare.generator.cpuPercent)} % against the bare server.`,
  )
}

// ---- 3. overload -------------------------------------------------------------------------------
if (GOALS.has('3')) {
  const max = spillwayMax || bareClosed.rps / 2
  const spike = Math.round(2 * max)
  const after = Math.round(0.5 * max)
  const spikeSeconds = OPEN_SECONDS
  const args = [
    '--start-rate',
    String(spike),
    '--stages',
    `${spikeSeconds}s:${spike},0.1s:${after},5s:${after}`,
    '--connections',
    '1000',
  ]
  const server = await startSpillway()
  const s = await load(server.url, args)
  const stored = await stopAndCount(server)
  const acked = s.requests.byStatus['202'] ?? 0
  const inSpike = s.timeline.filter((p) => p.second > 2 && p.second <= spikeSeconds)
  const goodput = inSpike.reduce((sum, p) => sum + p.ok, 0) / Math.max(1, inSpike.length)
  const ok = s.latencyMsByOutcome?.ok
  const refused = s.latencyMsByOutcome?.refused
  const other = s.requests.completed - acked - (s.requests.byStatus['503'] ?? 0)
  row(
    '3',
    `overload ${fmt(spike)} req/s: goodput (202/s)`,
    '—',
    `${fmt(goodput)} (${(goodput / max).toFixed(2)}× of ${fmt(max)})`,
    '≥ 0.9× closed-loop max',
    goodput >= 0.9 * max,
  )
  row('3', 'overload: p99 of 202s', '—', ms(ok?.p99 ?? 0), '≤ 100 ms', (ok?.p99 ?? Infinity) <= 100)
  row(
    '3',
    'overload: p99 of 503s (with Retry-After)',
    '—',
    `${ms(refused?.p99 ?? 0)} (${fmt(s.requests.byStatus['503'] ?? 0)} refused)`,
    '≤ 5 ms, and the surplus refused',
    (s.requests.byStatus['503'] ?? 0) > 0 && (refused?.p99 ?? Infinity) <= 5,
  )
  const recovered = s.timeline.filter((p) => p.second > spikeSeconds + 1)
  const recoveredOk = recovered.every((p) => p.errors === 0 && (p.p99Ms ?? 0) <= 100)
  row(
    '3',
    'overload: nothing lost; normal 1 s after the spike',
    '—',
    `${fmt(acked)} acked, ${fmt(stored.rows)} stored, ${fmt(other)} other answers; after: ${recoveredOk ? 'no errors, p99 ≤ 100 ms' : 'NOT normal'}`,
    'every 202 stored once; no errors after',
    stored.rows === acked && stored.twice === 0 && recoveredOk,
  )
  notes.push(
    `goal 3: the generator used ${Math.round(s.generator.cpuPercent)} % of a core; schedule lag p99 ${ms(s.generator.scheduleLagP99Ms)}.`,
  )
}
await baseline.stop()

// ---- 4. batches --------------------------------------------------------------------------------
if (GOALS.has('4')) {
  const server = await startSpillway()
  const r = await loadAndDrain({
    url: server.url,
    lua: 'ndjson-batch.lua',
    seconds: SECONDS,
    connections: 8,
    stored: async () => {
      const answer = await fetch(`${server.url}/metrics?event_name=bench_batch`)
      return Number(((await answer.json()) as { total_events: number }).total_events)
    },
  })
  await stopAndCount(server)
  row(
    '4',
    'NDJSON batches of 1000: events/s',
    '—',
    fmt(r.eventsPerSec),
    '≥ 300,000',
    r.eventsPerSec >= 300_000 && r.non2xx === 0,
  )
  row(
    '4',
    'batches: DuckDB backlog drained after the load',
    '—',
    `${r.drainSecondsAfterLoad} s (${fmt(r.deliveryRowsPerSec)} rows/s)`,
    '≤ 2 s',
    // wrk counts only the answers it read: batches in flight when it stopped (at most one per
    // connection) were taken and stored all the same.
    r.drainSecondsAfterLoad <= 2 && r.stored >= r.accepted && r.stored <= r.accepted + 8 * 1000,
  )
  if (r.stored !== r.accepted)
    notes.push(
      `goal 4: ${fmt(r.stored)} stored for ${fmt(r.accepted)} answered 202 (wrk does not count the batches in flight when it stops).`,
    )
}

// ---- report ------------------------------------------------------------------------------------
const { stdout: rev } = await run('git', ['rev-parse', '--short', 'HEAD'], { cwd: BENCH_DIR }).catch(() => ({
  stdout: '?',
}))
const table = [
  `Run ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, commit ${rev.trim()}, ${machine()}, generator on the same machine; \`npm run bench:compare\` (${SECONDS} s closed loops, ${OPEN_SECONDS} s open runs).`,
  '',
  '| goal | measure | bare node:http | Spillway | target | |',
  '|---|---|--:|--:|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.goal} | ${r.measure} | ${r.bare} | ${r.spillway} | ${r.target} | ${r.pass ? 'PASS' : 'FAIL'} |`,
  ),
  '',
  ...notes.map((n) => `- ${n}`),
].join('\n')
process.stdout.write(`${table}\n`)
mkdirSync(join(BENCH_DIR, 'results'), { recursive: true })
writeFileSync(
  join(BENCH_DIR, 'results/compare.json'),
  `${JSON.stringify({ date: started.toISOString(), rows, notes }, null, 2)}\n`,
)
if (flags['no-readme'] === undefined) {
  const text = readFileSync(README, 'utf8')
  const begin = '<!-- bench:compare begin -->'
  const end = '<!-- bench:compare end -->'
  const a = text.indexOf(begin)
  const b = text.indexOf(end)
  if (a >= 0 && b > a) writeFileSync(README, `${text.slice(0, a + begin.length)}\n${table}\n${text.slice(b)}`)
  else process.stderr.write('README has no bench:compare markers; table not written\n')
}
process.exit(rows.every((r) => r.pass) ? 0 : 1)

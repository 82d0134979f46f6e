/**
 * The benchmark suite of `spillway load` (issue 8), everything measured in the same run:
 * 1. Generator ceiling: "the generator must not be the bottleneck: ≥ 30k req/s on one core against
 *    a trivial server". bench/trivial-server.ts runs pinned to CPU 1; wrk (`-t1 -c64`, one event a
 *    request) and `spillway load --connections 64` (closed model) take turns pinned to CPU 0, after
 *    a 2 s warm-up each, two rounds each; best round of each, and the generator over wrk.
 * 2. Presets against targets: `constant-15k`, `ramp-spike` (scaled by `--time-scale`) and the
 *    producer tool's flood (`--rate 5000 --burst 50000 --workers 10`), each run by `spillway load`
 *    as a child process, unpinned (it shares the cores with the server, and with the store when
 *    there is one), against a bare node:http server, Spillway with its defaults (WAL + DuckDB), and
 *    Spillway whose only sink is ClickHouse, Kafka or NATS JetStream, each started for the run
 *    (scripts/*.sh) — or skipped, with the reason, when it cannot be. After the DuckDB target's runs
 *    the server is stopped gracefully and its rows counted: every event answered 202 must be there.
 * 3. The tables go to stdout and between the `bench:load` markers of README.md; the results and each
 *    run's HTML report to bench/results/ (load.json, load/<target>-<preset>.html).
 *   node bench/load.ts [--time-scale 0.25] [--targets baseline,duckdb,clickhouse,kafka,nats]
 *                      [--ceiling-seconds 10] [--no-readme]
 */
import { execFile, execFileSync, spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { parseArgs } from '../src/cli/args.ts'
import type { LoadResult } from '../src/loadgen/types.ts'
import type { ServerProcess } from '../test/helpers/server-process.ts'
import { storedEventCounts } from '../test/helpers/store-check.ts'
import {
  BENCH_DIR,
  ensureWrk,
  machine,
  round,
  startBaseline,
  startBenchServer,
  startSpillway,
  stopGracefully,
} from './lib.ts'

const run = promisify(execFile)
const ROOT = join(BENCH_DIR, '..')
const NODE = process.execPath
const MAIN = join(ROOT, 'src/cli/main.ts')
const RESULTS = join(BENCH_DIR, 'results')
const REPORTS = join(RESULTS, 'load')
const README = join(ROOT, 'README.md')
const CEILING_TARGET = 30_000
const CONNECTIONS = 64

// ---- child processes ----

interface ChildOutcome {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly seconds: number
}

/** Runs a command to its end, killed (and failed) after `timeoutMs`. */
function runChild(command: readonly string[], timeoutMs: number): Promise<ChildOutcome> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(command[0], command.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${command.join(' ')} did not finish within ${timeoutMs / 1000} s`))
    }, timeoutMs)
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({
        code,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        seconds: (performance.now() - started) / 1000,
      })
    })
  })
}

/**
 * The command under bash, which reports its children's CPU time with `times` on stderr's last
 * line: the CPU wrk used (it does not report it itself).
 */
async function runTimed(command: readonly string[], timeoutMs: number) {
  const wrapped = ['bash', '-c', '"$@"; code=$?; times >&2; exit $code', 'bash', ...command]
  const outcome = await runChild(wrapped, timeoutMs)
  const lines = outcome.stderr.trimEnd().split('\n')
  const m = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(lines.at(-1) ?? '')
  const cpuSeconds = m ? Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]) : Number.NaN
  return { ...outcome, stderr: lines.slice(0, -2).join('\n'), cpuSeconds }
}

const lastLine = (text: string) =>
  text
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '')
    .at(-1) ?? ''

// ---- services (ClickHouse, Kafka, NATS), stopped on the way out whatever happens ----

const runningServices = new Map<string, string>() // dir → script

async function startService(name: string, timeoutMs: number): Promise<{ dir: string; address: string }> {
  const script = join(ROOT, 'scripts', `${name}.sh`)
  const dir = await mkdtemp(join(process.env['BENCH_TMP'] ?? tmpdir(), `spillway-bench-load-${name}-`))
  runningServices.set(dir, script)
  const outcome = await runChild(['bash', script, 'start', dir], timeoutMs).catch((error: Error) => ({
    code: -1,
    stdout: '',
    stderr: error.message,
    seconds: 0,
  }))
  if (outcome.code !== 0) {
    await stopService(dir)
    throw new SkipTarget(
      `scripts/${name}.sh start failed: ${lastLine(outcome.stderr) || `exit ${outcome.code}`}`,
    )
  }
  return { dir, address: outcome.stdout.trim() }
}

async function stopService(dir: string): Promise<void> {
  const script = runningServices.get(dir)
  if (!script) return
  runningServices.delete(dir)
  await run('bash', [script, 'stop', dir], { timeout: 60_000 }).catch((error: Error) =>
    process.stderr.write(`warning: ${script} stop ${dir}: ${error.message}\n`),
  )
  await rm(dir, { recursive: true, force: true })
}

/** Ctrl-C: the services run detached from this process group; stop them before leaving. */
function stopServicesNow(): void {
  for (const [dir, script] of runningServices) {
    try {
      execFileSync('bash', [script, 'stop', dir], { timeout: 30_000, stdio: 'ignore' })
    } catch {}
  }
}

class SkipTarget extends Error {}

// ---- 1. the generator's ceiling ----

interface CeilingRound {
  readonly requestsPerSec: number
  readonly cpuPercent: number
}

function startTrivial(pin: (cpu: number, command: string[]) => string[]) {
  return startBenchServer(pin(1, [NODE, join(BENCH_DIR, 'trivial-server.ts')]))
}

async function generatorCeiling(seconds: number) {
  const pinned = await run('taskset', ['-c', '0', 'true']).then(
    () => true,
    () => false,
  )
  if (!pinned) process.stderr.write('warning: taskset is missing or fails: the ceiling runs unpinned\n')
  const pin = (cpu: number, command: string[]) =>
    pinned ? ['taskset', '-c', String(cpu), ...command] : command
  const server = await startTrivial(pin)
  try {
    const wrkRound = async (s: number): Promise<CeilingRound> => {
      const lua = join(BENCH_DIR, 'wrk/single-event.lua')
      const command = pin(0, ['wrk', '-t1', `-c${CONNECTIONS}`, `-d${s}s`, '-s', lua, `${server.url}/events`])
      const outcome = await runTimed(command, (s + 30) * 1000)
      const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(outcome.stdout)?.[1] ?? Number.NaN)
      if (outcome.code !== 0 || !Number.isFinite(rate))
        throw new Error(`wrk failed (exit ${outcome.code}): ${lastLine(outcome.stderr || outcome.stdout)}`)
      const socketErrors = /Socket errors: (.*)/.exec(outcome.stdout)?.[1]
      if (socketErrors) process.stderr.write(`  wrk socket errors: ${socketErrors}\n`)
      const took = /requests in ([\d.]+)(ms|s|m)\b/.exec(outcome.stdout)
      const wall = took ? Number(took[1]) * { ms: 0.001, s: 1, m: 60 }[took[2] as 'ms'] : s
      return { requestsPerSec: rate, cpuPercent: (outcome.cpuSeconds / wall) * 100 }
    }
    const generatorRound = async (s: number): Promise<CeilingRound & { externalCpuPercent: number }> => {
      const command = pin(0, [
        NODE,
        MAIN,
        'load',
        '--url',
        server.url,
        '--connections',
        String(CONNECTIONS),
        '--duration',
        `${s}s`,
        '--quiet',
        '--json',
      ])
      const outcome = await runTimed(command, (s + 30) * 1000)
      const result = loadResultOf(outcome, 'spillway load (ceiling)')
      return {
        requestsPerSec: result.throughput.requestsPerSec,
        cpuPercent: result.generator.cpuPercent,
        // Measured from outside (bash `times`, process start and warm-up included), to cross-check.
        externalCpuPercent: (outcome.cpuSeconds / result.durationSeconds) * 100,
      }
    }
    process.stderr.write(`generator ceiling: warm-up (2 s each), then 2 rounds × ${seconds} s each\n`)
    await wrkRound(2)
    await generatorRound(2)
    const wrkRounds: CeilingRound[] = []
    const generatorRounds: (CeilingRound & { externalCpuPercent: number })[] = []
    for (let i = 0; i < 2; i++) {
      wrkRounds.push(await wrkRound(seconds))
      process.stderr.write(`  wrk              ${int(wrkRounds.at(-1)!.requestsPerSec)} req/s\n`)
      generatorRounds.push(await generatorRound(seconds))
      process.stderr.write(`  spillway load    ${int(generatorRounds.at(-1)!.requestsPerSec)} req/s\n`)
    }
    const best = <T extends CeilingRound>(rounds: T[]) =>
      rounds.reduce((a, b) => (b.requestsPerSec > a.requestsPerSec ? b : a))
    const wrkBest = best(wrkRounds)
    const generatorBest = best(generatorRounds)
    return {
      pinned,
      seconds,
      connections: CONNECTIONS,
      wrk: { best: wrkBest, rounds: wrkRounds },
      generator: { best: generatorBest, rounds: generatorRounds },
      ratio: round(generatorBest.requestsPerSec / wrkBest.requestsPerSec, 2),
      target: CEILING_TARGET,
      pass: generatorBest.requestsPerSec >= CEILING_TARGET,
    }
  } finally {
    await server.stop()
  }
}

type Ceiling = Awaited<ReturnType<typeof generatorCeiling>>

function loadResultOf(outcome: ChildOutcome, what: string): LoadResult {
  // 0 done, 99 a threshold failed: both printed the result. 1: nothing answered at all.
  if (outcome.code !== 0 && outcome.code !== 99) {
    throw new Error(
      `${what} exited ${outcome.code}: ${lastLine(outcome.stderr) || lastLine(outcome.stdout) || '(no output)'}`,
    )
  }
  try {
    return JSON.parse(lastLine(outcome.stdout)) as LoadResult
  } catch {
    throw new Error(`${what} printed no JSON result: ${lastLine(outcome.stderr) || lastLine(outcome.stdout)}`)
  }
}

// ---- 2. presets against targets ----

interface PresetRun {
  readonly id: string
  readonly args: (timeScale: number) => string[]
  readonly offered: (plan: LoadResult['plan']) => string
}

const seconds = (plan: LoadResult['plan']) => `${round(plan.durationMs / 1000, 1)} s`

const PRESET_RUNS: readonly PresetRun[] = [
  {
    id: 'constant-15k',
    args: (t) => ['--preset', 'constant-15k', '--time-scale', String(t)],
    offered: (plan) => `15k/s, ${seconds(plan)}`,
  },
  {
    id: 'ramp-spike',
    args: (t) => ['--preset', 'ramp-spike', '--time-scale', String(t)],
    offered: (plan) => `ramp → 20k/s, ${seconds(plan)}`,
  },
  {
    // The producer tool's flood from its README; not time-based (50k events at 50k/s).
    id: 'producer',
    args: () => ['--rate', '5000', '--burst', '50000', '--workers', '10'],
    offered: () => '10×5k/s, 50k',
  },
]

interface Server {
  readonly url: string
  /** `clean`: the runs went well, so a failing stop is an error; otherwise stop as best we can. */
  stop(clean: boolean): Promise<StoredCheck | undefined>
}

interface StoredCheck {
  readonly acked: number
  readonly storedRows: number
  readonly distinctIds: number
  readonly idsStoredTwice: number
  readonly equal: boolean
}

interface Target {
  readonly id: string
  readonly name: string
  /** Starts the target's service (if any) and server; throws SkipTarget when the service cannot run. */
  start(acked: () => number): Promise<{ server: Server; service?: string }>
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms)
    }),
  ])
}

/** A `spillway serve` child: stopped with SIGTERM (drain, exit 0), its data dir removed when clean. */
function spillwayServer(
  server: ServerProcess & { dataDir: string },
  after?: () => Promise<StoredCheck>,
): Server {
  return {
    url: server.url,
    async stop(clean) {
      if (!clean) {
        server.kill('SIGTERM')
        const exited = await withTimeout(server.exited(), 45_000, 'spillway stop').catch(() => null)
        if (!exited) server.kill('SIGKILL')
        process.stderr.write(`  spillway data dir kept: ${server.dataDir} (log ${server.logFile})\n`)
        return undefined
      }
      await withTimeout(stopGracefully(server), 60_000, 'the graceful stop of spillway serve')
      const check = after ? await after() : undefined
      await rm(server.dataDir, { recursive: true, force: true })
      return check
    },
  }
}

function sinkTarget(
  id: string,
  name: string,
  startTimeoutMs: number,
  env: (address: string) => Record<string, string>,
): Target {
  return {
    id,
    name,
    async start() {
      const service = await startService(id, startTimeoutMs)
      try {
        const server = await startSpillway({ SPILLWAY_SINKS: id, ...env(service.address) })
        return { server: spillwayServer(server), service: service.dir }
      } catch (error) {
        await stopService(service.dir)
        throw error
      }
    },
  }
}

const TARGETS: readonly Target[] = [
  {
    id: 'baseline',
    name: 'bare node:http',
    async start() {
      const baseline = await startBaseline()
      return { server: { url: baseline.url, stop: async () => void (await baseline.stop()) } }
    },
  },
  {
    id: 'duckdb',
    name: 'Spillway, WAL + DuckDB',
    async start(acked) {
      const server = await startSpillway()
      return {
        server: spillwayServer(server, async () => {
          // The server is gone: its DuckDB file (duckdbPath's default) is ours to read.
          const counts = await storedEventCounts(join(server.dataDir, 'spillway.duckdb'))
          let storedRows = 0
          let idsStoredTwice = 0
          for (const n of counts.values()) {
            storedRows += n
            if (n > 1) idsStoredTwice++
          }
          const total = acked()
          return {
            acked: total,
            storedRows,
            distinctIds: counts.size,
            idsStoredTwice,
            equal: storedRows === total && counts.size === total,
          }
        }),
      }
    },
  },
  sinkTarget('clickhouse', 'Spillway → ClickHouse', 180_000, (url) => ({
    CLICKHOUSE_URL: url,
    CLICKHOUSE_DATABASE: 'bench_load',
  })),
  // Kafka may have to fetch the broker's jars first (cached in ~/.cache/spillway).
  sinkTarget('kafka', 'Spillway → Kafka', 600_000, (brokers) => ({
    KAFKA_BROKERS: brokers,
    KAFKA_TOPIC: `load-${Date.now()}`,
  })),
  sinkTarget('nats', 'Spillway → NATS JetStream', 180_000, (url) => ({ NATS_URL: url })),
]

interface TargetOutcome {
  readonly id: string
  readonly name: string
  readonly skipped?: string
  readonly runs: { preset: string; offered: string; html: string; result: LoadResult }[]
  readonly stored?: StoredCheck
}

async function runPreset(target: Target, url: string, preset: PresetRun, timeScale: number) {
  const html = join(REPORTS, `${target.id}-${preset.id}.html`)
  const args = [...preset.args(timeScale), '--url', url, '--json', '--quiet', '--html', html]
  process.stderr.write(`  spillway load ${preset.args(timeScale).join(' ')}\n`)
  // The longest preset lasts 140 s × time scale; then up to the 10 s request timeout for stragglers.
  const timeoutMs = (140 * timeScale + 10 + 60) * 1000
  const outcome = await runChild([NODE, MAIN, 'load', ...args], timeoutMs)
  const result = loadResultOf(outcome, `spillway load ${preset.id} against ${target.name}`)
  const s = result.requests.summary
  process.stderr.write(
    `    ${int(result.throughput.requestsPerSec)} req/s answered, 202 ${int(s['202'])}, 429 ${int(s['429'])}, 503 ${int(s['503'])}, errors ${int(others(result))}, p99 ${ms(result.latencyMs.p99)} ms${result.pass ? '' : ' (thresholds failed)'}\n`,
  )
  return { preset: preset.id, offered: preset.offered(result.plan), html, result }
}

async function runTarget(target: Target, timeScale: number): Promise<TargetOutcome> {
  process.stderr.write(`\n${target.name}\n`)
  const runs: TargetOutcome['runs'] = []
  const acked = () => runs.reduce((sum, r) => sum + r.result.requests.summary['202'], 0)
  let started: Awaited<ReturnType<Target['start']>>
  try {
    started = await target.start(acked)
  } catch (error) {
    if (!(error instanceof SkipTarget)) throw error
    process.stderr.write(`  skipped: ${error.message}\n`)
    return { id: target.id, name: target.name, skipped: error.message, runs }
  }
  let failure: unknown = null
  try {
    for (const [i, preset] of PRESET_RUNS.entries()) {
      // A moment between runs for what the last one left behind (delivery of a backlog).
      if (i > 0) await new Promise((r) => setTimeout(r, 2000))
      runs.push(await runPreset(target, started.server.url, preset, timeScale))
    }
  } catch (error) {
    failure = error
  }
  let stored: StoredCheck | undefined
  try {
    stored = await started.server.stop(failure === null)
  } catch (error) {
    // After a failed run, the run's error is the one to report.
    if (failure === null) failure = error
    else process.stderr.write(`  warning: stopping ${target.name}: ${(error as Error).message}\n`)
  } finally {
    if (started.service) await stopService(started.service)
  }
  if (failure !== null) throw failure
  return { id: target.id, name: target.name, runs, ...(stored ? { stored } : {}) }
}

// ---- 3. tables ----

const int = (n: number) => Math.round(n).toLocaleString('en-US')
const ms = (n: number) => (n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0))
const others = (r: LoadResult) => {
  const s = r.requests.summary
  return s['400'] + s.other + s.timeouts + s.connectionErrors + s.dropped
}

/** The "other+errors" count, with what it is made of when it is not 0: `19 (408 ×16, conn 3)`. */
function othersCell(r: LoadResult): string {
  const total = others(r)
  if (total === 0) return '0'
  const s = r.requests.summary
  const parts = [
    ...Object.entries(r.requests.byStatus)
      .filter(([code]) => !['202', '429', '503'].includes(code))
      .map(([code, n]) => `${code} ×${int(n)}`),
    s.timeouts ? `timeouts ${int(s.timeouts)}` : '',
    s.connectionErrors ? `conn ${int(s.connectionErrors)}` : '',
    s.dropped ? `dropped ${int(s.dropped)}` : '',
  ].filter((p) => p !== '')
  return `${int(total)} (${parts.join(', ')})`
}

/** 2xx answers in the best second (the mean hides a ramp's peak). */
const peak = (r: LoadResult) => Math.max(0, ...r.timeline.map((p) => p.ok))

function thresholdsCell(r: LoadResult): string {
  if (r.thresholds.length === 0) return '—'
  const failed = r.thresholds.filter((t) => !t.pass)
  if (failed.length === 0) return 'pass'
  const value = (t: (typeof failed)[number]) =>
    t.unit === '%' ? `${t.actual.toFixed(1)}%` : `${t.unit === 'ms' ? ms(t.actual) : int(t.actual)} ${t.unit}`
  return `FAIL ${failed.map((t) => `${t.expression} (${value(t)})`).join(', ')}`
}

function ceilingTable(c: Ceiling): string {
  const cpu = (p: number) => `${p.toFixed(0)}%`
  return [
    `| client (1 core${c.pinned ? '' : ', unpinned: no taskset'}) | req/s vs trivial server | CPU |`,
    '|---|--:|--:|',
    `| wrk -t1 -c${c.connections} | ${int(c.wrk.best.requestsPerSec)} | ${cpu(c.wrk.best.cpuPercent)} |`,
    `| spillway load --connections ${c.connections} | ${int(c.generator.best.requestsPerSec)} | ${cpu(c.generator.best.cpuPercent)} |`,
    `| ratio, target ≥ ${c.target / 1000}k | ${c.ratio.toFixed(2)} | ${c.pass ? 'PASS' : 'FAIL'} |`,
  ].join('\n')
}

function presetTable(targets: readonly TargetOutcome[]): string {
  const rows = [
    '| target | preset | offered | answered req/s (mean) / 2xx best second | 202 / 429 / 503 / other+errors | p50 / p95 / p99 / max ms | thresholds |',
    '|---|---|---|--:|--:|--:|---|',
  ]
  for (const t of targets) {
    if (t.skipped) {
      rows.push(`| ${t.name} | — | — | — | — | — | skipped: ${t.skipped.replaceAll('|', '\\|')} |`)
      continue
    }
    for (const { preset, offered, result: r } of t.runs) {
      const s = r.requests.summary
      const l = r.latencyMs
      rows.push(
        `| ${t.name} | ${preset} | ${offered} | ${int(r.throughput.requestsPerSec)} / ${int(peak(r))} | ${int(s['202'])} / ${int(s['429'])} / ${int(s['503'])} / ${othersCell(r)} | ${ms(l.p50)} / ${ms(l.p95)} / ${ms(l.p99)} / ${ms(l.max)} | ${thresholdsCell(r)} |`,
      )
    }
  }
  return rows.join('\n')
}

function storedLine(t: TargetOutcome): string | null {
  if (!t.stored) return null
  const s = t.stored
  const verdict = s.equal
    ? 'equal: every acked event stored, once'
    : s.storedRows < s.acked
      ? `NOT EQUAL: ${int(s.acked - s.distinctIds)} acked events missing`
      : `NOT EQUAL: ${int(s.storedRows - s.acked)} more rows than 202s${s.idsStoredTwice ? ` (${int(s.idsStoredTwice)} ids stored twice)` : ''}`
  return `${t.name}: ${int(s.acked)} events answered 202 across its runs, ${int(s.storedRows)} rows (${int(s.distinctIds)} distinct ids) in its DuckDB file after a graceful stop — ${verdict}.`
}

function report(ceiling: Ceiling, targets: readonly TargetOutcome[], timeScale: number): string {
  const date = new Date().toISOString().slice(0, 10)
  const cpu = cpus()[0]?.model.trim() ?? 'unknown cpu'
  const stored = targets.map(storedLine).filter((l) => l !== null)
  return [
    `Measured ${date} on ${cpus().length} cores (${cpu}, Node ${process.version.slice(1)}) with \`npm run bench:load\` (--time-scale ${timeScale}); the generator shares the machine with the server.`,
    '',
    `Generator ceiling: best of 2 rounds of ${ceiling.seconds} s, one event a request, against bench/trivial-server.ts ${ceiling.pinned ? 'on CPU 1, each client pinned to CPU 0' : '(unpinned: taskset is missing)'}.`,
    '',
    ceilingTable(ceiling),
    ...(ceiling.wrk.best.cpuPercent < 90
      ? [
          '',
          `wrk used ${ceiling.wrk.best.cpuPercent.toFixed(0)}% of its core: the trivial server (or the machine) limited both clients, so the generator's figure is a lower bound of its ceiling.`,
        ]
      : []),
    '',
    'Presets: each run by `spillway load` unpinned, sharing the cores with the server (and with ClickHouse, Kafka or NATS for those targets); latency counts from each request\'s due time (open model). "other+errors": other statuses, timeouts, connection errors, drops.',
    '',
    presetTable(targets),
    ...(stored.length > 0 ? ['', ...stored] : []),
  ].join('\n')
}

async function writeReadme(text: string): Promise<void> {
  const open = '<!-- bench:load -->'
  const close = '<!-- /bench:load -->'
  const readme = await readFile(README, 'utf8')
  const from = readme.indexOf(open)
  const to = readme.indexOf(close)
  if (from < 0 || to < from) throw new Error(`README.md has no ${open} … ${close} section`)
  await writeFile(README, `${readme.slice(0, from + open.length)}\n${text}\n${readme.slice(to)}`)
}

// ---- main ----

async function main(): Promise<number> {
  const { flags } = parseArgs(process.argv.slice(2))
  const timeScale = Number(flags['time-scale'] ?? 0.25)
  const ceilingSeconds = Number(flags['ceiling-seconds'] ?? 10)
  if (!(timeScale > 0)) throw new RangeError(`--time-scale must be > 0, got "${flags['time-scale']}"`)
  if (!(ceilingSeconds >= 1)) throw new RangeError(`--ceiling-seconds must be ≥ 1`)
  const ids = (flags['targets'] ?? TARGETS.map((t) => t.id).join(',')).split(',').map((s) => s.trim())
  const unknown = ids.filter((id) => !TARGETS.some((t) => t.id === id))
  if (unknown.length > 0)
    throw new RangeError(
      `unknown target ${unknown.join(', ')}; one of ${TARGETS.map((t) => t.id).join(', ')}`,
    )
  const targets = TARGETS.filter((t) => ids.includes(t.id))

  await ensureWrk()
  await mkdir(REPORTS, { recursive: true })
  const started = performance.now()
  process.stderr.write(`bench:load on ${machine()}, time scale ${timeScale}\n`)

  const ceiling = await generatorCeiling(ceilingSeconds)
  const outcomes: TargetOutcome[] = []
  for (const target of targets) outcomes.push(await runTarget(target, timeScale))

  const text = report(ceiling, outcomes, timeScale)
  await writeFile(
    join(RESULTS, 'load.json'),
    `${JSON.stringify({ date: new Date().toISOString(), machine: machine(), timeScale, ceiling, targets: outcomes }, null, 2)}\n`,
  )
  process.stdout.write(`\n${text}\n\n`)
  for (const t of outcomes) {
    if (t.stored && !t.stored.equal) {
      process.stderr.write(
        `\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n` +
          `!!! WARNING: ${storedLine(t)}\n` +
          `!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n`,
      )
    }
  }
  if (!ceiling.pass)
    process.stderr.write(
      `warning: the generator made ${int(ceiling.generator.best.requestsPerSec)} req/s on one core, below the ${int(CEILING_TARGET)} req/s target\n`,
    )
  if (flags['no-readme'] === undefined) {
    await writeReadme(text)
    process.stderr.write('README.md: the bench:load section is rewritten\n')
  }
  process.stderr.write(
    `results: ${join(RESULTS, 'load.json')}, reports: ${REPORTS}/; took ${round((performance.now() - started) / 1000)} s\n`,
  )
  return 0
}

process.once('SIGINT', () => {
  process.stderr.write('\ninterrupted: stopping the services\n')
  stopServicesNow()
  process.exit(130)
})

try {
  process.exitCode = await main()
} catch (error) {
  process.stderr.write(`\nbench:load failed: ${(error as Error).stack ?? error}\n`)
  stopServicesNow()
  process.exitCode = 1
}

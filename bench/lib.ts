/**
 * Shared pieces of the benchmarks: start a server as a child process, drive it with wrk, parse
 * wrk's report. Every benchmark measures its baseline in the same run and reports ratios, because
 * these machines are shared and noisy.
 */
import { execFile, spawn } from 'node:child_process'
import { mkdtemp } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { NormalizedEvent } from '../src/intake/types.ts'
import { type ServerProcess, startServerProcess } from '../test/helpers/server-process.ts'

const run = promisify(execFile)
export const BENCH_DIR = new URL('./', import.meta.url).pathname

export interface WrkResult {
  readonly requestsPerSec: number
  readonly requests: number
  readonly non2xx: number
  readonly socketErrors: string | null
  readonly latencyMs: { p50: number; p90: number; p99: number }
}

export async function ensureWrk(): Promise<void> {
  await run('bash', [join(BENCH_DIR, '../scripts/ensure-wrk.sh')])
}

export async function wrk(
  url: string,
  script: string,
  opts: { seconds: number; connections: number; threads?: number; env?: Record<string, string> },
): Promise<WrkResult> {
  const { stdout } = await run(
    'wrk',
    [
      '-t',
      String(opts.threads ?? 1),
      '-c',
      String(opts.connections),
      '-d',
      `${opts.seconds}s`,
      '--latency',
      '-s',
      join(BENCH_DIR, 'wrk', script),
      url,
    ],
    { env: { ...process.env, ...opts.env }, maxBuffer: 1 << 20 },
  )
  const num = (re: RegExp) => Number(stdout.match(re)?.[1] ?? Number.NaN)
  const ms = (pct: string) => {
    const m = stdout.match(new RegExp(`\\s${pct}%\\s+([\\d.]+)(us|ms|s)`))
    if (!m) return Number.NaN
    const v = Number(m[1])
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v
  }
  return {
    requestsPerSec: num(/Requests\/sec:\s+([\d.]+)/),
    requests: num(/(\d+) requests in/),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/) || 0,
    socketErrors: stdout.match(/Socket errors: (.*)/)?.[1] ?? null,
    latencyMs: { p50: ms('50'), p90: ms('90'), p99: ms('99') },
  }
}

export async function startBaseline(workers = 1): Promise<{ url: string; stop: () => Promise<void> }> {
  return startBenchServer([process.execPath, join(BENCH_DIR, 'baseline-server.ts')], {
    BASELINE_WORKERS: String(workers),
  })
}

/**
 * Starts a bench server (baseline-server.ts, trivial-server.ts; `command` may be prefixed, e.g. by
 * taskset) that prints `{"url": …}` on its first stdout line; `stop` sends SIGTERM and waits.
 */
export async function startBenchServer(
  command: readonly string[],
  env: Record<string, string> = {},
): Promise<{ url: string; stop: () => Promise<void> }> {
  const proc = spawn(command[0], command.slice(1), {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${command.join(' ')} did not start within 10 s`)),
      10_000,
    )
    proc.stdout.once('data', (d: Buffer) => {
      clearTimeout(timer)
      resolve(JSON.parse(d.toString()).url)
    })
    proc.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${command.join(' ')} exited ${code}`))
    })
  })
  return {
    url,
    stop: async () => {
      if (proc.exitCode !== null) return
      proc.kill('SIGTERM')
      await new Promise((r) => proc.once('exit', r))
    },
  }
}

export async function startSpillway(
  env: Record<string, string> = {},
): Promise<ServerProcess & { dataDir: string }> {
  const dataDir = await mkdtemp(join(process.env['BENCH_TMP'] ?? tmpdir(), 'spillway-bench-'))
  // One process unless the benchmark says otherwise (bench/workers.ts): the figures of the other
  // benchmarks are per process, against single-process baselines.
  const server = await startServerProcess(dataDir, { SPILLWAY_WORKERS: '1', ...env })
  return Object.assign(server, { dataDir })
}

export async function stopGracefully(server: ServerProcess): Promise<void> {
  server.kill('SIGTERM')
  const { code } = await server.exited()
  if (code !== 0) throw new Error(`server exited ${code}; see ${server.logFile}`)
}

export function machine(): string {
  return `${cpus().length} cores, ${cpus()[0]?.model ?? 'unknown cpu'}, Node ${process.version}`
}

export const round = (n: number, digits = 0) => Number(n.toFixed(digits))

/** The n-th synthetic event of a benchmark: varied channels, campaigns and users, a day of timestamps. */
export function benchEvent(
  n: number,
  eventId: string,
  eventName: string,
  nowSeconds: number,
): NormalizedEvent {
  return {
    event_id: eventId,
    event_name: eventName,
    channel: (['web', 'mobile', 'api', 'email', 'push'] as const)[n % 5],
    campaign_id: `cmp_${n % 50}`,
    user_id: `user_${(n * 7919) % 100_000}`,
    timestamp: nowSeconds - ((n * 37) % 86_400),
    received_at: Date.now(),
    tags: ['a', 'b'],
    metadata: { product_id: `prod-${n % 1000}`, price: 129.99 },
  }
}

/**
 * Polls `count` every 100 ms until it reaches `target`; fails when it has not grown for 30 s.
 * Answers the last count and the seconds since `started` (performance.now()).
 */
export async function waitForCount(
  count: () => Promise<number>,
  from: number,
  target: number,
  started: number,
  what: string,
): Promise<{ last: number; seconds: number }> {
  let last = from
  let progressAt = started
  while (last < target && performance.now() - progressAt < 30_000) {
    await new Promise((r) => setTimeout(r, 100))
    const now = await count()
    if (now > last) progressAt = performance.now()
    last = now
  }
  if (last < target) throw new Error(`the drain stalled at ${last - from} of ${target - from} ${what}`)
  return { last, seconds: (performance.now() - started) / 1000 }
}

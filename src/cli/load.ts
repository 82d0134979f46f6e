/**
 * `spillway load`: drive an HTTP ingestion endpoint (Spillway or any other) with an open or closed
 * load model, print a live progress line and a summary, write JSON and HTML reports, and exit 99
 * when a threshold failed.
 */
import { writeFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import { DEFAULT_URL, PRESETS, planFromFlags } from '../loadgen/plan.ts'
import { renderHtmlReport } from '../loadgen/report-html.ts'
import { runLoad } from '../loadgen/runner.ts'
import { describePlan, formatProgress, formatSummary } from '../loadgen/summary.ts'
import { EXIT_THRESHOLDS_FAILED } from '../loadgen/thresholds.ts'

export const LOAD_USAGE = `usage: spillway load --url URL [model] [payload] [output]

--url is required: the endpoint's base URL, e.g. ${DEFAULT_URL} (spillway serve's default)

open model (arrivals on a schedule, latency from each request's due time):
  --rate N [--duration 30s]          N requests/s
  --stages 30s:2000,1m:2000,…        the rate moves linearly to each target ([--start-rate N], default 0)
  --connections N                    the most connections at once (1000); arrivals beyond wait in a queue
  --max-queued N                     … of at most N (100000); beyond it they are dropped (errors)
  --time-scale F                     multiply every duration by F (a short rehearsal of a preset)
closed model (without --rate / --stages): --connections N (64) --duration D (30s), each connection
  sends as soon as it is answered
both: --requests N (stop after N), --timeout D (10s)
presets (--preset NAME; flags beside it win):
${Object.entries(PRESETS)
  .map(([name, p]) => `  ${name.padEnd(14)} ${p.doc}`)
  .join('\n')}
  --rate R --burst B --workers W     the producer tool's flags (implies --preset producer)
payload:
  --batch N                          NDJSON of N events to /events/batch (default: one event to /events)
  --gzip                             gzip every body
  --duplicates 5%                    that share of events re-sends a recent event (a client retry)
  --event-names a,b,c  --users N (100000)  --campaigns N (50)  --channels web,mobile,…
  --header "Name: value" (repeatable)  --api-key K (Authorization: Bearer K)  --seed N
output:
  --threshold p95<60ms (repeatable, or comma-separated): pN, p(N), avg, med, min, max in us/ms/s;
                                     errors<1%; rate, ok_rate, events_rate in /s. Exit 99 if one fails.
  --out results.json  --html report.html  --json (the result as JSON on stdout)
  --quiet (no progress line)  --progress (a progress line even when stderr is not a terminal)
exit: 0 done, 99 a threshold failed, 1 nothing answered at all, 2 bad flags, 130 stopped by Ctrl-C`

export async function loadCommand(
  flags: Readonly<Record<string, string>>,
  lists: Readonly<Record<string, readonly string[]>>,
): Promise<number> {
  if (flags['help']) {
    process.stdout.write(`${LOAD_USAGE}\n`)
    return 0
  }
  // No default target: a bare `spillway load` once ran 30 s against whatever listened on :8080.
  if (flags['url'] === undefined || flags['url'] === 'true') {
    throw Object.assign(new Error(`--url is required (the endpoint to load)\n\n${LOAD_USAGE}`), {
      usage: true,
    })
  }
  const plan = planFromFlags(flags, lists)
  const seed = flags['seed'] !== undefined ? Number(flags['seed']) : undefined
  if (seed !== undefined && !Number.isInteger(seed))
    throw new RangeError(`--seed must be a whole number, got "${flags['seed']}"`)
  const live = !flags['quiet'] && (flags['progress'] !== undefined || process.stderr.isTTY)
  const tty = process.stderr.isTTY
  if (!flags['quiet']) process.stderr.write(`spillway load → ${plan.url}: ${describePlan(plan)}\n`)
  const controller = new AbortController()
  const interrupt = () => {
    if (controller.signal.aborted) process.exit(130)
    process.stderr.write('\nstopping: waiting for the answers in flight (Ctrl-C again to quit at once)\n')
    controller.abort()
  }
  process.on('SIGINT', interrupt)
  const cpu = cpus()[0]?.model ?? 'unknown cpu'
  const { result } = await runLoad(plan, {
    machine: `${cpus().length} cores, ${cpu}, Node ${process.version}`,
    signal: controller.signal,
    ...(seed !== undefined ? { seed } : {}),
    onProgress: live
      ? (p) => process.stderr.write(tty ? `\r\x1b[K${formatProgress(p)}` : `${formatProgress(p)}\n`)
      : undefined,
  })
  process.off('SIGINT', interrupt)
  if (live && tty) process.stderr.write('\n')
  if (flags['out']) await writeFile(flags['out'], `${JSON.stringify(result, null, 2)}\n`)
  if (flags['html']) await writeFile(flags['html'], renderHtmlReport(result))
  process.stdout.write(flags['json'] ? `${JSON.stringify(result)}\n` : formatSummary(result))
  const answered =
    result.requests.completed - result.requests.summary.timeouts - result.requests.summary.connectionErrors
  if (answered === 0 && result.requests.sent + result.requests.summary.dropped > 0) {
    process.stderr.write(`spillway load: ${plan.url} answered no request\n`)
    return 1
  }
  if (result.interrupted) return 130
  return result.pass ? 0 : EXIT_THRESHOLDS_FAILED
}

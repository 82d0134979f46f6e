/**
 * `spillway top`: the dashboard's feed (`GET /api/stats` on the operations port) as a terminal
 * view refreshing in place, for a server reached over SSH — as `vector top` does for Vector. It
 * draws on the alternate screen and gives the terminal back as it was on exit, Ctrl-C or `q`.
 * `--once` prints one frame and exits (scripts, tests).
 *
 * Everything from the server is shown as text with control characters replaced, so a sink's error
 * message cannot move the cursor or change the terminal's state.
 */

import type { Sample, Stats } from '../dashboard/feed.ts'
import { spillwayError } from '../errors.ts'

const DEFAULT_PORT = 9464
const REFRESH_MS = 1000
const SPARK = '▁▂▃▄▅▆▇█'
const STATUSES = ['202', '400', '401', '413', '429', '503']
const ESC = '\x1b['
const ENTER = `${ESC}?1049h${ESC}?25l`
const LEAVE = `${ESC}?25h${ESC}?1049l`

export interface TopFlags {
  readonly [flag: string]: string | undefined
}

export async function topCommand(flags: TopFlags): Promise<number> {
  const base = baseUrl(flags['url'])
  const key = flags['api-key'] ?? process.env['SPILLWAY_API_KEY']
  const out = process.stdout
  const color = out.isTTY === true && !process.env['NO_COLOR']
  const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {}
  const fetchStats = (since?: number) =>
    fetchJson<Stats>(base, `/api/stats${since ? `?since=${since}` : ''}`, headers)
  const ready = async () => {
    try {
      const response = await fetch(new URL('/ready', base), { signal: AbortSignal.timeout(3000) })
      return response.ok ? 'ready' : 'not ready'
    } catch {
      return 'unknown'
    }
  }

  // The first reading decides: an unreachable server or a refused key is an error, not a screen.
  let stats = await fetchStats()
  let history = stats.history.slice(-120)
  if (flags['once'] !== undefined) {
    out.write(
      `${renderFrame(stats, history, { color, width: out.columns ?? 120, ready: await ready(), url: base })}\n`,
    )
    return 0
  }

  let closed = false
  const done = Promise.withResolvers<number>()
  const restore = () => {
    if (closed) return
    closed = true
    if (process.stdin.isTTY) process.stdin.setRawMode(false)
    process.stdin.pause()
    out.write(LEAVE)
  }
  const quit = (code: number) => {
    restore()
    done.resolve(code)
  }
  process.once('SIGINT', () => quit(0))
  process.once('SIGTERM', () => quit(0))
  process.once('exit', restore)
  if (process.stdin.isTTY) {
    process.stdin.setRawMode(true)
    process.stdin.resume()
    // Raw mode swallows Ctrl-C's signal: 'q', Esc and Ctrl-C quit.
    process.stdin.on('data', (data: Buffer) => {
      if (data.includes(3) || data.includes(0x71) || data[0] === 0x1b) quit(0)
    })
  }
  out.write(ENTER)
  let readiness = await ready()
  let problem: string | undefined
  let ticks = 0
  const draw = () => {
    if (closed) return
    const frame = renderFrame(stats, history, {
      color,
      width: out.columns ?? 120,
      ready: readiness,
      url: base,
      live: true,
      ...(problem !== undefined && { problem }),
    })
    // Home, the frame with each line cleared to its end, then the rest of the screen cleared.
    out.write(`${ESC}H${frame.split('\n').join(`${ESC}K\n`)}${ESC}K${ESC}J`)
  }
  out.on('resize', draw)
  draw()
  const timer = setInterval(async () => {
    try {
      const last = history.at(-1)?.t
      const next = await fetchStats(last)
      stats = next
      history = [...history, ...next.history].slice(-120)
      problem = undefined
      if (++ticks % 5 === 0) readiness = await ready()
    } catch (error) {
      problem = (error as Error).message
    }
    draw()
  }, REFRESH_MS)
  const code = await done.promise
  clearInterval(timer)
  out.off('resize', draw)
  return code
}

function baseUrl(flag: string | undefined): URL {
  const raw = flag ?? `http://127.0.0.1:${process.env['METRICS_PORT'] || DEFAULT_PORT}`
  try {
    const url = new URL(raw.includes('://') ? raw : `http://${raw}`)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http')
    return url
  } catch {
    throw spillwayError(
      'SPW_ERR_CONFIG_INVALID',
      `--url must be the operations port's URL, e.g. http://127.0.0.1:9464, got ${JSON.stringify(raw)}`,
    )
  }
}

async function fetchJson<T>(base: URL, path: string, headers: Record<string, string>): Promise<T> {
  const url = new URL(path, base)
  let response: Response
  try {
    response = await fetch(url, { headers, signal: AbortSignal.timeout(5000) })
  } catch (error) {
    const cause = causeOf(error)
    throw spillwayError(
      'SPW_ERR_SERVER_NOT_READY',
      `cannot reach the operations port at ${base.origin} (${cause}); is spillway serve running there? --url takes the metricsUrl of its ServerStarted log line`,
    )
  }
  const body = (await response.json().catch(() => ({}))) as { error?: string }
  if (response.status === 401)
    throw spillwayError(
      'SPW_ERR_AUTH_MISSING',
      `the operations port at ${base.origin} needs an API key (${body.error ?? 'refused'}): give --api-key or SPILLWAY_API_KEY`,
    )
  if (response.status === 404)
    throw spillwayError(
      'SPW_ERR_SERVER_NOT_READY',
      `${base.origin} has no ${url.pathname}: is --url the operations port (METRICS_PORT, 9464), not the API port?`,
    )
  if (!response.ok)
    throw spillwayError(
      'SPW_ERR_SERVER_NOT_READY',
      `${url.href} answered ${response.status}: ${body.error ?? ''}`,
    )
  return body as T
}

/** ECONNREFUSED rather than fetch's "fetch failed" (an AggregateError when every address failed). */
function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; errors?: { code?: string }[]; message?: string } }).cause
  return cause?.code ?? cause?.errors?.[0]?.code ?? cause?.message ?? (error as Error).message
}

// --- the frame ----------------------------------------------------------------------------------

export interface FrameOptions {
  readonly color: boolean
  readonly width: number
  readonly ready: string
  readonly url: URL | string
  /** Refreshing in place (the help line says how to quit). */
  readonly live?: boolean
  /** Shown when the last refresh failed (the frame shows the last good reading). */
  readonly problem?: string
}

/** One screen of `spillway top`, lines cut at `width`. */
export function renderFrame(stats: Stats, history: readonly Sample[], options: FrameOptions): string {
  const c = painter(options.color)
  const now = stats.current
  const lines: string[] = []
  const node = stats.node
  const workers = node.workers
    ? `workers ${node.workers.running}/${node.workers.configured}${node.workers.restarts ? ` (${node.workers.restarts} restarts)` : ''}`
    : '1 process'
  const readyWord = options.ready === 'ready' ? c.green('ready') : c.red(safe(options.ready))
  lines.push(
    `${c.bold('Spillway')}  ${safe(node.hostname)}  v${safe(node.version)}  up ${duration(node.uptimeSeconds)}  ${workers}  ${readyWord}  ${c.dim(safe(String(options.url)))}`,
  )
  if (options.problem) lines.push(c.red(`! ${safe(options.problem)} — showing the last reading`))
  lines.push('')
  const requests = now?.requests ?? {}
  const other = Object.entries(requests)
    .filter(([s]) => !STATUSES.includes(s))
    .reduce((sum, [, v]) => sum + v, 0)
  const totalRequests = Object.values(requests).reduce((a, b) => a + b, 0)
  lines.push(
    `${label('REQUESTS/s')}${num(totalRequests).padStart(9)}   ${STATUSES.map((s) => `${statusColor(c, s)(s)} ${num(requests[s] ?? 0)}`).join('  ')}  other ${num(other)}`,
  )
  const totals = stats.totals.events
  lines.push(
    `${label('EVENTS/s')}${num(now?.events.accepted ?? 0).padStart(9)}   accepted   duplicate ${num(now?.events.duplicate ?? 0)}  rejected ${num(now?.events.rejected ?? 0)}   ${c.dim(`totals: ${int(totals.accepted)} accepted, ${int(totals.duplicate)} duplicate, ${int(totals.rejected)} rejected`)}`,
  )
  lines.push(
    `${label('')}${spark(history.map((s) => s.events.accepted)).padStart(9)}   ${c.dim('accepted, last 2 min')}`,
  )
  const latency = now?.latencyMs
  lines.push(
    `${label('LATENCY 202')}${(latency ? ms(latency.p99) : '–').padStart(9)}   p99   p50 ${latency ? ms(latency.p50) : '–'}  p95 ${latency ? ms(latency.p95) : '–'}   ${spark(history.map((s) => s.latencyMs?.p99 ?? 0))}`,
  )
  lines.push(
    `${label('WAL BACKLOG')}${bytes(stats.wal.backlogBytes).padStart(9)}   oldest undelivered ${stats.wal.oldestIsLowerBound ? '≥ ' : ''}${duration(stats.wal.oldestUndeliveredSeconds)}   ${spark(history.map((s) => s.walBacklogBytes))}`,
  )
  lines.push(
    `${label('ADMISSION')}${stats.admission
      .map((a) => {
        const pct = Math.round(a.fullness * 100)
        const paint = pct >= 90 ? c.red : pct >= 60 ? c.yellow : (s: string) => s
        return `${safe(a.bound)} ${paint(`${pct}%`)}${a.refusedTotal ? c.dim(` (${int(a.refusedTotal)} refused)`) : ''}`
      })
      .join('  ')}`,
  )
  lines.push(
    `${label('PROCESS')}rss ${bytes(stats.process.rssBytes)}  event-loop p99 ${ms(stats.process.eventLoopDelayMs)}  delivery thread ${stats.process.deliveryThreadUp === false ? c.red('restarting') : 'up'}`,
  )
  lines.push('')
  const cols = [14, 10, 10, 13, 10, 9, 9]
  lines.push(
    c.bold(
      ['SINK', 'BREAKER', 'ROWS/s', 'DELIVERED', 'BACKLOG', 'LAG', 'RETRIES']
        .map((h, i) => (i === 0 || i === 1 ? h.padEnd(cols[i]) : h.padStart(cols[i])))
        .join(' ') + '  LAST ERROR',
    ),
  )
  for (const s of stats.sinks) {
    const breaker = safe(s.breaker).padEnd(cols[1])
    const paint = s.breaker === 'closed' ? c.green : s.breaker === 'open' ? c.red : c.yellow
    const error = s.lastError ? `${safe(s.lastError)} (${ago(s.lastErrorAt)})` : '–'
    lines.push(
      [
        safe(s.name).padEnd(cols[0]),
        paint(breaker),
        num(s.rowsPerSecond).padStart(cols[2]),
        int(s.deliveredTotal).padStart(cols[3]),
        bytes(s.backlogBytes).padStart(cols[4]),
        duration(s.lagSeconds).padStart(cols[5]),
        int(s.retriesTotal).padStart(cols[6]),
      ].join(' ') + `  ${s.lastError ? c.red(error) : error}`,
    )
  }
  lines.push('')
  const dl = stats.deadLetters
  const by = stats.totals.deadLetteredBySource
  lines.push(
    `${label('DEAD LETTERS')}stored ${int(dl.entries)} / ${int(dl.limitEntries)} (${bytes(dl.bytes)})   intake ${int(by['intake'] ?? 0)}  delivery ${int(by['delivery'] ?? 0)}`,
  )
  const dup = stats.totals.duplicatesByLayer
  lines.push(
    `${label('DEDUP')}l1 ${int(dup['l1'] ?? 0)}  delivery ${int(dup['delivery'] ?? 0)}  l2 ${int(dup['l2'] ?? 0)}   redis ${safe(stats.dedup.l2 ?? 'not configured')}`,
  )
  const reasons = Object.entries(stats.totals.rejectedByReason).filter(([, v]) => v > 0)
  lines.push(
    `${label('REJECTED')}${reasons.length ? reasons.map(([r, v]) => `${safe(r)} ${int(v)}`).join('  ') : 'none'}`,
  )
  if (node.shards.length > 0) {
    lines.push(
      `${label('SHARDS')}${node.shards.map((s) => `#${s.shard} ${bytes(s.headBytes)} (${bytes(s.backlogBytes)} to merge)`).join('  ')}`,
    )
  }
  lines.push('')
  const at = new Date(now?.t ?? Date.now()).toISOString()
  lines.push(c.dim(options.live ? `q or Ctrl-C quits · refreshed ${at}` : `sampled ${at}`))
  return lines.map((line) => cut(line, options.width)).join('\n')
}

/** Control characters (ESC above all) out of text that came from the server. */
export function safe(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
}

/** Cuts a line to `width` visible columns, keeping (and closing) its colour codes. */
function cut(line: string, width: number): string {
  let visible = 0
  let out = ''
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\x1b') {
      const end = line.indexOf('m', i)
      out += line.slice(i, end + 1)
      i = end
      continue
    }
    if (visible >= width) {
      out += `${ESC}0m`
      break
    }
    out += line[i]
    visible++
  }
  return out
}

function painter(on: boolean) {
  const wrap = (code: string) => (s: string) => (on ? `${ESC}${code}m${s}${ESC}0m` : s)
  return {
    bold: wrap('1'),
    dim: wrap('2'),
    red: wrap('31'),
    green: wrap('32'),
    yellow: wrap('33'),
    cyan: wrap('36'),
  }
}

function statusColor(c: ReturnType<typeof painter>, status: string) {
  return status === '202' ? c.green : status === '503' ? c.red : status === '429' ? c.cyan : c.yellow
}

const label = (text: string) => text.padEnd(14)
const nf = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 })
const num = (n: number) => nf.format(n)
const int = (n: number) => Math.round(n).toLocaleString('en-US')
const ms = (v: number) => `${v < 10 ? v.toFixed(2) : Math.round(v)} ms`

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024
    i++
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`
}

function duration(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)} s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`
  return `${Math.floor(seconds / 86400)} d ${Math.floor((seconds % 86400) / 3600)} h`
}

function ago(iso: string | null): string {
  return iso ? `${duration(Math.max(0, (Date.now() - Date.parse(iso)) / 1000))} ago` : '–'
}

/** The last 40 values as a sparkline scaled to their own maximum. */
function spark(values: readonly number[]): string {
  const last = values.slice(-40)
  const max = Math.max(0, ...last)
  if (last.length === 0) return ''
  return last.map((v) => SPARK[max > 0 ? Math.min(7, Math.floor((v / max) * 7.999)) : 0]).join('')
}

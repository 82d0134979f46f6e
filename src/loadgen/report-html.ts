/**
 * The HTML report of a `spillway load` run: one self-contained file (inline CSS and SVG, no scripts,
 * nothing fetched, so it opens on a machine without internet) with the plan, a PASS/FAIL banner, the
 * summary and threshold tables, and three charts: throughput and latency per second, and latency by
 * percentile on an HdrHistogram-style axis.
 *
 * Every string from the result goes through `esc`, every number through `num` (text) or `coord`
 * (SVG), so a NaN, an Infinity or a non-number in the result prints as "–" and never reaches the SVG.
 */
import type { LoadPlan, LoadResult, TimelinePoint } from './types.ts'

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

/** HTML-escapes text and attribute values. */
const esc = (value: unknown): string => String(value).replace(/[&<>"']/g, (c) => ENTITIES[c])

const formats = new Map<number, Intl.NumberFormat>()

/** A number for text: thousands separators and up to `digits` decimals; "–" for anything not finite. */
function num(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return '–'
  let format = formats.get(digits)
  if (!format) {
    format = new Intl.NumberFormat('en-US', { maximumFractionDigits: digits })
    formats.set(digits, format)
  }
  return format.format(n === 0 ? 0 : n) // no "-0"
}

/** A plain number (no separators), as in "30s → 2000/s". */
const plain = (n: number): string => (Number.isFinite(n) ? String(Math.round(n * 100) / 100) : '–')
const ms = (n: number): string => num(n, Math.abs(n) < 10 ? 2 : Math.abs(n) < 100 ? 1 : 0)
const coord = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '0')

/** 500 → "500ms", 30000 → "30s", 90000 → "1m30s", 1500 → "1.5s". */
function duration(msValue: number): string {
  if (!Number.isFinite(msValue) || msValue < 0) return '–'
  if (msValue < 1000) return `${Math.round(msValue)}ms`
  if (msValue < 60_000 && msValue % 1000 !== 0) return `${num(msValue / 1000, 1)}s`
  const total = Math.round(msValue / 1000)
  const [h, m, s] = [Math.floor(total / 3600), Math.floor((total % 3600) / 60), total % 60]
  return (h ? `${h}h` : '') + (m ? `${m}m` : '') + (s || total === 0 ? `${s}s` : '')
}

// ---------------------------------------------------------------------------------------------------
// A small SVG line chart

export interface Series {
  readonly name: string
  readonly color: string
  /** An SVG stroke-dasharray, e.g. "6 4". */
  readonly dash?: string
  /** [x, y] in data units; a null (or non-finite) y is a gap. */
  readonly points: readonly (readonly [number, number | null])[]
}

export interface Tick {
  readonly value: number
  readonly label: string
}

export interface ChartOptions {
  readonly title: string
  readonly xLabel: string
  readonly yLabel: string
  readonly series: readonly Series[]
  /** A log10 y axis; falls back to linear when no value is positive. */
  readonly yLog?: boolean
  /** Fixed x ticks; their first and last values are the x domain. Default: round numbers from 0. */
  readonly xTicks?: readonly Tick[]
  /** The smallest step between default x ticks (1 for seconds). */
  readonly xMinStep?: number
  /** When given, each x gets a hover column whose tooltip lists the values there. */
  readonly hoverX?: (x: number) => string
  readonly hoverY?: (y: number) => string
}

const W = 960
const H = 320
const PAD = { top: 40, right: 24, bottom: 48, left: 64 }
const PLOT_W = W - PAD.left - PAD.right
const PLOT_H = H - PAD.top - PAD.bottom

/** 1, 2 or 5 × a power of ten, at least `span`. */
function niceStep(span: number): number {
  const raw = span > 0 && Number.isFinite(span) ? span : 1
  const power = 10 ** Math.floor(Math.log10(raw))
  const f = raw / power
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * power
}

/** About five round ticks covering lo..hi (lo..lo+1 when they are equal); the first and last are the domain. */
function linearTicks(lo: number, hi: number, minStep = 0): number[] {
  const top = hi > lo ? hi : lo + 1
  const step = Math.max(niceStep((top - lo) / 5), minStep)
  const first = Math.floor(lo / step)
  const last = Math.max(Math.ceil(top / step), first + 1)
  return Array.from({ length: last - first + 1 }, (_, i) => Number(((first + i) * step).toPrecision(12)))
}

/** 0.5 → "0.5", 1500 → "1.5k", 2000000 → "2M". */
function compact(n: number): string {
  const a = Math.abs(n)
  return a >= 1e6 ? `${num(n / 1e6, 1)}M` : a >= 1e3 ? `${num(n / 1e3, 1)}k` : num(n, 3)
}

const isValue = (y: number | null): y is number => y !== null && Number.isFinite(y)
/** Math.min/max without spreading (a day of timeline is too many arguments); `empty` when there are none. */
const least = (values: readonly number[], empty = 0): number =>
  values.reduce((a, b) => Math.min(a, b), values[0] ?? empty)
const most = (values: readonly number[], empty = 0): number =>
  values.reduce((a, b) => Math.max(a, b), values[0] ?? empty)

export function lineChart(options: ChartOptions): string {
  const series = options.series.map((s) => ({
    ...s,
    points: s.points
      .filter(([x]) => Number.isFinite(x))
      .map(([x, y]) => [x, isValue(y) ? y : null] as const)
      .sort((a, b) => a[0] - b[0]),
  }))
  const drawn = series.flatMap((s) => s.points.filter((p): p is readonly [number, number] => p[1] !== null))
  const svgOpen = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(options.title)}">`
  const figure = (body: string) =>
    `<figure class="chart"><figcaption>${esc(options.title)}</figcaption>${svgOpen}${body}</svg></figure>`
  if (drawn.length === 0) return figure(`<text class="nodata" x="${W / 2}" y="${H / 2}">no data</text>`)

  // x: the fixed ticks, or round numbers from 0 (or below) to past the last x.
  const xs = drawn.map((p) => p[0])
  const xTicks: readonly Tick[] =
    options.xTicks ??
    linearTicks(Math.min(0, least(xs)), most(xs), options.xMinStep).map((value) => ({
      value,
      label: compact(value),
    }))
  const x0 = Math.min(xTicks[0].value, least(xs))
  const x1 = Math.max(xTicks[xTicks.length - 1].value, most(xs), x0 + 1e-9)
  const sx = (x: number) => PAD.left + ((x - x0) / (x1 - x0)) * PLOT_W

  // y: log10 from the decade below the smallest positive value (so it is off the axis), or linear from 0.
  const ys = drawn.map((p) => p[1])
  const positive = ys.filter((y) => y > 0)
  const log = options.yLog === true && positive.length > 0
  let yTicks: Tick[]
  let ty: (y: number) => number
  if (log) {
    const lo = Math.ceil(Math.log10(least(positive))) - 1
    const hi = Math.max(Math.ceil(Math.log10(most(positive))), lo + 1)
    const steps = hi - lo <= 2 ? [1, 2, 5] : [1]
    yTicks = []
    for (let k = lo; k <= hi; k++) {
      for (const m of steps)
        if (k < hi || m === 1) yTicks.push({ value: k + Math.log10(m), label: compact(m * 10 ** k) })
    }
    ty = (y) => Math.log10(Math.max(y, 10 ** lo)) // zeros sit on the bottom edge
  } else {
    yTicks = linearTicks(Math.min(0, least(ys)), most(ys)).map((value) => ({ value, label: compact(value) }))
    ty = (y) => y
  }
  const y0 = yTicks[0].value
  const y1 = yTicks[yTicks.length - 1].value
  const syTick = (v: number) => PAD.top + PLOT_H - ((v - y0) / (y1 - y0)) * PLOT_H // v: on the axis scale
  const sy = (y: number) => syTick(ty(y))

  const out: string[] = []
  for (const t of yTicks) {
    const y = coord(syTick(t.value))
    out.push(`<line class="grid" x1="${PAD.left}" x2="${W - PAD.right}" y1="${y}" y2="${y}"/>`)
    out.push(
      `<text class="tick" x="${PAD.left - 6}" y="${y}" text-anchor="end" dy="0.32em">${esc(t.label)}</text>`,
    )
  }
  for (const t of xTicks) {
    const x = coord(sx(t.value))
    out.push(`<line class="axis" x1="${x}" x2="${x}" y1="${PAD.top + PLOT_H}" y2="${PAD.top + PLOT_H + 5}"/>`)
    out.push(
      `<text class="tick" x="${x}" y="${PAD.top + PLOT_H + 18}" text-anchor="middle">${esc(t.label)}</text>`,
    )
  }
  out.push(
    `<line class="axis" x1="${PAD.left}" x2="${W - PAD.right}" y1="${PAD.top + PLOT_H}" y2="${PAD.top + PLOT_H}"/>`,
    `<line class="axis" x1="${PAD.left}" x2="${PAD.left}" y1="${PAD.top}" y2="${PAD.top + PLOT_H}"/>`,
    `<text class="label" x="${PAD.left + PLOT_W / 2}" y="${H - 8}" text-anchor="middle">${esc(options.xLabel)}</text>`,
    `<text class="label" transform="translate(14 ${PAD.top + PLOT_H / 2}) rotate(-90)" text-anchor="middle">` +
      `${esc(options.yLabel)}${log ? ' (log scale)' : ''}</text>`,
  )

  // The lines: a polyline per run of values, a dot for a value with gaps on both sides.
  let legendX = PAD.left
  for (const s of series) {
    const stroke = `stroke="${esc(s.color)}"${s.dash ? ` stroke-dasharray="${esc(s.dash)}"` : ''}`
    const runs: (readonly [number, number])[][] = [[]]
    for (const [x, y] of s.points) {
      if (y === null) runs.push([])
      else runs[runs.length - 1].push([x, y])
    }
    for (const run of runs) {
      if (run.length === 1) {
        out.push(
          `<circle cx="${coord(sx(run[0][0]))}" cy="${coord(sy(run[0][1]))}" r="2.5" fill="${esc(s.color)}"/>`,
        )
      } else if (run.length > 1) {
        const pts = run.map(([x, y]) => `${coord(sx(x))},${coord(sy(y))}`).join(' ')
        out.push(`<polyline class="line" ${stroke} points="${pts}"><title>${esc(s.name)}</title></polyline>`)
      }
    }
    out.push(`<line class="line" ${stroke} x1="${legendX}" x2="${legendX + 24}" y1="16" y2="16"/>`)
    out.push(`<text class="legend" x="${legendX + 30}" y="16" dy="0.32em">${esc(s.name)}</text>`)
    legendX += 48 + s.name.length * 7
  }

  // Hover columns: a transparent rect per x whose native tooltip lists every series there.
  const { hoverX, hoverY = (y: number) => num(y, 2) } = options
  if (hoverX) {
    const columns = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b)
    const byX = series.map((s) => new Map(s.points))
    columns.forEach((x, i) => {
      const left = i === 0 ? sx(x) - 4 : (sx(columns[i - 1]) + sx(x)) / 2
      const right = i === columns.length - 1 ? sx(x) + 4 : (sx(x) + sx(columns[i + 1])) / 2
      const lines = series.map((s, j) => {
        const y = byX[j].get(x) ?? null
        return `${s.name}: ${isValue(y) ? hoverY(y) : '–'}`
      })
      out.push(
        `<rect class="hover" x="${coord(left)}" y="${PAD.top}" width="${coord(right - left)}" height="${PLOT_H}">` +
          `<title>${esc([hoverX(x), ...lines].join('\n'))}</title></rect>`,
      )
    })
  }
  return figure(out.join(''))
}

// ---------------------------------------------------------------------------------------------------
// The report

/** Log when the top of the range is over 50× the typical value, so p50 stays readable next to max. */
const wantsLog = (typical: number, top: number): boolean => top > 0 && (typical <= 0 || top / typical > 50)

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted.length === 0 ? 0 : sorted[Math.floor(sorted.length / 2)]
}

const perSecond = (timeline: readonly TimelinePoint[], pick: (p: TimelinePoint) => number | null) =>
  timeline.map((p) => [p.second, pick(p)] as const)

function throughputChart(timeline: readonly TimelinePoint[]): string {
  const series: Series[] = [
    { name: 'completed/s', color: '#2563eb', points: perSecond(timeline, (p) => p.completed) },
    { name: '2xx/s', color: '#16a34a', points: perSecond(timeline, (p) => p.ok) },
    { name: 'errors/s', color: '#dc2626', points: perSecond(timeline, (p) => p.errors) },
  ]
  if (timeline.some((p) => p.targetRate !== null)) {
    series.push({
      name: 'target rate',
      color: '#6b7280',
      dash: '6 4',
      points: perSecond(timeline, (p) => p.targetRate),
    })
  }
  return lineChart({
    title: 'Throughput over time',
    xLabel: 'time (s)',
    yLabel: 'requests per second',
    series,
    xMinStep: 1,
    hoverX: (x) => `second ${num(x)}`,
    hoverY: (y) => `${num(y, 1)}/s`,
  })
}

function latencyChart(timeline: readonly TimelinePoint[]): string {
  const pick = (f: (p: TimelinePoint) => number | null) => perSecond(timeline, f)
  const p50s = timeline.map((p) => p.p50Ms).filter(isValue)
  const maxes = timeline.map((p) => p.maxMs).filter(isValue)
  return lineChart({
    title: 'Latency over time',
    xLabel: 'time (s)',
    yLabel: 'latency (ms)',
    yLog: wantsLog(median(p50s), most(maxes)),
    series: [
      { name: 'p50', color: '#16a34a', points: pick((p) => p.p50Ms) },
      { name: 'p95', color: '#d97706', points: pick((p) => p.p95Ms) },
      { name: 'p99', color: '#dc2626', points: pick((p) => p.p99Ms) },
      { name: 'max', color: '#7c3aed', points: pick((p) => p.maxMs) },
    ],
    xMinStep: 1,
    hoverX: (x) => `second ${num(x)}`,
    hoverY: (y) => `${ms(y)} ms`,
  })
}

/** Percentile p on an HdrHistogram axis: log10(1 / (1 − p/100)); 90% → 1, 99% → 2, 99.9% → 3. */
const percentilePosition = (p: number): number => Math.log10(100 / (100 - p))
const decadeLabel = (k: number): string =>
  k === 0 ? '0%' : k === 1 ? '90%' : `99${k > 2 ? '.' : ''}${'9'.repeat(k - 2)}%`

function percentileChart(percentiles: LoadResult['percentiles']): string {
  const positions = percentiles.map(([p]) =>
    p >= 0 && p < 100 ? percentilePosition(p) : p >= 100 ? null : Number.NaN,
  )
  const lastFinite = Math.max(0, most(positions.filter((x): x is number => x !== null && Number.isFinite(x))))
  const points = percentiles.map(([, v], i) => [positions[i] ?? lastFinite, v] as const) // 100% → the last finite x
  const decades = Math.max(1, Math.ceil(lastFinite - 1e-9))
  const ms50 = percentiles.find(([p]) => p >= 50)?.[1] ?? 0
  return lineChart({
    title: 'Latency by percentile',
    xLabel: 'percentile',
    yLabel: 'latency (ms)',
    yLog: wantsLog(ms50, most(percentiles.map(([, v]) => v).filter(Number.isFinite))),
    xTicks: Array.from({ length: decades + 1 }, (_, k) => ({ value: k, label: decadeLabel(k) })),
    series: [{ name: 'latency', color: '#2563eb', points }],
  })
}

function planText(plan: LoadPlan): string {
  const preset = plan.preset ? `preset <b>${esc(plan.preset)}</b>, ` : ''
  if (plan.model === 'closed') {
    return `${preset}${num(plan.connections)} connections for ${duration(plan.durationMs)}`
  }
  const steps = plan.stages.map((s) => `${duration(s.durationMs)} → ${plain(s.target)}/s`)
  return `${preset}start ${plain(plan.startRate)}/s, ${steps.length ? steps.join(', ') : 'no stages'}`
}

type Row = readonly [label: string, value: string]

/** A two-column table; labels and values are HTML already. */
const table = (title: string, rows: readonly Row[]): string =>
  `<table><caption>${esc(title)}</caption>${rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join('')}</table>`

const pct = (fraction: number): string => `${num(fraction * 100, 2)}%`

export function renderHtmlReport(result: LoadResult): string {
  const { plan, requests: r, latencyMs: l, generator: g } = result
  const s = r.summary
  const headerNames = Object.keys(plan.headers ?? {})
  const failed = result.thresholds.filter((t) => !t.pass).length
  const banner =
    result.thresholds.length === 0
      ? ''
      : result.pass
        ? `<div class="banner pass">PASS — all ${result.thresholds.length} thresholds met</div>`
        : `<div class="banner fail">FAIL — ${failed} of ${result.thresholds.length} thresholds not met</div>`
  const stopped = result.interrupted
    ? '<p class="warning">Stopped early (Ctrl-C): the figures cover only the time it ran.</p>'
    : ''
  const limits = [
    `timeout ${duration(plan.timeoutMs)}`,
    plan.model === 'open' ? `up to ${num(plan.connections)} connections, queue ${num(plan.maxQueued)}` : '',
    plan.maxRequests > 0 ? `stop after ${num(plan.maxRequests)} requests` : '',
  ]
  const p = plan.payload
  const payload =
    `${p.batch > 0 ? `NDJSON batches of ${num(p.batch)} events` : 'one event per request'}${p.gzip ? ', gzip' : ''}, ` +
    `${num(p.users)} users, ${num(p.campaigns)} campaigns, ${pct(p.duplicateRatio)} duplicates`
  const header: Row[] = [
    ['URL', `<code>${esc(plan.url)}</code>`],
    ['Model', `${esc(plan.model)}: ${planText(plan)}`],
    ['Limits', limits.filter(Boolean).join(', ')],
    ['Payload', payload],
    ['Headers', headerNames.length ? headerNames.map((h) => `<code>${esc(h)}</code>`).join(' ') : 'none'],
    ['Started', esc(result.startedAt)],
    ['Machine', esc(result.machine)],
    ['Duration', `${num(result.durationSeconds, 1)} s`],
  ]
  const codes = Object.entries(r.byStatus ?? {}).sort(
    ([a], [b]) => Number(a) - Number(b) || a.localeCompare(b),
  )
  const cpuWarning =
    g.cpuPercent >= 90
      ? `<p class="warning">Generator CPU was ${num(g.cpuPercent)}%: the generator may have been the bottleneck.</p>`
      : ''
  const thresholds = result.thresholds.length
    ? `<h2>Thresholds</h2><table class="thresholds"><tr><th>Threshold</th><th>Actual</th><th>Result</th></tr>` +
      result.thresholds
        .map((t) => {
          const unit = t.unit === '%' || t.unit === 'ms' || t.unit === '' ? esc(t.unit) : ` ${esc(t.unit)}`
          const verdict = t.pass ? 'pass' : 'fail'
          return `<tr class="${verdict}"><td><code>${esc(t.expression)}</code></td><td>${num(t.actual, 2)}${unit}</td><td>${verdict.toUpperCase()}</td></tr>`
        })
        .join('') +
      '</table>'
    : ''

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>spillway load — ${esc(plan.url)}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #111827; margin: 24px auto; max-width: 1040px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 12px; } h2 { font-size: 17px; margin: 28px 0 8px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
table { border-collapse: collapse; margin: 0 0 12px; } caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { text-align: left; padding: 3px 12px 3px 0; border-bottom: 1px solid #e5e7eb; vertical-align: top; }
.grid-tables { display: flex; flex-wrap: wrap; gap: 8px 32px; } .grid-tables td { text-align: right; }
.banner { font-size: 20px; font-weight: 700; padding: 10px 16px; border-radius: 6px; margin: 12px 0; color: #fff; }
.banner.pass, tr.pass td:last-child { background: #16a34a; color: #fff; } .banner.fail, tr.fail td:last-child { background: #dc2626; color: #fff; }
tr.pass td:last-child, tr.fail td:last-child { font-weight: 700; text-align: center; }
.thresholds td { padding-left: 8px; } .warning { background: #fef3c7; border-left: 4px solid #d97706; padding: 8px 12px; }
.chart { margin: 16px 0; } figcaption { font-weight: 600; font-size: 16px; } svg { width: 100%; height: auto; }
svg text { font: 12px system-ui, sans-serif; fill: #374151; } svg .nodata { font-size: 16px; fill: #9ca3af; text-anchor: middle; }
.grid { stroke: #e5e7eb; } .axis { stroke: #6b7280; } .line { fill: none; stroke-width: 1.8; stroke-linejoin: round; }
.hover { fill: transparent; } .hover:hover { fill: rgba(37, 99, 235, 0.08); }
</style>
</head>
<body>
<h1>spillway load report</h1>
${banner}${stopped}
${table('Run', header)}
<h2>Summary</h2>
<div class="grid-tables">
${table('Requests', [
  ['scheduled', num(r.scheduled)],
  ['sent', num(r.sent)],
  ['completed', num(r.completed)],
  ['2xx', num(r.ok)],
  ['error rate', pct(r.errorRate)],
  ['events sent', num(result.events.sent)],
  ['duplicate events', num(result.events.duplicates)],
])}
${table('Outcomes', [
  ['202', num(s['202'])],
  ['400', num(s['400'])],
  ['429', num(s['429'])],
  ['503', num(s['503'])],
  ['other', num(s.other)],
  ['timeouts', num(s.timeouts)],
  ['connection errors', num(s.connectionErrors)],
  ['dropped', num(s.dropped)],
])}
${table('By status code', codes.length ? codes.map(([code, n]) => [esc(code), num(n)] as const) : [['none', '']])}
${table('Throughput', [
  ['requests/s', num(result.throughput.requestsPerSec, 1)],
  ['2xx/s', num(result.throughput.okPerSec, 1)],
  ['events/s', num(result.throughput.eventsPerSec, 1)],
])}
${table('Latency (ms)', [
  ['min', ms(l.min)],
  ['mean', ms(l.mean)],
  ['p50', ms(l.p50)],
  ['p90', ms(l.p90)],
  ['p95', ms(l.p95)],
  ['p99', ms(l.p99)],
  ['p99.9', ms(l.p999)],
  ['max', ms(l.max)],
])}
${table('Generator', [
  ['CPU', `${num(g.cpuPercent)}%`],
  ['connections opened', num(g.connectionsOpened)],
  ['max queued', num(g.maxQueued)],
  ['schedule lag p99', `${ms(g.scheduleLagP99Ms)} ms`],
])}
</div>
${cpuWarning}
${thresholds}
<h2>Charts</h2>
${throughputChart(result.timeline)}
${latencyChart(result.timeline)}
${percentileChart(result.percentiles)}
</body>
</html>
`
}

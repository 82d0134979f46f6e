/** The text `spillway load` prints: the live progress line and the summary at the end. */
import type { Progress } from './runner.ts'
import type { LoadPlan, LoadResult } from './types.ts'

const int = (n: number) => Math.round(n).toLocaleString('en-US')
const ms = (n: number | null) =>
  n === null ? '-' : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0)

/** One line, rewritten in place on a TTY each second. */
export function formatProgress(p: Progress): string {
  const s = p.summary
  const errors = s.other + s.timeouts + s.connectionErrors + s.dropped
  return [
    `${p.elapsedSeconds.toFixed(0).padStart(4)}s`,
    p.targetRate === null ? null : `target ${int(p.targetRate)}/s`,
    `answered ${int(p.answeredPerSec)}/s`,
    `2xx ${int(p.ok)}`,
    s['400'] ? `400 ${int(s['400'])}` : null,
    s['429'] ? `429 ${int(s['429'])}` : null,
    s['503'] ? `503 ${int(s['503'])}` : null,
    errors ? `errors ${int(errors)}` : null,
    `p99 ${ms(p.p99Ms)} ms`,
    `in flight ${int(p.inFlight)}`,
    p.queued ? `queued ${int(p.queued)}` : null,
  ]
    .filter((part) => part !== null)
    .join('  ')
}

export function describePlan(plan: LoadPlan): string {
  const preset = plan.preset ? ` (preset ${plan.preset})` : ''
  if (plan.model === 'closed') {
    return `closed model${preset}: ${plan.connections} connections for ${(plan.durationMs / 1000).toFixed(1)} s`
  }
  let from = plan.startRate
  const steps = plan.stages.map((st) => {
    const step =
      st.target === from
        ? `${fmtDuration(st.durationMs)} at ${int(st.target)}/s`
        : `${fmtDuration(st.durationMs)} → ${int(st.target)}/s`
    from = st.target
    return step
  })
  const limit = plan.maxRequests > 0 ? `, at most ${int(plan.maxRequests)} requests` : ''
  return `open model${preset}: from ${int(plan.startRate)}/s, ${steps.join(', ')}${limit}; up to ${plan.connections} connections`
}

function fmtDuration(durationMs: number): string {
  return durationMs % 1000 === 0 ? `${durationMs / 1000}s` : `${(durationMs / 1000).toFixed(2)}s`
}

export function formatSummary(r: LoadResult): string {
  const s = r.requests.summary
  const l = r.latencyMs
  const p = r.plan.payload
  const what = `${p.batch > 0 ? `NDJSON batches of ${p.batch}` : 'single events'}${p.gzip ? ', gzip' : ''}${p.duplicateRatio > 0 ? `, ${(p.duplicateRatio * 100).toFixed(1)}% duplicates` : ''}`
  const others = Object.entries(r.requests.byStatus).filter(
    ([code]) => !['202', '400', '429', '503'].includes(code),
  )
  const lines = [
    `spillway load  ${r.plan.url}`,
    `  ${describePlan(r.plan)}`,
    `  ${what}`,
    '',
    ...(r.interrupted ? ['  stopped early (Ctrl-C): the figures cover only the time it ran'] : []),
    `  requests    scheduled ${int(r.requests.scheduled)}  sent ${int(r.requests.sent)}  answered ${int(r.requests.completed - s.timeouts - s.connectionErrors)}  in ${r.durationSeconds.toFixed(1)} s`,
    `  status      202 ${int(s['202'])}  400 ${int(s['400'])}  429 ${int(s['429'])}  503 ${int(s['503'])}  other ${int(s.other)}${others.length ? ` (${others.map(([c, n]) => `${c}: ${int(n)}`).join(', ')})` : ''}`,
    `              timeouts ${int(s.timeouts)}  connection errors ${int(s.connectionErrors)}  dropped ${int(s.dropped)}  error rate ${(r.requests.errorRate * 100).toFixed(2)}%`,
    `  throughput  ${int(r.throughput.requestsPerSec)} req/s answered  ${int(r.throughput.okPerSec)} 2xx/s  ${int(r.throughput.eventsPerSec)} events/s accepted`,
    `  latency ms  min ${ms(l.min)}  mean ${ms(l.mean)}  p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p95 ${ms(l.p95)}  p99 ${ms(l.p99)}  p99.9 ${ms(l.p999)}  max ${ms(l.max)}`,
    `  generator   cpu ${r.generator.cpuPercent.toFixed(0)}% of a core  connections opened ${int(r.generator.connectionsOpened)}  max queued ${int(r.generator.maxQueued)}  schedule lag p99 ${ms(r.generator.scheduleLagP99Ms)} ms`,
  ]
  if (r.generator.cpuPercent >= 90) {
    lines.push('              the generator used a whole core: it may have been the bottleneck')
  }
  if (r.thresholds.length > 0) {
    lines.push('', `  thresholds  ${r.pass ? 'all passed' : 'FAILED'}`)
    const width = Math.max(...r.thresholds.map((t) => t.expression.length))
    for (const t of r.thresholds) {
      const actual = t.unit === 'ms' ? ms(t.actual) : t.unit === '%' ? t.actual.toFixed(2) : int(t.actual)
      lines.push(`    ${t.pass ? 'pass' : 'FAIL'}  ${t.expression.padEnd(width)}  ${actual} ${t.unit}`)
    }
  }
  return `${lines.join('\n')}\n`
}

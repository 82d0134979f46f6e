import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { test } from 'node:test'
import { renderHtmlReport } from '../../../src/loadgen/report-html.ts'
import type { LoadPlan, LoadResult, TimelinePoint } from '../../../src/loadgen/types.ts'

const plan: LoadPlan = {
  url: 'http://ingest-1.internal:8080/events',
  model: 'open',
  startRate: 100,
  stages: [
    { durationMs: 30_000, target: 2000 },
    { durationMs: 20_000, target: 2000 },
    { durationMs: 10_000, target: 0 },
  ],
  durationMs: 60_000,
  connections: 256,
  maxRequests: 0,
  timeoutMs: 5000,
  maxQueued: 10_000,
  headers: { authorization: 'Bearer secret-token', 'x-tenant': 'acme' },
  payload: {
    eventNames: ['page_view', 'click', 'purchase'],
    users: 10_000,
    campaigns: 20,
    channels: ['web', 'ios'],
    duplicateRatio: 0.01,
    batch: 0,
    gzip: false,
  },
  thresholds: ['p95<60ms', 'errors<1%', 'rate>=1200'],
  preset: 'ramp-2k',
}

/** The target of `plan` at time t seconds: 100 → 2000 over 30 s, hold 20 s, 2000 → 0 over 10 s. */
function targetAt(t: number): number {
  if (t < 30) return 100 + (1900 * t) / 30
  if (t < 50) return 2000
  return 2000 * (1 - (t - 50) / 10)
}

/** 60 seconds of a server that saturates at 1800 req/s: 429s above that, and a tail that grows with load. */
function timeline(): TimelinePoint[] {
  return Array.from({ length: 60 }, (_, i) => {
    const target = targetAt(i + 0.5)
    const sent = Math.round(target)
    const errors = Math.max(0, sent - 1800) + (i === 42 ? 35 : 0)
    const completed = i === 59 ? 0 : sent
    const load = Math.min(1, target / 1800)
    const p50 = 2 + 6 * load ** 4
    return {
      second: i + 1,
      targetRate: target,
      sent,
      completed,
      ok: completed - Math.min(errors, completed),
      errors: completed === 0 ? 0 : errors,
      p50Ms: completed === 0 ? null : p50,
      p95Ms: completed === 0 ? null : p50 * 3 + 40 * load ** 6,
      p99Ms: completed === 0 ? null : p50 * 6 + 120 * load ** 6,
      maxMs: completed === 0 ? null : p50 * 10 + (i === 42 ? 2400 : 300 * load ** 3),
    }
  })
}

function openResult(overrides: Partial<LoadResult> = {}): LoadResult {
  const points = timeline()
  const completed = points.reduce((n, p) => n + p.completed, 0)
  const ok = points.reduce((n, p) => n + p.ok, 0)
  const errorPercent = Math.round(((completed - ok) / completed) * 10_000) / 100
  // A long tail: [percentile, ms], as the histogram gives them, ending at [100, max].
  const percentiles: [number, number][] = [
    [0, 0.61],
    [50, 3.1],
    [75, 6],
    [90, 12.4],
    [95, 48.2],
    [99, 131.5],
    [99.5, 220],
    [99.9, 412.7],
    [99.95, 700],
    [99.99, 1400],
    [99.999, 2400],
    [100, 2430],
  ]
  return {
    tool: 'spillway load',
    startedAt: '2025-06-01T12:00:00.000Z',
    machine: 'loadgen-1 (16 × AMD EPYC 7B13, linux x64, node 24.11.0)',
    plan,
    durationSeconds: 60.02,
    requests: {
      scheduled: completed + 41,
      sent: completed + 41,
      completed,
      ok,
      summary: {
        '202': ok,
        '400': 3,
        '429': completed - ok - 12,
        '503': 7,
        other: 2,
        timeouts: 41,
        connectionErrors: 0,
        dropped: 0,
      },
      byStatus: { '202': ok, '400': 3, '429': completed - ok - 12, '503': 7, '500': 2 },
      errorRate: (completed - ok) / completed,
    },
    events: { sent: completed + 41, duplicates: Math.round(completed * 0.01) },
    throughput: { requestsPerSec: completed / 60, okPerSec: ok / 60, eventsPerSec: ok / 60 },
    latencyMs: { min: 0.61, mean: 6.4, p50: 3.1, p90: 12.4, p95: 48.2, p99: 131.5, p999: 412.7, max: 2430 },
    percentiles,
    timeline: points,
    thresholds: [
      { expression: 'p95<60ms', actual: 48.2, unit: 'ms', pass: true },
      { expression: 'errors<1%', actual: errorPercent, unit: '%', pass: false },
      { expression: 'rate>=1200', actual: 1288.4, unit: 'req/s', pass: true },
    ],
    generator: { cpuPercent: 41, connectionsOpened: 212, maxQueued: 180, scheduleLagP99Ms: 1.2 },
    pass: false,
    interrupted: false,
    ...overrides,
  }
}

function emptyResult(): LoadResult {
  const zero = {
    '202': 0,
    '400': 0,
    '429': 0,
    '503': 0,
    other: 0,
    timeouts: 0,
    connectionErrors: 0,
    dropped: 0,
  }
  return {
    ...openResult(),
    durationSeconds: 0,
    requests: { scheduled: 0, sent: 0, completed: 0, ok: 0, summary: zero, byStatus: {}, errorRate: 0 },
    events: { sent: 0, duplicates: 0 },
    throughput: { requestsPerSec: 0, okPerSec: 0, eventsPerSec: 0 },
    latencyMs: { min: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0 },
    percentiles: [],
    timeline: [],
    thresholds: [],
    generator: { cpuPercent: 0, connectionsOpened: 0, maxQueued: 0, scheduleLagP99Ms: 0 },
    pass: true,
  }
}

/** The charts, by their captions. */
function charts(html: string): Map<string, string> {
  const found = new Map<string, string>()
  for (const m of html.matchAll(
    /<figure class="chart"><figcaption>([^<]*)<\/figcaption>([\s\S]*?)<\/figure>/g,
  )) {
    found.set(m[1], m[2])
  }
  return found
}

function assertClean(html: string): void {
  assert.ok(html.startsWith('<!doctype html>\n<html'), 'starts with the doctype')
  assert.equal(html.match(/<html/g)?.length, 1)
  assert.ok(html.trimEnd().endsWith('</html>'))
  assert.doesNotMatch(html, /NaN|Infinity|undefined/)
  assert.doesNotMatch(
    html,
    /<(script|link|img|iframe)\b|<[^>]*\s(src|href)=|@import|url\(/i,
    'nothing external',
  )
  assert.equal((html.match(/<svg/g) ?? []).length, 3)
  assert.equal((html.match(/<\/svg>/g) ?? []).length, 3)
}

// Set SPILLWAY_HTML_SAMPLE=/tmp/sample-report.html to look at the fixture's report in a browser.
const samplePath = process.env.SPILLWAY_HTML_SAMPLE
if (samplePath) writeFileSync(samplePath, renderHtmlReport(openResult()))

test('an open run renders one self-contained document with the plan, the tables and three charts', () => {
  const html = renderHtmlReport(openResult())
  assertClean(html)
  assert.ok(html.includes('http://ingest-1.internal:8080/events'))
  assert.ok(html.includes('ramp-2k'))
  assert.ok(html.includes('start 100/s, 30s → 2000/s, 20s → 2000/s, 10s → 0/s'))
  assert.ok(html.includes('2025-06-01T12:00:00.000Z'))
  assert.ok(html.includes('loadgen-1 (16 × AMD EPYC 7B13'))
  // Header names are shown, their values (tokens) are not.
  assert.ok(html.includes('<code>authorization</code>'))
  assert.ok(!html.includes('secret-token'))
  for (const label of [
    '202',
    '400',
    '429',
    '503',
    'other',
    'timeouts',
    'connection errors',
    'dropped',
    '500',
  ]) {
    assert.ok(html.includes(`<th>${label}</th>`), label)
  }
  for (const label of [
    'min',
    'mean',
    'p50',
    'p90',
    'p95',
    'p99',
    'p99.9',
    'max',
    'requests/s',
    '2xx/s',
    'events/s',
  ]) {
    assert.ok(html.includes(`<th>${label}</th>`), label)
  }
  assert.ok(html.includes('<th>p99.9</th><td>413</td>'))
  assert.ok(html.includes('<th>max</th><td>2,430</td>'))
  assert.ok(html.includes('<th>schedule lag p99</th><td>1.2 ms</td>'))
  assert.ok(!html.includes('the generator may have been the bottleneck'))

  const found = charts(html)
  assert.deepEqual([...found.keys()], ['Throughput over time', 'Latency over time', 'Latency by percentile'])
  const throughput = found.get('Throughput over time')!
  for (const name of ['completed/s', '2xx/s', 'errors/s', 'target rate'])
    assert.ok(throughput.includes(`>${name}<`), name)
  assert.ok(throughput.includes('stroke-dasharray'), 'the target line is dashed')
  // The latency tail (2.4 s max against a ~3 ms p50) calls for a log axis.
  assert.ok(found.get('Latency over time')!.includes('(log scale)'))
  const percentile = found.get('Latency by percentile')!
  for (const label of ['0%', '90%', '99%', '99.9%', '99.99%', '99.999%'])
    assert.ok(percentile.includes(`>${label}<`), label)
})

test('thresholds are listed with their actual values and a FAIL banner when one fails', () => {
  const html = renderHtmlReport(openResult())
  assert.ok(html.includes('class="banner fail">FAIL — 1 of 3 thresholds not met'))
  assert.ok(html.includes('<code>p95&lt;60ms</code></td><td>48.2ms</td><td>PASS</td>'))
  assert.ok(html.includes('<code>errors&lt;1%</code></td><td>5.47%</td><td>FAIL</td>'))
  assert.ok(html.includes('<th>error rate</th><td>5.47%</td>'))
  assert.ok(html.includes('<code>rate&gt;=1200</code></td><td>1,288.4 req/s</td><td>PASS</td>'))
  assert.match(html, /<tr class="fail"><td><code>errors&lt;1%/)

  const passing = renderHtmlReport(
    openResult({
      pass: true,
      thresholds: [{ expression: 'p95<60ms', actual: 48.2, unit: 'ms', pass: true }],
    }),
  )
  assert.ok(passing.includes('class="banner pass">PASS'))
  assert.ok(!passing.includes('FAIL'))
})

test('every string from the result is escaped', () => {
  const hostile = '"><script>alert(1)</script>'
  const html = renderHtmlReport(
    openResult({
      plan: {
        ...plan,
        url: `http://x/${hostile}`,
        preset: `<b>${hostile}`,
        headers: { [`<img src=x onerror=alert(1)>`]: 'v' },
      },
      machine: hostile,
      startedAt: hostile,
      requests: { ...openResult().requests, byStatus: { [hostile]: 1 } },
      thresholds: [{ expression: `p95<${hostile}`, actual: 1, unit: hostile, pass: false }],
    }),
  )
  assertClean(html)
  assert.ok(!html.includes('<script>'))
  assert.ok(!html.includes('<img'))
  assert.ok(!html.includes('<b>&quot;'), 'the preset is escaped inside its <b>')
  assert.ok(html.includes('http://x/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;'))
})

test('numbers that are not finite print as a dash, never as NaN or Infinity', () => {
  const result = openResult()
  const html = renderHtmlReport({
    ...result,
    generator: { ...result.generator, cpuPercent: Number.NaN },
    throughput: { ...result.throughput, requestsPerSec: Number.POSITIVE_INFINITY },
    latencyMs: { ...result.latencyMs, max: Number.NaN },
    timeline: result.timeline.map((p, i) =>
      i === 10 ? { ...p, p95Ms: Number.NaN, completed: Number.POSITIVE_INFINITY } : p,
    ),
    percentiles: [...result.percentiles, [Number.NaN, 3]],
  })
  assertClean(html)
  assert.ok(html.includes('<th>requests/s</th><td>–</td>'))
  assert.ok(html.includes('<th>CPU</th><td>–%</td>'))
})

test('an empty result shows "no data" charts and no banner', () => {
  const html = renderHtmlReport(emptyResult())
  assertClean(html)
  assert.equal((html.match(/>no data</g) ?? []).length, 3)
  assert.ok(!html.includes('class="banner'))
  assert.ok(!html.includes('Thresholds'))
  assert.ok(html.includes('<th>error rate</th><td>0%</td>'))
})

test('a closed run shows its connections and no target line', () => {
  const result = openResult()
  const html = renderHtmlReport({
    ...result,
    plan: {
      ...plan,
      model: 'closed',
      preset: undefined,
      stages: [],
      startRate: 0,
      connections: 64,
      durationMs: 120_000,
    },
    timeline: result.timeline.map((p) => ({ ...p, targetRate: null })),
  })
  assertClean(html)
  assert.ok(html.includes('closed: 64 connections for 2m'))
  const throughput = charts(html).get('Throughput over time')!
  assert.ok(!throughput.includes('target rate'))
  assert.ok(!throughput.includes('stroke-dasharray'))
})

test('charts cope with a single point, all zeros, gaps and a busy generator', () => {
  const one: TimelinePoint = {
    second: 1,
    targetRate: 10,
    sent: 10,
    completed: 10,
    ok: 10,
    errors: 0,
    p50Ms: 1,
    p95Ms: 2,
    p99Ms: 3,
    maxMs: 4,
  }
  const zero: TimelinePoint = {
    ...one,
    targetRate: 0,
    sent: 0,
    completed: 0,
    ok: 0,
    p50Ms: 0,
    p95Ms: 0,
    p99Ms: 0,
    maxMs: 0,
  }
  const gap: TimelinePoint = { ...one, p50Ms: null, p95Ms: null, p99Ms: null, maxMs: null }
  const cases: Partial<LoadResult>[] = [
    { timeline: [one], percentiles: [[50, 1]] },
    { timeline: [{ ...zero, second: 0 }], percentiles: [[100, 0]] },
    {
      timeline: Array.from({ length: 30 }, (_, i) => ({ ...zero, second: i + 1 })),
      percentiles: [
        [0, 0],
        [50, 0],
        [100, 0],
      ],
    },
    {
      timeline: [
        one,
        { ...gap, second: 2 },
        { ...one, second: 3 },
        { ...gap, second: 4 },
        { ...one, second: 5, maxMs: 900 },
      ],
    },
    { generator: { cpuPercent: 97, connectionsOpened: 1, maxQueued: 0, scheduleLagP99Ms: 35 } },
  ]
  for (const overrides of cases) {
    const html = renderHtmlReport(openResult(overrides))
    assertClean(html)
    assert.ok(!html.includes('no data'), JSON.stringify(overrides))
  }
  // A lone value between gaps is a dot, not an invisible one-point line.
  const gaps = charts(renderHtmlReport(openResult(cases[3]))).get('Latency over time')!
  assert.ok(gaps.includes('<circle'))
  assert.ok(renderHtmlReport(openResult(cases[4])).includes('the generator may have been the bottleneck'))
})

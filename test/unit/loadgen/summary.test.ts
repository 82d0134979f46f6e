import assert from 'node:assert/strict'
import { test } from 'node:test'
import { planFromFlags } from '../../../src/loadgen/plan.ts'
import { describePlan, formatProgress, formatSummary } from '../../../src/loadgen/summary.ts'
import type { LoadResult } from '../../../src/loadgen/types.ts'

const summary = {
  '202': 9000,
  '400': 10,
  '429': 0,
  '503': 990,
  other: 3,
  timeouts: 2,
  connectionErrors: 1,
  dropped: 4,
}

test('the plan reads as the stages it will run', () => {
  assert.equal(
    describePlan(planFromFlags({ preset: 'ramp-spike' })),
    'open model (preset ramp-spike): from 0/s, 30s → 2,000/s, 60s at 2,000/s, 10s → 20,000/s, 30s at 20,000/s, 10s → 0/s; up to 1000 connections',
  )
  assert.equal(
    describePlan(planFromFlags({ connections: '8', duration: '5s' })),
    'closed model: 8 connections for 5.0 s',
  )
  assert.match(
    describePlan(planFromFlags({ rate: '10', burst: '50', workers: '2' })),
    /at most 50 requests; up to 2 connections/,
  )
})

test('the progress line shows the rate, the statuses that happened, p99 and what is waiting', () => {
  const line = formatProgress({
    elapsedSeconds: 12.2,
    targetRate: 15_000,
    answeredPerSec: 14_998,
    summary,
    ok: 9000,
    p99Ms: 12.345,
    inFlight: 40,
    queued: 0,
  })
  assert.equal(
    line,
    '  12s  target 15,000/s  answered 14,998/s  2xx 9,000  400 10  503 990  errors 10  p99 12.3 ms  in flight 40',
  )
})

test('the summary names every status, the latency percentiles, the generator and each threshold', () => {
  const plan = planFromFlags({ rate: '1000', duration: '10s', batch: '10', gzip: 'true', duplicates: '2%' })
  const result: LoadResult = {
    tool: 'spillway load',
    startedAt: '2026-11-23T00:00:00.000Z',
    machine: 'test',
    plan,
    durationSeconds: 10.02,
    requests: {
      scheduled: 10_000,
      sent: 9996,
      completed: 10_006,
      ok: 9000,
      summary,
      byStatus: { 202: 9000, 400: 10, 418: 3, 503: 990 },
      errorRate: 0.1,
    },
    events: { sent: 99_960, duplicates: 2000 },
    throughput: { requestsPerSec: 1000.3, okPerSec: 898.2, eventsPerSec: 8982 },
    latencyMs: { min: 0.2, mean: 3.1, p50: 2.5, p90: 5, p95: 7.25, p99: 40.1, p999: 120, max: 1500 },
    percentiles: [],
    timeline: [],
    thresholds: [
      { expression: 'p95<60ms', actual: 7.25, unit: 'ms', pass: true },
      { expression: 'errors<1%', actual: 10, unit: '%', pass: false },
    ],
    generator: { cpuPercent: 95, connectionsOpened: 12, maxQueued: 3, scheduleLagP99Ms: 0.5 },
    pass: false,
    interrupted: true,
  }
  const text = formatSummary(result)
  assert.match(text, /NDJSON batches of 10, gzip, 2\.0% duplicates/)
  assert.match(text, /stopped early \(Ctrl-C\)/)
  assert.match(text, /202 9,000 {2}400 10 {2}429 0 {2}503 990 {2}other 3 \(418: 3\)/)
  assert.match(text, /timeouts 2 {2}connection errors 1 {2}dropped 4 {2}error rate 10\.00%/)
  assert.match(text, /p50 2\.50 {2}p90 5\.00 {2}p95 7\.25 {2}p99 40\.1 {2}p99\.9 120 {2}max 1500/)
  assert.match(text, /it may have been the bottleneck/)
  assert.match(text, /thresholds {2}FAILED/)
  assert.match(text, /pass {2}p95<60ms {3}7\.25 ms/)
  assert.match(text, /FAIL {2}errors<1% {2}10\.00 %/)
})

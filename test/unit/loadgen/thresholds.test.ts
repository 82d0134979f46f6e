import assert from 'node:assert/strict'
import { test } from 'node:test'
import { evaluate, type Measured, parseThreshold, parseThresholds } from '../../../src/loadgen/thresholds.ts'

const measured: Measured = {
  latencyAt: (p) => (p === 0 ? 0.2 : p === 100 ? 240 : p),
  meanMs: 12.5,
  errorRate: 0.004,
  requestsPerSec: 14_950,
  okPerSec: 14_890,
  eventsPerSec: 148_900,
}

test('latency thresholds read the percentile, in us, ms or s', () => {
  assert.deepEqual(parseThreshold('p95<60ms'), {
    expression: 'p95<60ms',
    metric: 'p95',
    comparison: '<',
    limit: 60,
  })
  assert.equal(parseThreshold('p(99.9) <= 1.5s').limit, 1500)
  assert.equal(parseThreshold('p99<800us').limit, 0.8)
  assert.equal(parseThreshold('max<250').limit, 250)
  const outcome = (text: string) => evaluate(parseThreshold(text), measured)
  assert.deepEqual(outcome('p95<60ms'), { expression: 'p95<60ms', actual: 95, unit: 'ms', pass: false })
  assert.equal(outcome('p95<96ms').pass, true)
  assert.equal(outcome('p(99.9)<100ms').actual, 99.9)
  assert.equal(outcome('p99<=99ms').pass, true)
  assert.equal(outcome('p99<99ms').pass, false)
  assert.equal(outcome('max<1s').pass, true)
  assert.equal(outcome('avg<10ms').pass, false)
  assert.equal(outcome('med<=50ms').pass, true)
  assert.equal(outcome('min>0.1ms').pass, true)
})

test('errors compare as a percentage or a fraction; rates per second', () => {
  assert.equal(parseThreshold('errors<1%').limit, 0.01)
  assert.equal(parseThreshold('errors<0.01').limit, 0.01)
  const e = evaluate(parseThreshold('errors<1%'), measured)
  assert.deepEqual(e, { expression: 'errors<1%', actual: 0.4, unit: '%', pass: true })
  assert.equal(evaluate(parseThreshold('errors<0.1%'), measured).pass, false)
  assert.equal(evaluate(parseThreshold('rate>=14000'), measured).pass, true)
  assert.equal(evaluate(parseThreshold('rate>15000/s'), measured).pass, false)
  assert.equal(evaluate(parseThreshold('ok_rate>14880'), measured).pass, true)
  assert.equal(evaluate(parseThreshold('events_rate>=150000'), measured).pass, false)
})

test('a comma list and repeated flags give every threshold', () => {
  assert.deepEqual(
    parseThresholds(['p95<60ms,p99<150ms', ' errors<1% ']).map((t) => t.expression),
    ['p95<60ms', 'p99<150ms', 'errors<1%'],
  )
})

test('a threshold that cannot mean anything is refused, naming it', () => {
  assert.throws(() => parseThreshold('p95 60ms'), /threshold "p95 60ms" is not metric<op>value/)
  assert.throws(() => parseThreshold('latency<5ms'), /unknown metric "latency"/)
  assert.throws(() => parseThreshold('p95<5%'), /a latency takes us, ms or s, not "%"/)
  assert.throws(() => parseThreshold('errors<5ms'), /errors take % or a fraction/)
  assert.throws(() => parseThreshold('errors<2'), /at most 1/)
  assert.throws(() => parseThreshold('p0<5ms'), /percentile must be in \(0, 100\]/)
  assert.throws(() => parseThreshold('p101<5ms'), /percentile/)
  assert.throws(() => parseThreshold('rate>5ms'), /a rate is per second/)
})

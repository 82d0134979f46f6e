/**
 * Thresholds: `p95<60ms`, `p(99)<=150ms`, `max<1s`, `avg<10ms`, `errors<1%`, `rate>=14000`.
 * A run whose thresholds all hold exits 0; one that breaks any exits 99 (as k6 does), so CI can
 * hold an endpoint to them.
 *
 * Latency metrics: pN (any percentile, `p99.9`, or k6's `p(99.9)`), avg/mean, med, min, max; units
 * us, ms (the default) or s. `errors`: the share of requests that were not answered 2xx (timeouts,
 * connection errors and dropped arrivals included), as `1%` or `0.01`. `rate`: answered requests
 * per second; `ok_rate`: 2xx answers per second; `events_rate`: events in 2xx answers per second.
 */
import type { ThresholdOutcome } from './types.ts'

export type Comparison = '<' | '<=' | '>' | '>='

export interface Threshold {
  readonly expression: string
  readonly metric: string
  readonly comparison: Comparison
  /** In the metric's unit: ms for latency, a fraction for errors, per second for rates. */
  readonly limit: number
}

/** What the thresholds are checked against. */
export interface Measured {
  /** Latency in ms at a percentile (0..100). */
  latencyAt(percentile: number): number
  readonly meanMs: number
  readonly errorRate: number
  readonly requestsPerSec: number
  readonly okPerSec: number
  readonly eventsPerSec: number
}

const LATENCY = /^(?:p\((\d+(?:\.\d+)?)\)|p(\d+(?:\.\d+)?)|avg|mean|med|min|max)$/
const RATES = ['rate', 'ok_rate', 'events_rate']

export function parseThreshold(text: string): Threshold {
  const expression = text.trim()
  const match =
    /^([a-z_]+(?:\(\d+(?:\.\d+)?\)|\d+(?:\.\d+)?)?)\s*(<=|>=|<|>)\s*([\d.]+)\s*([a-zµ%/]*)$/i.exec(expression)
  if (!match) {
    throw new RangeError(
      `threshold "${text}" is not metric<op>value; write e.g. p95<60ms, p(99)<150ms, errors<1%, rate>=14000`,
    )
  }
  const metric = match[1].toLowerCase()
  const comparison = match[2] as Comparison
  const value = Number(match[3])
  const unit = match[4].toLowerCase()
  if (!Number.isFinite(value)) throw new RangeError(`threshold "${text}": "${match[3]}" is not a number`)
  const latency = LATENCY.exec(metric)
  if (latency) {
    const percentile = Number(latency[1] ?? latency[2] ?? 0)
    if ((latency[1] ?? latency[2]) !== undefined && !(percentile > 0 && percentile <= 100)) {
      throw new RangeError(`threshold "${text}": the percentile must be in (0, 100], got ${percentile}`)
    }
    const scale = { '': 1, ms: 1, us: 0.001, µs: 0.001, s: 1000 }[unit]
    if (scale === undefined)
      throw new RangeError(`threshold "${text}": a latency takes us, ms or s, not "${unit}"`)
    return { expression, metric, comparison, limit: value * scale }
  }
  if (metric === 'errors' || metric === 'error_rate') {
    if (unit !== '%' && unit !== '')
      throw new RangeError(`threshold "${text}": errors take % or a fraction, not "${unit}"`)
    const limit = unit === '%' ? value / 100 : value
    if (limit > 1)
      throw new RangeError(`threshold "${text}": a fraction of errors is at most 1 (or write 100%)`)
    return { expression, metric: 'errors', comparison, limit }
  }
  if (RATES.includes(metric)) {
    if (unit !== '' && unit !== '/s')
      throw new RangeError(`threshold "${text}": a rate is per second, not "${unit}"`)
    return { expression, metric, comparison, limit: value }
  }
  throw new RangeError(
    `threshold "${text}": unknown metric "${metric}"; use pN, p(N), avg, med, min, max, errors, rate, ok_rate or events_rate`,
  )
}

/** Splits repeated and comma-separated threshold flags and parses each. */
export function parseThresholds(texts: readonly string[]): Threshold[] {
  return texts
    .flatMap((t) => t.split(','))
    .map((t) => t.trim())
    .filter((t) => t !== '')
    .map(parseThreshold)
}

export function evaluate(threshold: Threshold, measured: Measured): ThresholdOutcome {
  const { actual, unit } = actualOf(threshold, measured)
  const limit = threshold.metric === 'errors' ? threshold.limit * 100 : threshold.limit
  const pass = compare(actual, threshold.comparison, limit)
  return { expression: threshold.expression, actual, unit, pass }
}

function actualOf(t: Threshold, m: Measured): { actual: number; unit: string } {
  switch (t.metric) {
    case 'errors':
      return { actual: m.errorRate * 100, unit: '%' }
    case 'rate':
      return { actual: m.requestsPerSec, unit: 'req/s' }
    case 'ok_rate':
      return { actual: m.okPerSec, unit: 'req/s' }
    case 'events_rate':
      return { actual: m.eventsPerSec, unit: 'events/s' }
    case 'avg':
    case 'mean':
      return { actual: m.meanMs, unit: 'ms' }
    case 'med':
      return { actual: m.latencyAt(50), unit: 'ms' }
    case 'min':
      return { actual: m.latencyAt(0), unit: 'ms' }
    case 'max':
      return { actual: m.latencyAt(100), unit: 'ms' }
    default:
      return { actual: m.latencyAt(Number(/[\d.]+/.exec(t.metric)?.[0])), unit: 'ms' }
  }
}

function compare(actual: number, comparison: Comparison, limit: number): boolean {
  switch (comparison) {
    case '<':
      return actual < limit
    case '<=':
      return actual <= limit
    case '>':
      return actual > limit
    case '>=':
      return actual >= limit
  }
}

/** The exit code of a run: 0, or 99 when a threshold failed. */
export const EXIT_THRESHOLDS_FAILED = 99

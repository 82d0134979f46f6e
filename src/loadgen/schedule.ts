/**
 * When each request of an open-model run is due.
 *
 * The arrival rate starts at `startRate` and moves linearly to each stage's target over the stage
 * (k6's ramping-arrival-rate; a constant rate is one stage whose target is the start rate). The
 * number of arrivals due by time t is the integral of the rate, N(t); arrival i (from 0) is due at
 * the t where N(t) = i. So a constant 1000/s sends at 0, 1, 2 … ms whatever the server does: a slow
 * answer delays nothing that comes after it, and each request's latency is measured from this due
 * time — a queue in front of the server shows up in the latency instead of being hidden by a
 * generator that waits (coordinated omission).
 */
import type { Stage } from './types.ts'

interface Segment {
  /** Start time and arrivals due before it. */
  readonly startMs: number
  readonly before: number
  readonly durationMs: number
  /** Rate at the start and end, per ms. */
  readonly from: number
  readonly to: number
  /** Arrivals due during the segment (fractional). */
  readonly arrivals: number
}

export class ArrivalSchedule {
  readonly totalMs: number
  /** Arrivals due in [0, totalMs): every i with timeOf(i) < totalMs. */
  readonly total: number
  readonly #segments: Segment[] = []

  constructor(startRate: number, stages: readonly Stage[], maxArrivals = 0) {
    if (!(startRate >= 0) || !Number.isFinite(startRate)) {
      throw new RangeError(`the start rate must be a number ≥ 0, got ${startRate}`)
    }
    let startMs = 0
    let before = 0
    let from = startRate / 1000
    for (const [n, stage] of stages.entries()) {
      if (!(stage.durationMs > 0) || !Number.isFinite(stage.durationMs)) {
        throw new RangeError(`stage ${n + 1}: the duration must be > 0, got ${stage.durationMs} ms`)
      }
      if (!(stage.target >= 0) || !Number.isFinite(stage.target)) {
        throw new RangeError(`stage ${n + 1}: the target rate must be ≥ 0, got ${stage.target}`)
      }
      const to = stage.target / 1000
      const arrivals = ((from + to) / 2) * stage.durationMs
      this.#segments.push({ startMs, before, durationMs: stage.durationMs, from, to, arrivals })
      startMs += stage.durationMs
      before += arrivals
      from = to
    }
    this.totalMs = startMs
    // Arrival i is inside the run when i < N(totalMs); a whole number of arrivals at the very end
    // falls at totalMs itself, which is outside.
    const inside = Math.ceil(before - 1e-9)
    this.total = maxArrivals > 0 ? Math.min(maxArrivals, inside) : inside
  }

  /** Milliseconds from the start at which arrival `i` (0-based) is due. */
  timeOf(i: number): number {
    for (const s of this.#segments) {
      const n = i - s.before
      if (n >= s.arrivals) continue
      const a = s.from
      const k = (s.to - s.from) / s.durationMs // rate change per ms²
      if (n <= 0) return s.startMs
      if (k === 0) return s.startMs + n / a
      // a·x + k·x²/2 = n, solved in the form that stays exact when a is 0 or k < 0.
      return s.startMs + (2 * n) / (a + Math.sqrt(Math.max(0, a * a + 2 * k * n)))
    }
    return Number.POSITIVE_INFINITY
  }

  /** How many arrivals are due at or before `ms`: the next one to send is this index. */
  dueBy(ms: number): number {
    if (ms < 0) return 0
    if (ms >= this.totalMs) return this.total
    for (const s of this.#segments) {
      const x = ms - s.startMs
      if (x >= s.durationMs) continue
      const k = (s.to - s.from) / s.durationMs
      const n = s.before + s.from * x + (k * x * x) / 2
      // Arrival j is due at or before ms when j ≤ N(ms) (the epsilon keeps an exact boundary in),
      // and it belongs to this segment or an earlier one: j < before + arrivals (a whole number
      // reached exactly at the end of a ramp to 0 belongs to the next segment that has arrivals).
      const inside = Math.ceil(s.before + s.arrivals - 1e-9)
      return Math.min(this.total, Math.floor(n + 1e-9) + 1, inside)
    }
    return this.total
  }

  /** The scheduled rate at `ms`, req/s. */
  rateAt(ms: number): number {
    for (const s of this.#segments) {
      const x = ms - s.startMs
      if (x < 0 || x >= s.durationMs) continue
      return (s.from + ((s.to - s.from) * x) / s.durationMs) * 1000
    }
    return 0
  }
}

/**
 * Parses `30s:2000,1m:2000,10s:20000` (duration:target, as k6 writes stages) into stages.
 * Durations take ms, s, m or h.
 */
export function parseStages(text: string): Stage[] {
  const stages = text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
  if (stages.length === 0)
    throw new RangeError('--stages is empty; write duration:target,… e.g. 30s:2000,1m:2000')
  return stages.map((part) => {
    const [duration, target, extra] = part.split(':')
    if (target === undefined || extra !== undefined) {
      throw new RangeError(`stage "${part}" must be duration:target, e.g. 30s:2000`)
    }
    const rate = Number(target.trim())
    if (target.trim() === '' || !Number.isFinite(rate) || rate < 0) {
      throw new RangeError(`stage "${part}": the target must be a rate ≥ 0 in requests per second`)
    }
    return { durationMs: parseDuration(duration, `stage "${part}"`), target: rate }
  })
}

/** `250ms`, `30s`, `2m`, `1h`, `1m30s`; a bare number is seconds. */
export function parseDuration(text: string, what: string): number {
  const trimmed = text.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000
  const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)]
  const joined = parts.map((p) => p[0]).join('')
  if (parts.length === 0 || joined !== trimmed) {
    throw new RangeError(`${what}: "${text}" is not a duration; write e.g. 500ms, 30s, 2m, 1h or 1m30s`)
  }
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const
  const ms = parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2] as keyof typeof unit], 0)
  if (!(ms > 0)) throw new RangeError(`${what}: the duration must be > 0, got "${text}"`)
  return ms
}

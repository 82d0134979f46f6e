import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { ArrivalSchedule, parseDuration, parseStages } from '../../../src/loadgen/schedule.ts'

test('a constant rate is due at evenly spaced times from 0', () => {
  const schedule = new ArrivalSchedule(1000, [{ durationMs: 2000, target: 1000 }])
  assert.equal(schedule.total, 2000)
  assert.equal(schedule.timeOf(0), 0)
  assert.equal(schedule.timeOf(1), 1)
  assert.equal(schedule.timeOf(1999), 1999)
  assert.equal(schedule.timeOf(2000), Number.POSITIVE_INFINITY)
  assert.equal(schedule.dueBy(0), 1)
  assert.equal(schedule.dueBy(0.5), 1)
  assert.equal(schedule.dueBy(1), 2)
  assert.equal(schedule.dueBy(999.9), 1000)
  assert.equal(schedule.dueBy(5000), 2000)
  assert.equal(schedule.dueBy(-1), 0)
})

test('a ramp from 0 sends n(t) = r·t²/2D arrivals: slow at first, then faster', () => {
  // 0 → 1000/s over 10 s: 5000 arrivals; half of them in the last 2.93 s.
  const schedule = new ArrivalSchedule(0, [{ durationMs: 10_000, target: 1000 }])
  assert.equal(schedule.total, 5000)
  // N(t) = 0.05 t² (t in ms, rate per ms grows by 1e-4 per ms): arrival i at sqrt(i / 0.00005)
  for (const i of [0, 1, 50, 1250, 2500, 4999]) {
    assert.ok(Math.abs(schedule.timeOf(i) - Math.sqrt(i / 0.00005)) < 1e-6, `arrival ${i}`)
  }
  assert.equal(schedule.dueBy(5000), 1251) // 0.05·5000² = 1250 arrivals after 0
  assert.ok(Math.abs(schedule.rateAt(5000) - 500) < 1e-9)
})

test('stages follow each other: ramp, hold, spike, down', () => {
  const schedule = new ArrivalSchedule(0, [
    { durationMs: 1000, target: 2000 }, // 1000 arrivals
    { durationMs: 2000, target: 2000 }, // 4000
    { durationMs: 500, target: 20_000 }, // 5500
    { durationMs: 1000, target: 20_000 }, // 20000
    { durationMs: 500, target: 0 }, // 5000
  ])
  assert.equal(schedule.totalMs, 5000)
  assert.equal(schedule.total, 35_500)
  assert.equal(schedule.dueBy(1000), 1001)
  assert.equal(schedule.dueBy(3000), 5001)
  assert.equal(schedule.dueBy(3500), 10_501)
  assert.equal(schedule.dueBy(4500), 30_501)
  assert.ok(Math.abs(schedule.timeOf(1000) - 1000) < 1e-6)
  assert.ok(Math.abs(schedule.timeOf(5000) - 3000) < 1e-6)
  assert.ok(Math.abs(schedule.timeOf(30_500) - 4500) < 1e-6)
  assert.equal(schedule.rateAt(500), 1000)
  assert.equal(schedule.rateAt(3250), 11_000)
  assert.equal(schedule.rateAt(4750), 10_000)
  // The ramp down ends with the rate at 0: the last arrival comes just before the end.
  assert.ok(schedule.timeOf(35_499) < 5000)
})

test('a stage at rate 0 is a pause', () => {
  const schedule = new ArrivalSchedule(100, [
    { durationMs: 1000, target: 100 },
    { durationMs: 1000, target: 0 }, // ramps down: 50 arrivals
    { durationMs: 1000, target: 0 }, // silence
    { durationMs: 1000, target: 100 }, // 50
  ])
  assert.equal(schedule.total, 200)
  assert.ok(schedule.timeOf(149) < 2000)
  assert.ok(schedule.timeOf(150) >= 3000)
  assert.equal(schedule.dueBy(2500), 150)
})

test('maxArrivals cuts the schedule short', () => {
  const schedule = new ArrivalSchedule(1000, [{ durationMs: 60_000, target: 1000 }], 500)
  assert.equal(schedule.total, 500)
  assert.equal(schedule.dueBy(10_000), 500)
})

test('arrival times are increasing and dueBy counts exactly the arrivals due (any stages)', () => {
  const stage = fc.record({
    durationMs: fc.integer({ min: 1, max: 3000 }),
    target: fc.integer({ min: 0, max: 5000 }),
  })
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 5000 }),
      fc.array(stage, { minLength: 1, maxLength: 5 }),
      (start, stages) => {
        const schedule = new ArrivalSchedule(start, stages)
        let previous = -1
        for (let i = 0; i < schedule.total; i++) {
          const t = schedule.timeOf(i)
          assert.ok(t >= previous, `arrival ${i} at ${t} before ${previous}`)
          assert.ok(t < schedule.totalMs + 1e-6, `arrival ${i} at ${t} after the end`)
          previous = t
        }
        // The count due at each arrival's own time includes it, and never more than the next.
        for (let i = 0; i < schedule.total; i += Math.max(1, Math.floor(schedule.total / 50))) {
          const due = schedule.dueBy(schedule.timeOf(i))
          assert.ok(due >= i + 1, `dueBy(timeOf(${i})) = ${due}`)
          if (i + 1 < schedule.total && schedule.timeOf(i + 1) > schedule.timeOf(i) + 1e-6) {
            assert.ok(due <= i + 1, `dueBy(timeOf(${i})) = ${due} counts a later arrival`)
          }
        }
        // The total is the integral of the rate.
        let area = 0
        let from = start
        for (const st of stages) {
          area += ((from + st.target) / 2) * (st.durationMs / 1000)
          from = st.target
        }
        assert.ok(Math.abs(schedule.total - area) <= 1, `total ${schedule.total} vs ∫rate ${area}`)
      },
    ),
    { numRuns: 200 },
  )
})

test('bad stages are refused with the stage named', () => {
  assert.throws(() => new ArrivalSchedule(-1, []), /start rate/)
  assert.throws(() => new ArrivalSchedule(0, [{ durationMs: 0, target: 5 }]), /stage 1: the duration/)
  assert.throws(
    () =>
      new ArrivalSchedule(0, [
        { durationMs: 10, target: 5 },
        { durationMs: 10, target: Number.NaN },
      ]),
    /stage 2: the target/,
  )
})

test('stages and durations parse as k6 writes them', () => {
  assert.deepEqual(parseStages('30s:2000, 1m:2000,10s:20000,500ms:0'), [
    { durationMs: 30_000, target: 2000 },
    { durationMs: 60_000, target: 2000 },
    { durationMs: 10_000, target: 20_000 },
    { durationMs: 500, target: 0 },
  ])
  assert.equal(parseDuration('1m30s', 'x'), 90_000)
  assert.equal(parseDuration('2', 'x'), 2000)
  assert.equal(parseDuration('1h', 'x'), 3_600_000)
  assert.throws(() => parseStages(''), /empty/)
  assert.throws(() => parseStages('30s'), /stage "30s" must be duration:target/)
  assert.throws(() => parseStages('30s:-5'), /target must be a rate/)
  assert.throws(() => parseStages('30x:5'), /"30x" is not a duration/)
  assert.throws(() => parseDuration('0s', '--duration'), /--duration: the duration must be > 0/)
})

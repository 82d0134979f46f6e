import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DelayController } from '../../../src/http/delay.ts'

/** Drives the controller with its own clock: every sample `late` ms after it was due, `requests` per interval. */
function drive(
  c: DelayController,
  clock: { now: number },
  intervals: number,
  late: number,
  requests: number,
) {
  for (let i = 0; i < intervals; i++) {
    for (let r = 0; r < requests; r++) c.refuse()
    // 100 ms of samples due every 5 ms, each firing `late` ms after it was due.
    const end = clock.now + 100
    while (clock.now < end) {
      clock.now += 5 + late
      c.sample(clock.now)
    }
  }
}

test('a standing delay above target with requests arriving raises the share refused, step by step', () => {
  const clock = { now: 0 }
  const c = new DelayController({ targetMs: 20, random: () => 0.5 })
  c.sample(0)
  drive(c, clock, 3, 2, 500)
  assert.equal(c.share, 0, 'a short delay refuses nothing')
  assert.equal(c.refuse(), false)
  drive(c, clock, 1, 40, 500)
  assert.ok(c.share > 0 && c.share <= 0.2, `one interval raises it a step: ${c.share}`)
  assert.ok(c.delayMs() >= 40)
  drive(c, clock, 30, 40, 500)
  assert.equal(c.share, 0.95, 'capped: some requests always probe the server')
  assert.equal(c.refuse(), true)
})

test('without requests a long delay (start-up, a GC, a neighbour) refuses nothing', () => {
  const clock = { now: 0 }
  const c = new DelayController({ targetMs: 20, random: () => 0 })
  c.sample(0)
  drive(c, clock, 20, 80, 10)
  assert.equal(c.share, 0)
})

test('a burst that drains within the interval is not a standing queue: the minimum decides', () => {
  const clock = { now: 0 }
  const c = new DelayController({ targetMs: 20, random: () => 0 })
  c.sample(0)
  for (let i = 0; i < 10; i++) {
    for (let r = 0; r < 500; r++) c.refuse()
    clock.now += 60 // one long turn
    c.sample(clock.now)
    const end = clock.now + 100
    while (clock.now < end) {
      clock.now += 5
      c.sample(clock.now)
    }
  }
  assert.equal(c.share, 0)
})

test('once the delay falls, the share halves each interval and is 0 within a few', () => {
  const clock = { now: 0 }
  const c = new DelayController({ targetMs: 20, random: () => 0 })
  c.sample(0)
  drive(c, clock, 30, 60, 500)
  assert.equal(c.share, 0.95)
  drive(c, clock, 7, 0, 500)
  assert.equal(c.share, 0, `after 7 quiet intervals (0.7 s): ${c.share}`)
})

test('the target must be positive', () => {
  assert.throws(() => new DelayController({ targetMs: 0 }), /targetMs/)
})

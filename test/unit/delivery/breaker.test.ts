import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Breaker, type BreakerOptions } from '../../../src/delivery/breaker.ts'

function clocked(options: BreakerOptions = {}) {
  const clock = { now: 1_000_000 }
  const breaker = new Breaker({
    failures: 3,
    openMs: 1000,
    maxOpenMs: 5000,
    now: () => clock.now,
    ...options,
  })
  return { clock, breaker }
}

test('a new breaker is closed and lets writes through', () => {
  const { breaker } = clocked()
  assert.equal(breaker.state, 'closed')
  assert.equal(breaker.waitMs(), 0)
  assert.equal(breaker.opens, 0)
})

test('it opens after `failures` consecutive failures, not before', () => {
  const { breaker } = clocked()
  assert.equal(breaker.failure(), null)
  assert.equal(breaker.failure(), null)
  assert.equal(breaker.state, 'closed')
  assert.equal(breaker.failure(), 'opened')
  assert.equal(breaker.state, 'open')
  assert.equal(breaker.opens, 1)
  assert.equal(breaker.waitMs(), 1000)
})

test('an answer (delivered or permanent) resets the count while closed', () => {
  const { breaker } = clocked()
  breaker.failure()
  breaker.failure()
  assert.equal(breaker.success(), null, 'closed stays closed: no transition to log')
  breaker.failure()
  breaker.failure()
  assert.equal(breaker.state, 'closed')
  assert.equal(breaker.failures, 2)
})

test('while open no write may go; when the period is over it is half-open for one trial', () => {
  const { clock, breaker } = clocked()
  for (let i = 0; i < 3; i++) breaker.failure()
  clock.now += 400
  assert.equal(breaker.state, 'open')
  assert.equal(breaker.waitMs(), 600)
  clock.now += 600
  assert.equal(breaker.state, 'half-open')
  assert.equal(breaker.waitMs(), 0)
})

test('a delivered trial closes it and the next outage starts with the first period again', () => {
  const { clock, breaker } = clocked()
  for (let i = 0; i < 3; i++) breaker.failure()
  clock.now += 1000
  assert.equal(breaker.failure(), 'opened', 'the trial failed')
  assert.equal(breaker.waitMs(), 2000)
  clock.now += 2000
  assert.equal(breaker.success(), 'closed')
  assert.equal(breaker.state, 'closed')
  assert.equal(breaker.failures, 0)
  for (let i = 0; i < 3; i++) breaker.failure()
  assert.equal(breaker.waitMs(), 1000, 'the period starts small again')
  assert.equal(breaker.opens, 3)
})

test('a failed trial opens it again for twice as long, up to maxOpenMs', () => {
  const { clock, breaker } = clocked()
  for (let i = 0; i < 3; i++) breaker.failure()
  const periods = [breaker.waitMs()]
  for (let i = 0; i < 5; i++) {
    clock.now += breaker.waitMs()
    assert.equal(breaker.state, 'half-open')
    assert.equal(breaker.failure(), 'opened')
    periods.push(breaker.waitMs())
  }
  assert.deepEqual(periods, [1000, 2000, 4000, 5000, 5000, 5000])
  assert.equal(breaker.opens, 6)
})

test('a failure reported while open (a write that began before) does not extend the period', () => {
  const { clock, breaker } = clocked()
  for (let i = 0; i < 3; i++) breaker.failure()
  clock.now += 300
  assert.equal(breaker.failure(), null)
  assert.equal(breaker.waitMs(), 700)
  assert.equal(breaker.opens, 1)
})

test('failures: 1 opens on the first failure; defaults are 5 failures and 5 s', () => {
  const one = clocked({ failures: 1 }).breaker
  assert.equal(one.failure(), 'opened')
  const clock = { now: 0 }
  const defaults = new Breaker({ now: () => clock.now })
  for (let i = 0; i < 4; i++) assert.equal(defaults.failure(), null)
  assert.equal(defaults.failure(), 'opened')
  assert.equal(defaults.waitMs(), 5000)
})

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { planFromFlags } from '../../../src/loadgen/plan.ts'

test('without a rate the plan is the closed model', () => {
  const plan = planFromFlags({ connections: '8', duration: '5s', requests: '100' })
  assert.equal(plan.model, 'closed')
  assert.equal(plan.connections, 8)
  assert.equal(plan.durationMs, 5000)
  assert.equal(plan.maxRequests, 100)
  assert.equal(plan.url, 'http://127.0.0.1:8080')
})

test('--rate is a constant arrival rate; --stages a ramp from --start-rate', () => {
  const constant = planFromFlags({ rate: '15000', duration: '1m' })
  assert.equal(constant.model, 'open')
  assert.equal(constant.startRate, 15_000)
  assert.deepEqual(constant.stages, [{ durationMs: 60_000, target: 15_000 }])
  const ramp = planFromFlags({ stages: '10s:100,20s:100', 'start-rate': '10' })
  assert.equal(ramp.startRate, 10)
  assert.equal(ramp.durationMs, 30_000)
})

test('presets reproduce the reference load tests, and flags beside them win', () => {
  const spike = planFromFlags({ preset: 'ramp-spike' })
  assert.deepEqual(spike.thresholds, ['p95<60ms', 'p99<150ms', 'errors<1%'])
  assert.equal(Math.max(...spike.stages.map((s) => s.target)), 20_000)
  assert.ok(spike.stages.some((s) => s.target === 2000))
  const rehearsal = planFromFlags(
    { preset: 'ramp-spike', 'time-scale': '0.1', threshold: 'p50<5ms' },
    { threshold: ['p50<5ms'] },
  )
  assert.equal(rehearsal.durationMs, spike.durationMs / 10)
  assert.deepEqual(rehearsal.thresholds, ['p95<60ms', 'p99<150ms', 'errors<1%', 'p50<5ms'])
  const constant = planFromFlags({ preset: 'constant-15k', duration: '10s' })
  assert.deepEqual(constant.stages, [{ durationMs: 10_000, target: 15_000 }])
  assert.equal(planFromFlags({ preset: 'constant-15k' }).durationMs, 60_000)
  assert.throws(() => planFromFlags({ preset: 'ramp-spike', duration: '10s' }), /--time-scale/)
})

test("the producer tool's --rate --burst --workers: rate per worker, burst in all", () => {
  const plan = planFromFlags({ rate: '1000', burst: '10000', workers: '4' })
  assert.equal(plan.preset, 'producer')
  assert.equal(plan.startRate, 4000)
  assert.equal(plan.maxRequests, 10_000)
  assert.equal(plan.connections, 4)
  assert.equal(plan.durationMs, 2500)
  const defaults = planFromFlags({ preset: 'producer' })
  assert.equal(defaults.startRate, 100)
  assert.equal(defaults.maxRequests, 500)
})

test('payload flags: batch, gzip, duplicates, names, headers and api key', () => {
  const plan = planFromFlags(
    {
      batch: '100',
      gzip: 'true',
      duplicates: '5%',
      'event-names': 'a, b',
      users: '10',
      channels: 'web',
      'api-key': 'k1',
      header: 'X-Two: 2',
    },
    { header: ['X-One: 1', 'X-Two: 2'] },
  )
  assert.deepEqual(plan.payload, {
    eventNames: ['a', 'b'],
    users: 10,
    campaigns: 50,
    channels: ['web'],
    duplicateRatio: 0.05,
    batch: 100,
    gzip: true,
  })
  assert.deepEqual(plan.headers, { 'X-One': '1', 'X-Two': '2', Authorization: 'Bearer k1' })
  assert.equal(planFromFlags({ duplicates: '0.25' }).payload.duplicateRatio, 0.25)
})

test('a bad flag is refused with its name and what it takes', () => {
  assert.throws(() => planFromFlags({ rat: '5' }), /unknown flag --rat/)
  assert.throws(
    () => planFromFlags({ preset: 'fast' }),
    /--preset "fast" is not one of constant-15k, ramp-spike, producer/,
  )
  assert.throws(() => planFromFlags({ rate: '-5' }), /--rate must be a number > 0, got "-5"/)
  assert.throws(() => planFromFlags({ rate: 'many' }), /--rate must be a number/)
  assert.throws(() => planFromFlags({ connections: '1.5' }), /--connections must be a whole number/)
  assert.throws(() => planFromFlags({ duplicates: '100%' }), /--duplicates must be a fraction/)
  assert.throws(() => planFromFlags({ gzip: 'yes' }), /--gzip takes no value/)
  assert.throws(() => planFromFlags({ header: 'novalue' }), /--header "novalue" must be "Name: value"/)
  assert.throws(() => planFromFlags({ timeout: 'soon' }), /--timeout: "soon" is not a duration/)
  assert.throws(() => planFromFlags({ 'event-names': ' , ' }), /--event-names needs at least one name/)
})

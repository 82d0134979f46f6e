import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DeliveryTotals, type SinkReading } from '../../../src/telemetry/delivery-totals.ts'

const BUCKETS = [1, 10, 100]

function stats(sink: string, rows: number, extra: Partial<SinkReading> = {}): SinkReading {
  return {
    sink,
    slot: 0,
    deliveredRows: rows,
    deliveredBatches: rows > 0 ? 1 : 0,
    retries: 0,
    timeouts: 0,
    breaker: 'closed',
    breakerOpens: 0,
    refusedBatches: 0,
    deadLettered: 0,
    batchRows: { buckets: BUCKETS, counts: [0, 0, rows > 0 ? 1 : 0], sum: rows, count: rows > 0 ? 1 : 0 },
    batchLatencyMs: { buckets: BUCKETS, counts: [0, 0, 0], sum: 0, count: 0 },
    duplicatesDelivery: 0,
    duplicatesL2: 0,
    dedupL2: null,
    dedupCacheKeys: 0,
    ...extra,
  }
}

test('totals are the latest reading while the delivery thread lives', () => {
  const totals = new DeliveryTotals()
  totals.update(0, [stats('duckdb', 10)])
  totals.update(0, [stats('duckdb', 25, { retries: 3 })])
  const t = totals.totals().get('duckdb')!
  assert.equal(t.deliveredRows, 25)
  assert.equal(t.retries, 3)
})

test('a restarted thread (new generation) adds to what the old one counted', () => {
  const totals = new DeliveryTotals()
  totals.update(0, [stats('duckdb', 100, { deadLettered: 2 }), stats('file', 40)])
  // The new thread has delivered 7 rows so far, more than zero but less than before.
  totals.update(1, [stats('duckdb', 7), stats('file', 0)])
  let t = totals.totals()
  assert.equal(t.get('duckdb')!.deliveredRows, 107)
  assert.equal(t.get('duckdb')!.deadLettered, 2)
  assert.equal(t.get('file')!.deliveredRows, 40)
  assert.equal(t.get('duckdb')!.batchRows.count, 2, 'histograms add up too')
  assert.equal(t.get('duckdb')!.batchRows.sum, 107)
  // A new thread that overtook the old count before its first reading is still added, not lost.
  totals.update(2, [stats('duckdb', 500), stats('file', 1)])
  t = totals.totals()
  assert.equal(t.get('duckdb')!.deliveredRows, 607)
  assert.equal(t.get('file')!.deliveredRows, 41)
})

test('a counter that goes down within one generation is folded too (never decreases)', () => {
  const totals = new DeliveryTotals()
  totals.update(3, [stats('duckdb', 50)])
  totals.update(3, [stats('duckdb', 5)])
  assert.equal(totals.totals().get('duckdb')!.deliveredRows, 55)
})

test('a sink missing from a reading (thread down) keeps its totals', () => {
  const totals = new DeliveryTotals()
  totals.update(0, [stats('duckdb', 9)])
  totals.update(0, [])
  assert.equal(totals.totals().get('duckdb')!.deliveredRows, 9)
  assert.deepEqual(totals.latest, [])
})

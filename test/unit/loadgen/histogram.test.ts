import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { Histogram } from '../../../src/loadgen/histogram.ts'

const HOUR_US = 3_600_000_000

/** The nearest-rank percentile of sorted values, with the histogram's guard against float noise in the rank. */
function exactPercentile(sorted: readonly number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length * (1 - 1e-12)))
  return sorted[rank - 1]
}

/** HDR reports the highest value of the bucket, so the answer is at or above the truth, by at most `rel`. */
function assertWithin(actual: number, exact: number, rel: number, what: string): void {
  assert.ok(
    actual >= exact && actual - exact <= exact * rel,
    `${what}: ${actual} is not within ${rel} of ${exact}`,
  )
}

function recordAll(values: readonly number[], h = new Histogram()): Histogram {
  for (const v of values) h.record(v)
  return h
}

const latency = fc.oneof(
  fc.nat(2000),
  fc.integer({ min: 1000, max: 1_000_000 }),
  fc.bigInt({ min: 0n, max: BigInt(HOUR_US) }).map(Number),
)
const percentile = fc.oneof(
  fc.double({ min: 0, max: 100, noNaN: true }),
  fc.constantFrom(0, 50, 90, 95, 99, 99.9, 99.99, 100),
)

test('percentiles of 1..100000 match the exact values within 0.1 %', () => {
  const values = Array.from({ length: 100_000 }, (_, i) => i + 1)
  const h = recordAll(values)
  for (const p of [0, 0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100]) {
    assertWithin(h.valueAtPercentile(p), exactPercentile(values, p), 1e-3, `p${p}`)
  }
  assert.equal(h.count, 100_000)
  assert.equal(h.min, 1)
  assert.equal(h.max, 100_000)
  assert.ok(Math.abs(h.mean - 50_000.5) <= 50_000.5 * 1e-3)
  const stdev = Math.sqrt((100_000 ** 2 - 1) / 12)
  assert.ok(Math.abs(h.stdev - stdev) <= stdev * 1e-3)
})

test('percentiles, min, max, count, mean and stdev agree with the sorted values', () => {
  fc.assert(
    fc.property(
      fc.array(latency, { minLength: 1, maxLength: 400 }),
      fc.array(percentile, { maxLength: 12 }),
      (values, ps) => {
        const h = recordAll(values)
        const sorted = [...values].sort((a, b) => a - b)
        for (const p of ps) assertWithin(h.valueAtPercentile(p), exactPercentile(sorted, p), 1e-3, `p${p}`)
        assert.equal(h.count, values.length)
        assert.equal(h.min, sorted[0])
        assert.equal(h.max, sorted[sorted.length - 1])
        assert.equal(h.clamped, 0)

        const mean = values.reduce((s, v) => s + v, 0) / values.length
        assert.ok(Math.abs(h.mean - mean) <= mean * 1e-3, `mean ${h.mean} vs ${mean}`)
        // Each value is off by under 0.05 % in its bucket, so the stdev is off by under 0.05 % of the rms.
        const stdev = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length)
        const rms = Math.sqrt(values.reduce((s, v) => s + v * v, 0) / values.length)
        assert.ok(Math.abs(h.stdev - stdev) <= rms * 1e-3, `stdev ${h.stdev} vs ${stdev}`)
      },
    ),
    { numRuns: 300 },
  )
})

test('every value is reported within value * 10^-significantDigits, for 1 to 5 digits', () => {
  const histograms = [1, 2, 3, 4, 5].map((significantDigits) => new Histogram({ significantDigits }))
  const check = (h: Histogram, v: number) => {
    const low = h.lowestEquivalentValue(v)
    const high = h.highestEquivalentValue(v)
    assert.ok(low <= v && v <= high, `${v} outside its bucket ${low}..${high}`)
    assert.ok(high - low <= v * 10 ** -h.significantDigits, `${v}: bucket ${low}..${high} too wide`)
  }
  for (const h of histograms) {
    for (let bit = 0; bit <= 31; bit++) for (const v of [2 ** bit - 1, 2 ** bit, 2 ** bit + 1]) check(h, v)
    check(h, HOUR_US)
  }
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 4 }), latency, (i, v) => check(histograms[i], v)),
    { numRuns: 1000 },
  )
})

test('with lowest above 1, values are resolved to at least lowest', () => {
  const h = new Histogram({ lowest: 1000 })
  fc.assert(
    fc.property(latency, (v) => {
      const low = h.lowestEquivalentValue(v)
      const high = h.highestEquivalentValue(v)
      assert.ok(low <= v && v <= high)
      assert.ok(high - low < Math.max(v * 1e-3, 1000), `${v}: bucket ${low}..${high} too wide`)
    }),
  )
})

test('values past 2^32 up to 2^53 - 1 land in their own buckets, without 32-bit truncation', () => {
  const h = new Histogram({ highest: Number.MAX_SAFE_INTEGER })
  fc.assert(
    fc.property(fc.maxSafeNat(), (v) => {
      assert.ok(h.lowestEquivalentValue(v) <= v && v <= h.highestEquivalentValue(v))
      assert.ok(h.highestEquivalentValue(v) - h.lowestEquivalentValue(v) <= v * 1e-3)
    }),
  )
  const values = [2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 52 + 1, Number.MAX_SAFE_INTEGER]
  recordAll(values, h)
  assert.equal(h.clamped, 0)
  assert.equal(h.max, Number.MAX_SAFE_INTEGER)
  assertWithin(h.valueAtPercentile(50), 2 ** 32 + 1, 1e-3, 'p50')
  assertWithin(h.valueAtPercentile(80), 2 ** 52 + 1, 1e-3, 'p80')
})

test('a percentile is the highest value of its bucket, but never above the exact max', () => {
  const h = recordAll([1_000_001, 1_000_001, 5_000_000])
  assert.equal(h.valueAtPercentile(50), h.highestEquivalentValue(1_000_001))
  assert.ok(h.valueAtPercentile(50) > 1_000_001)
  assert.equal(h.valueAtPercentile(100), 5_000_000)
  assert.equal(recordAll([1_000_001]).valueAtPercentile(50), 1_000_001)
})

test('a percentile landing exactly on a rank is not pushed to the next rank by float noise', () => {
  // 1..1000 are all at unit resolution, so p (k / 10) must give exactly k, e.g. 99.9 / 100 * 1000 is 999.0000000000001.
  const h = recordAll(Array.from({ length: 1000 }, (_, i) => i + 1))
  for (let k = 1; k <= 1000; k++) assert.equal(h.valueAtPercentile(k / 10), k, `p${k / 10}`)
})

test('percentile 0 is the min and 100 the max', () => {
  const h = recordAll([1_234_567, 7, 98_765])
  assert.equal(h.valueAtPercentile(0), 7)
  assert.equal(h.valueAtPercentile(100), 1_234_567)
})

test('fractional values are rounded to the nearest integer', () => {
  const h = recordAll([1.4, 1.5, 2.5, 0.4, 7.49])
  assert.equal(h.min, 0)
  assert.equal(h.max, 7)
  assert.deepEqual(h.toJSON(), recordAll([1, 2, 3, 0, 7]).toJSON())
  const big = new Histogram({ highest: Number.MAX_SAFE_INTEGER })
  big.record(2 ** 52 - 1.5)
  assert.equal(big.min, 2 ** 52 - 1)
  big.record(2 ** 52 + 1)
  assert.equal(big.max, 2 ** 52 + 1)
  big.record(Number.MAX_SAFE_INTEGER)
  assert.equal(big.max, Number.MAX_SAFE_INTEGER)
  assert.equal(big.clamped, 0)
})

test('recordCount records a value that many times', () => {
  const once = new Histogram()
  once.recordCount(250, 3)
  once.recordCount(900, 0)
  assert.deepEqual(once.toJSON(), recordAll([250, 250, 250]).toJSON())
})

test('an empty histogram reports zeros and no distribution', () => {
  const h = new Histogram()
  assert.equal(h.count, 0)
  assert.equal(h.min, 0)
  assert.equal(h.max, 0)
  assert.equal(h.mean, 0)
  assert.equal(h.stdev, 0)
  assert.equal(h.valueAtPercentile(0), 0)
  assert.equal(h.valueAtPercentile(99), 0)
  assert.deepEqual(h.percentileDistribution(), [])
})

test('add() gives the same histogram as recording everything into one', () => {
  fc.assert(
    fc.property(fc.array(latency, { maxLength: 200 }), fc.array(latency, { maxLength: 200 }), (a, b) => {
      const merged = recordAll(a)
      merged.add(recordAll(b))
      const all = recordAll([...a, ...b])
      assert.deepEqual(merged, all)
      assert.equal(merged.mean, all.mean)
    }),
    { numRuns: 100 },
  )
})

test('add() refuses a histogram with another configuration', () => {
  assert.throws(() => new Histogram().add(new Histogram({ significantDigits: 2 })), /digits/)
  assert.throws(() => new Histogram().add(new Histogram({ highest: 1000 })), /1\.\.1000/)
})

test('fromJSON(toJSON()) restores an equal histogram, through JSON text too', () => {
  fc.assert(
    fc.property(fc.array(latency, { maxLength: 300 }), fc.integer({ min: 1, max: 5 }), (values, digits) => {
      const h = recordAll(values, new Histogram({ significantDigits: digits, highest: 1_000_000_000 }))
      const restored = Histogram.fromJSON(JSON.parse(JSON.stringify(h)))
      assert.deepEqual(restored, h)
      assert.deepEqual(restored.toJSON(), h.toJSON())
      assert.deepEqual(restored.percentileDistribution(), h.percentileDistribution())
    }),
    { numRuns: 60 },
  )
})

test('toJSON lists only the non-empty buckets', () => {
  const json = recordAll([5, 5, 70_000]).toJSON()
  assert.equal(json.counts.length, 2)
  assert.deepEqual(
    json.counts.map(([, count]) => count),
    [2, 1],
  )
  assert.deepEqual(
    { ...json, counts: [] },
    {
      lowest: 1,
      highest: HOUR_US,
      significantDigits: 3,
      counts: [],
      min: 5,
      max: 70_000,
      count: 3,
      clamped: 0,
    },
  )
})

test('fromJSON rejects counts that do not add up or buckets out of range', () => {
  const json = recordAll([5, 6, 7]).toJSON()
  assert.throws(() => Histogram.fromJSON({ ...json, count: 4 }), RangeError)
  assert.throws(() => Histogram.fromJSON({ ...json, counts: [[1e9, 3]] }), RangeError)
})

test('reset() empties the histogram', () => {
  const h = recordAll([1, 2, 3, 7_200_000_000])
  h.reset()
  assert.deepEqual(h, new Histogram())
  assert.equal(h.count, 0)
  assert.equal(h.clamped, 0)
  assert.equal(h.min, 0)
  assert.equal(h.max, 0)
  assert.deepEqual(h.percentileDistribution(), [])
  h.record(42)
  assert.equal(h.min, 42)
})

test('values above highest are recorded as highest and counted as clamped', () => {
  const h = recordAll([10, 7_200_000_000])
  assert.equal(h.clamped, 1)
  assert.equal(h.count, 2)
  assert.equal(h.max, HOUR_US)
  assert.equal(h.valueAtPercentile(100), HOUR_US)

  const small = new Histogram({ highest: 1000 })
  small.record(1000)
  small.recordCount(5000, 3)
  small.record(Number.POSITIVE_INFINITY)
  assert.equal(small.clamped, 4)
  assert.equal(small.count, 5)
  assert.equal(small.max, 1000)
})

test('negative and NaN values throw a RangeError', () => {
  const h = new Histogram()
  for (const bad of [-1, -0.1, Number.NaN, Number.NEGATIVE_INFINITY]) {
    assert.throws(() => h.record(bad), RangeError)
    assert.throws(() => h.recordCount(bad, 2), RangeError)
  }
  assert.throws(() => h.recordCount(5, -1), RangeError)
  assert.throws(() => h.recordCount(5, 1.5), RangeError)
  assert.equal(h.count, 0)
})

test('a bad configuration throws a RangeError naming the option', () => {
  for (const significantDigits of [0, 6, 2.5, Number.NaN]) {
    assert.throws(() => new Histogram({ significantDigits }), {
      name: 'RangeError',
      message: /significantDigits/,
    })
  }
  assert.throws(() => new Histogram({ lowest: 0 }), { name: 'RangeError', message: /lowest/ })
  assert.throws(() => new Histogram({ lowest: 1.5 }), { name: 'RangeError', message: /lowest/ })
  assert.throws(() => new Histogram({ lowest: 100, highest: 150 }), {
    name: 'RangeError',
    message: /highest/,
  })
  assert.throws(() => new Histogram({ highest: 2 ** 53 }), { name: 'RangeError', message: /highest/ })
})

test('a percentile outside 0..100 throws a RangeError', () => {
  const h = recordAll([1, 2, 3])
  for (const p of [-1, 100.5, Number.NaN]) assert.throws(() => h.valueAtPercentile(p), RangeError)
  assert.throws(() => h.percentileDistribution(0), RangeError)
})

test('percentileDistribution halves the distance to 100 in ticksPerHalf steps', () => {
  const h = recordAll(Array.from({ length: 100_000 }, (_, i) => i + 1))
  const ps = h.percentileDistribution().map(([p]) => p)
  assert.deepEqual(ps.slice(0, 13), [0, 10, 20, 30, 40, 50, 55, 60, 65, 70, 75, 77.5, 80])
  for (const p of [87.5, 93.75, 96.875, 99.21875]) assert.ok(ps.includes(p), `${p} missing`)
  assert.deepEqual(
    h
      .percentileDistribution(1)
      .slice(0, 5)
      .map(([p]) => p),
    [0, 50, 75, 87.5, 93.75],
  )
})

test('percentileDistribution rises in both percentile and value, and ends with [100, max]', () => {
  fc.assert(
    fc.property(
      fc.array(latency, { minLength: 1, maxLength: 300 }),
      fc.integer({ min: 1, max: 10 }),
      (values, ticks) => {
        const h = recordAll(values)
        const dist = h.percentileDistribution(ticks)
        assert.deepEqual(dist[0], [0, h.min])
        assert.deepEqual(dist[dist.length - 1], [100, h.max])
        for (let i = 1; i < dist.length; i++) {
          assert.ok(dist[i][0] > dist[i - 1][0], `percentiles not rising at ${i}`)
          assert.ok(dist[i][1] >= dist[i - 1][1], `values falling at ${i}`)
          assert.equal(dist[i][1], h.valueAtPercentile(dist[i][0]))
        }
      },
    ),
    { numRuns: 200 },
  )
})

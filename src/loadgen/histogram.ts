/**
 * A latency histogram after Gil Tene's HdrHistogram.
 *
 * The load generator records every response time, tens of thousands a second, and reports
 * percentiles per second and for the whole run. Keeping the raw samples would grow without bound
 * and sorting them would be slow; fixed linear buckets are either too coarse for fast responses
 * or too many for slow ones. HDR's log-linear bucketing gives all three things we need:
 *
 * - constant memory: the counts array is sized once from the range and precision (about 23k
 *   doubles, 190 KB, for 1 µs .. 1 h at 3 digits) and recording never allocates;
 * - bounded relative error: every value is reported within `value * 10^-significantDigits` of the
 *   truth (1 µs or 1 ms, it is 0.1 % either way at 3 digits), so p99.9 is as trustworthy as p50;
 * - mergeable: two histograms with the same configuration add bucket by bucket, so one histogram
 *   per second can be summed into the run's, exactly as if everything had been recorded into one.
 *
 * The layout: bucket 0 holds `subBucketCount` values at unit resolution (the unit being the
 * largest power of two not above `lowest`); each further bucket covers twice the range of the one
 * before at half the resolution and only needs its upper half, since its lower half is what the
 * previous bucket covered. A value's slot is `bucket * subBucketHalfCount + (value >> (bucket + unit))`;
 * values go up to 2^53, past 32 bits, so the shift is a multiplication by a power of two.
 *
 * Mean and standard deviation are computed from the buckets (each bucket counted at its midpoint,
 * kept within the exact min and max), as HdrHistogram does: within half a bucket of the truth, and a
 * histogram stays fully described by its counts, min and max, which is what `toJSON` stores.
 */

export interface HistogramOptions {
  /** The smallest value to tell apart from 0; values are resolved to at least this. Default 1. */
  lowest?: number
  /** The largest value tracked; larger values are recorded as this and counted in `clamped`. Default 1 h in µs. */
  highest?: number
  /** Decimal digits of precision kept, 1..5. Default 3 (0.1 %). */
  significantDigits?: number
}

export interface HistogramJSON {
  lowest: number
  highest: number
  significantDigits: number
  /** `[bucketIndex, count]` for the non-empty buckets, ascending. */
  counts: [number, number][]
  min: number
  max: number
  count: number
  clamped: number
}

const TWO_TO_32 = 4294967296

export class Histogram {
  readonly lowest: number
  readonly highest: number
  readonly significantDigits: number

  private readonly unitMagnitude: number
  private readonly subBucketHalfCount: number
  /**
   * By the count of leading zeros of a value (as a 64-bit integer): the first slot of its bucket and
   * 2^-(bucket + unitMagnitude), the scale from the value to its sub-bucket. Tables rather than
   * arithmetic keep `record` free of data-dependent branches.
   */
  private readonly slotBase: Float64Array
  private readonly slotScale: Float64Array
  private readonly counts: Float64Array
  private total = 0
  private clampedCount = 0
  private minValue = Number.POSITIVE_INFINITY
  private maxValue = 0

  constructor(options: HistogramOptions = {}) {
    const { lowest = 1, highest = 3_600_000_000, significantDigits = 3 } = options
    if (!Number.isInteger(significantDigits) || significantDigits < 1 || significantDigits > 5) {
      throw new RangeError(
        `Histogram: significantDigits must be an integer from 1 to 5, got ${significantDigits}`,
      )
    }
    if (!Number.isInteger(lowest) || lowest < 1 || lowest >= 2 ** 31) {
      throw new RangeError(`Histogram: lowest must be an integer from 1 to 2^31 - 1, got ${lowest}`)
    }
    if (!Number.isSafeInteger(highest) || highest < 2 * lowest) {
      throw new RangeError(
        `Histogram: highest must be an integer >= 2 * lowest and <= 2^53 - 1, got ${highest}`,
      )
    }
    this.lowest = lowest
    this.highest = highest
    this.significantDigits = significantDigits

    // Enough sub-buckets that 2 * 10^digits values in a row are told apart at unit resolution.
    const subBucketCountMagnitude = Math.ceil(Math.log2(2 * 10 ** significantDigits))
    const subBucketCount = 2 ** subBucketCountMagnitude
    this.subBucketHalfCount = subBucketCount / 2
    this.unitMagnitude = 31 - Math.clz32(lowest) // lowest < 2^31 is checked above

    let bucketCount = 1
    for (
      let untrackable = subBucketCount * 2 ** this.unitMagnitude;
      untrackable <= highest;
      untrackable *= 2
    ) {
      bucketCount++
    }
    this.slotBase = new Float64Array(65)
    this.slotScale = new Float64Array(65)
    for (let zeros = 0; zeros <= 64; zeros++) {
      // Values whose highest bit is below unitMagnitude + subBucketCountMagnitude are in bucket 0.
      const bucket = Math.max(0, 64 - zeros - this.unitMagnitude - subBucketCountMagnitude)
      this.slotBase[zeros] = bucket * this.subBucketHalfCount
      this.slotScale[zeros] = 2 ** -(bucket + this.unitMagnitude)
    }
    this.counts = new Float64Array((bucketCount + 1) * this.subBucketHalfCount)
  }

  /** Records one value (rounded to an integer). Throws a RangeError for a negative value or NaN. */
  record(value: number): void {
    this.put(value, 1)
  }

  /** Records `count` occurrences of a value (0: nothing, not even a new min or max). */
  recordCount(value: number, count: number): void {
    if (!Number.isInteger(count) || count < 0) {
      throw new RangeError(`Histogram: count must be a non-negative integer, got ${count}`)
    }
    if (count > 0) this.put(value, count)
  }

  private put(value: number, count: number): void {
    if (!(value >= 0)) throw new RangeError(`Histogram: values must be non-negative numbers, got ${value}`)
    // Math.round, but branch-free: V8's Math.round costs a mispredicted branch on every other
    // fractional value (~5 ns of ~20). Doubles from 2^52 up are integers already, and adding 0.5
    // to them would round to even. Differs from Math.round only for one-ulp-below-a-half values.
    let v = value < 2 ** 52 ? Math.floor(value + 0.5) : value
    if (v > this.highest) {
      v = this.highest
      this.clampedCount += count
    }
    this.counts[this.indexOf(v)] += count
    this.total += count
    if (v < this.minValue) this.minValue = v
    if (v > this.maxValue) this.maxValue = v
  }

  private indexOf(v: number): number {
    // Math.clz32 truncates to 32 bits, so values past 2^32 are looked at through their high word.
    const zeros = v < TWO_TO_32 ? 32 + Math.clz32(v) : Math.clz32(v / TWO_TO_32)
    return this.slotBase[zeros] + Math.floor(v * this.slotScale[zeros])
  }

  private bucketAt(index: number): number {
    return Math.max(0, Math.floor(index / this.subBucketHalfCount) - 1)
  }

  /** The smallest value counted at `index`. */
  private lowestAt(index: number): number {
    const bucket = this.bucketAt(index)
    return (index - bucket * this.subBucketHalfCount) * 2 ** (bucket + this.unitMagnitude)
  }

  /** The largest value counted at `index`. */
  private highestAt(index: number): number {
    return this.lowestAt(index) + 2 ** (this.bucketAt(index) + this.unitMagnitude) - 1
  }

  /** The smallest value that would be counted in the same bucket as `value`. */
  lowestEquivalentValue(value: number): number {
    return this.lowestAt(this.indexOf(Math.min(Math.round(value), this.highest)))
  }

  /** The largest value that would be counted in the same bucket as `value`. */
  highestEquivalentValue(value: number): number {
    return this.highestAt(this.indexOf(Math.min(Math.round(value), this.highest)))
  }

  get count(): number {
    return this.total
  }

  /** Values recorded above `highest` (and counted as `highest`). */
  get clamped(): number {
    return this.clampedCount
  }

  /** The exact smallest value recorded; 0 when empty. */
  get min(): number {
    return this.total === 0 ? 0 : this.minValue
  }

  /** The exact largest value recorded (after clamping); 0 when empty. */
  get max(): number {
    return this.maxValue
  }

  /** A bucket's stand-in for mean and stdev: its midpoint, kept within the exact min and max. */
  private representative(index: number): number {
    const mid = (this.lowestAt(index) + this.highestAt(index)) / 2
    return Math.min(Math.max(mid, this.minValue), this.maxValue)
  }

  get mean(): number {
    if (this.total === 0) return 0
    let sum = 0
    for (let i = 0; i < this.counts.length; i++) {
      if (this.counts[i] !== 0) sum += this.representative(i) * this.counts[i]
    }
    return sum / this.total
  }

  /** The population standard deviation. */
  get stdev(): number {
    if (this.total === 0) return 0
    const mean = this.mean
    let squares = 0
    for (let i = 0; i < this.counts.length; i++) {
      if (this.counts[i] !== 0) squares += (this.representative(i) - mean) ** 2 * this.counts[i]
    }
    return Math.sqrt(squares / this.total)
  }

  /** The nearest rank (1-based) of percentile `p`, 1..count. */
  private rankAt(p: number): number {
    // The small shave keeps float noise (99.9 / 100 * 1000 = 999.0000000000001) from rounding up a rank.
    return Math.max(1, Math.ceil((p / 100) * this.total * (1 - 1e-12)))
  }

  /**
   * The value at percentile `p` (0..100): the highest value equivalent to the nearest-rank value,
   * but never more than the exact max. p 0 is the min; an empty histogram gives 0.
   */
  valueAtPercentile(p: number): number {
    if (!(p >= 0 && p <= 100)) throw new RangeError(`Histogram: percentile must be within 0..100, got ${p}`)
    if (this.total === 0) return 0
    if (p === 0) return this.minValue
    const rank = this.rankAt(p)
    let cumulative = 0
    let i = 0
    while (cumulative < rank) cumulative += this.counts[i++]
    return Math.min(this.highestAt(i - 1), this.maxValue)
  }

  /**
   * `[percentile, value]` pairs for a latency-by-percentile chart, as HdrHistogram prints them:
   * from 0 (the min), each half of the remaining distance to 100 (0..50, 50..75, 75..87.5, ...) in
   * `ticksPerHalf` steps, until the steps reach the last recorded value; then `[100, max]`.
   */
  percentileDistribution(ticksPerHalf = 5): [number, number][] {
    if (!Number.isInteger(ticksPerHalf) || ticksPerHalf < 1) {
      throw new RangeError(`Histogram: ticksPerHalf must be a positive integer, got ${ticksPerHalf}`)
    }
    if (this.total === 0) return []
    const out: [number, number][] = [[0, this.minValue]]
    let cumulative = 0
    let i = 0
    for (let half = 0; ; half++) {
      const start = 100 - 100 / 2 ** half
      const width = 50 / 2 ** half
      for (let tick = 1; tick <= ticksPerHalf; tick++) {
        const p = start + (width * tick) / ticksPerHalf
        const rank = this.rankAt(p)
        if (p >= 100 || rank >= this.total) {
          out.push([100, this.maxValue])
          return out
        }
        while (cumulative < rank) cumulative += this.counts[i++]
        out.push([p, Math.min(this.highestAt(i - 1), this.maxValue)])
      }
    }
  }

  /** Adds another histogram's counts to this one. Both must have the same configuration. */
  add(other: Histogram): void {
    if (
      other.lowest !== this.lowest ||
      other.highest !== this.highest ||
      other.significantDigits !== this.significantDigits
    ) {
      throw new Error(
        `Histogram: cannot add a histogram of ${other.lowest}..${other.highest} at ${other.significantDigits} digits ` +
          `to one of ${this.lowest}..${this.highest} at ${this.significantDigits} digits`,
      )
    }
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i]
    this.total += other.total
    this.clampedCount += other.clampedCount
    this.minValue = Math.min(this.minValue, other.minValue)
    this.maxValue = Math.max(this.maxValue, other.maxValue)
  }

  reset(): void {
    this.counts.fill(0)
    this.total = 0
    this.clampedCount = 0
    this.minValue = Number.POSITIVE_INFINITY
    this.maxValue = 0
  }

  toJSON(): HistogramJSON {
    const counts: [number, number][] = []
    for (let i = 0; i < this.counts.length; i++) {
      if (this.counts[i] !== 0) counts.push([i, this.counts[i]])
    }
    return {
      lowest: this.lowest,
      highest: this.highest,
      significantDigits: this.significantDigits,
      counts,
      min: this.min,
      max: this.max,
      count: this.total,
      clamped: this.clampedCount,
    }
  }

  static fromJSON(json: HistogramJSON): Histogram {
    const h = new Histogram(json)
    for (const [index, count] of json.counts) {
      if (!Number.isInteger(index) || index < 0 || index >= h.counts.length || !(count >= 0)) {
        throw new RangeError(`Histogram.fromJSON: bad bucket [${index}, ${count}]`)
      }
      h.counts[index] += count
      h.total += count
    }
    if (h.total !== json.count) {
      throw new RangeError(`Histogram.fromJSON: the buckets hold ${h.total} values, count says ${json.count}`)
    }
    if (h.total > 0) {
      h.minValue = json.min
      h.maxValue = json.max
    }
    h.clampedCount = json.clamped
    return h
  }
}

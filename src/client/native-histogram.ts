// A histogram as Prometheus keeps one: classic buckets (cumulative counts at fixed upper
// bounds) and a native histogram (sparse exponential buckets), both from every observation, so
// that whichever the scraper asks for is exact. Shared by every tool that serves histograms to
// Prometheus (the exporter's own /metrics, the relay), as the names are (./prometheus.ts).

import type { HistogramData } from './exposition-format.js';

/**
 * The native histograms' schema: bucket boundaries are the powers of 2^(2^-3), eight per
 * doubling, so a bucket is 9 % wide and a quantile read from it is within ±4.4 % (Prometheus
 * client_golang's default, `NativeHistogramBucketFactor` 1.1, picks the same).
 */
export const NATIVE_SCHEMA = 3;
/** Observations at most this far from 0 count in the zero bucket (client_golang's default, 2^-128). */
export const NATIVE_ZERO_THRESHOLD = 2 ** -128;
const PER_DOUBLING = 2 ** NATIVE_SCHEMA;
/** Within a doubling, the fractions (of `frexp`) at which buckets end: 2^(k/8 - 1), k = 0 … 7. */
const BOUNDS = Float64Array.from({ length: PER_DOUBLING }, (_, k) => 2 ** (k / PER_DOUBLING - 1));
/** The bucket +Inf and -Inf go to: the highest index a span can carry, as client_golang does. */
const INFINITE_INDEX = 2 ** 31 - 1;
/** The coarsest schema Prometheus takes (buckets 2^16 wide): a histogram is never reduced past it. */
const MIN_SCHEMA = -4;

const scratch = new Float64Array(1);
const words = new Uint32Array(scratch.buffer);
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

/**
 * The native bucket of |v| (v finite and beyond the zero threshold): i such that |v| is in
 * (2^((i-1)/8), 2^(i/8)]. Computed as client_golang does, from the exponent and the fraction of
 * `frexp`, so that both agree on every boundary.
 */
export function nativeIndex(v: number): number {
  scratch[0] = Math.abs(v);
  let exp = ((words[HI]! >>> 20) & 0x7ff) - 1022; // frexp's exponent: v = frac * 2^exp, frac in [0.5, 1)
  if (exp === -1022) {
    // Subnormal: scale into the normal range first.
    scratch[0] *= 2 ** 64;
    exp = ((words[HI]! >>> 20) & 0x7ff) - 1022 - 64;
  }
  words[HI] = (words[HI]! & 0x800fffff) | 0x3fe00000; // the same fraction, with frexp's exponent 0
  const frac = scratch[0]!;
  let k = 0;
  while (k < PER_DOUBLING && BOUNDS[k]! < frac) k++; // the first bound >= frac (sort.SearchFloat64s)
  return k + (exp - 1) * PER_DOUBLING;
}

/** Most native buckets kept as one array (512 doublings): buckets beyond go in a map. */
const MAX_DENSE = 4096;

/**
 * Counts of native buckets: consecutive ones from `first` in an array that grows at either end as
 * observations come (a series' values usually span a few dozen doublings), and the rare ones
 * too far from it (an infinity, a stray value) in a map.
 */
class Buckets {
  first = 0;
  counts = new Float64Array(0);
  readonly far = new Map<number, number>();

  /** Buckets it holds room for (its memory, in counts): the dense span and the far ones. */
  get width(): number {
    return this.counts.length + this.far.size;
  }

  add(i: number, n = 1): void {
    const c = this.counts;
    if (c.length === 0) {
      this.first = i;
      this.counts = new Float64Array(8);
      this.counts[0] = n;
      return;
    }
    let at = i - this.first;
    if (at < 0 || at >= c.length) {
      // Grow to cover i, with room to spare on the side it came from; or keep it aside.
      const lo = Math.min(this.first, i - (at < 0 ? 8 : 0));
      const hi = Math.max(this.first + c.length, i + 1 + (at >= c.length ? 8 : 0));
      if (hi - lo > MAX_DENSE) {
        this.far.set(i, (this.far.get(i) ?? 0) + n);
        return;
      }
      const grown = new Float64Array(hi - lo);
      grown.set(c, this.first - lo);
      this.counts = grown;
      this.first = lo;
      at = i - lo;
    }
    this.counts[at]! += n;
  }

  /**
   * Halves the resolution (the schema one lower): bucket i becomes ceil(i / 2), which covers
   * buckets 2j − 1 and 2j of the finer schema exactly. The infinite bucket stays where it is.
   */
  reduce(): void {
    const old = this.entries();
    this.clear();
    for (const [i, n] of old) this.add(i === INFINITE_INDEX ? i : Math.ceil(i / 2), n);
  }

  clear(): void {
    this.first = 0;
    this.counts = new Float64Array(0);
    this.far.clear();
  }

  /** Every non-empty bucket, as [index, count], in index order. */
  entries(): [number, number][] {
    const out: [number, number][] = [];
    for (let j = 0; j < this.counts.length; j++) if (this.counts[j] !== 0) out.push([this.first + j, this.counts[j]!]);
    if (this.far.size > 0) {
      out.push(...this.far);
      out.sort((a, b) => a[0] - b[0]);
    }
    return out;
  }
}

/** A native histogram's buckets as Prometheus's protobuf carries them: spans of consecutive buckets, and each count as a delta from the previous one. */
export interface NativeBuckets {
  readonly spans: { offset: number; length: number }[];
  readonly deltas: number[];
}

/** Spans (a gap of more than two empty buckets starts a new one) and deltas of non-empty buckets given in index order. */
export function sparse(entries: Iterable<readonly [number, number]>): NativeBuckets {
  const spans: { offset: number; length: number }[] = [];
  const deltas: number[] = [];
  let prev = 0;
  let last: number | undefined; // index of the last bucket put in a span
  for (const [i, n] of entries) {
    if (last === undefined) spans.push({ offset: i, length: 1 });
    else if (i - last - 1 > 2) spans.push({ offset: i - last - 1, length: 1 });
    else {
      // A short gap: its empty buckets go in the span (cheaper than a new one), as client_golang does.
      for (let g = last + 1; g < i; g++) {
        deltas.push(-prev);
        prev = 0;
      }
      spans[spans.length - 1]!.length += i - last;
    }
    deltas.push(n - prev);
    prev = n;
    last = i;
  }
  return { spans, deltas };
}

/**
 * One histogram series: count, sum, classic bucket counts at `bounds`, and native buckets.
 * Observations are never NaN here (the recorder drops and counts those).
 */
export class HistogramAggregate {
  count = 0;
  sum = 0;
  zeroCount = 0;
  /** The native buckets' schema: {@link NATIVE_SCHEMA}, lower once they were reduced to fit `maxWidth`. */
  schema = NATIVE_SCHEMA;
  /** Classic bucket counts: `bounds.length` finite ones, then +Inf (not cumulative). */
  readonly classic: Float64Array;
  private readonly positive = new Buckets();
  private readonly negative = new Buckets();

  /**
   * @param bounds ascending finite upper bounds of the classic buckets
   * @param maxWidth the most native buckets it keeps room for (above and below zero together):
   *   past it the resolution is halved (as client_golang does past its bucket limit), so that
   *   values no one controls (a relayed stream) cannot grow it without bound
   */
  constructor(
    readonly bounds: readonly number[],
    private readonly maxWidth = Number.POSITIVE_INFINITY,
  ) {
    this.classic = new Float64Array(bounds.length + 1);
  }

  record(v: number): void {
    this.count++;
    this.sum += v;
    const b = this.bounds;
    let lo = 0;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (b[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    this.classic[lo]!++;
    const a = Math.abs(v);
    if (a <= NATIVE_ZERO_THRESHOLD) {
      this.zeroCount++;
      return;
    }
    const i = a === Infinity ? INFINITE_INDEX : nativeIndex(v);
    // nativeIndex is at NATIVE_SCHEMA; each schema lower halves it (rounding up).
    const reduced = this.schema === NATIVE_SCHEMA || i === INFINITE_INDEX ? i : Math.ceil(i / 2 ** (NATIVE_SCHEMA - this.schema));
    (v > 0 ? this.positive : this.negative).add(reduced);
    while (this.positive.width + this.negative.width > this.maxWidth && this.schema > MIN_SCHEMA) {
      this.positive.reduce();
      this.negative.reduce();
      this.schema--;
    }
  }

  /** Back to empty (a relayed stream started afresh). */
  reset(): void {
    this.count = 0;
    this.sum = 0;
    this.zeroCount = 0;
    this.schema = NATIVE_SCHEMA;
    this.classic.fill(0);
    this.positive.clear();
    this.negative.clear();
  }

  /** Cumulative counts at each bound, then the total (the +Inf bucket). */
  cumulative(): number[] {
    const out: number[] = [];
    let sum = 0;
    for (const n of this.classic) out.push((sum += n));
    return out;
  }

  /** Its state as the protobuf format takes it. */
  data(): HistogramData {
    return { count: this.count, sum: this.sum, bounds: this.bounds, cumulative: this.cumulative(), schema: this.schema, zeroCount: this.zeroCount, ...this.native() };
  }

  /** The native buckets above the zero bucket, and below it, as spans and deltas. */
  native(): { positive: NativeBuckets; negative: NativeBuckets } {
    return { positive: sparse(this.positive.entries()), negative: sparse(this.negative.entries()) };
  }

  /** The native buckets above the zero bucket, and below it: every non-empty one as [index, count]. */
  nativeEntries(): { positive: [number, number][]; negative: [number, number][] } {
    return { positive: this.positive.entries(), negative: this.negative.entries() };
  }
}

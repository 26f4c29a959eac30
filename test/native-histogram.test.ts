// The native histogram's bucketing (the fast path, from a double's bits) against the definition
// (bucket i holds (2^((i-1)/8), 2^(i/8)], from Math.log2), and its sparse encoding against the
// counts it encodes, over generated values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HistogramAggregate, NATIVE_ZERO_THRESHOLD, nativeIndex } from '../src/client/native-histogram.js';

/** mulberry32, seeded: a failure is replayed by its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('nativeIndex is the bucket the definition gives, over every magnitude of double', () => {
  const next = random(20261206);
  for (let n = 0; n < 200_000; n++) {
    // Log-uniform over normal doubles, both signs.
    const v = (next() < 0.5 ? -1 : 1) * 2 ** (next() * 2040 - 1020);
    const want = Math.ceil(Math.log2(Math.abs(v)) * 8);
    const got = nativeIndex(v);
    // At a boundary Math.log2 itself may be one ulp off: the definition then allows either side.
    assert.ok(got === want || Math.abs(Math.log2(Math.abs(v)) * 8 - Math.round(Math.log2(Math.abs(v)) * 8)) < 1e-9, `${v}: ${got} != ${want}`);
  }
  for (let e = -1074; e <= 1023; e++) assert.equal(nativeIndex(2 ** e), 8 * e, `2^${e} closes its bucket`);
  assert.equal(nativeIndex(Number.MIN_VALUE), -8592, 'the smallest subnormal');
  assert.equal(nativeIndex(1.5), 5, '1.5 is in (2^(4/8), 2^(5/8)]');
});

test('the sparse encoding (spans and deltas) gives back every bucket\'s count', () => {
  const next = random(7);
  for (let round = 0; round < 50; round++) {
    const h = new HistogramAggregate([1]);
    const want = new Map<number, number>();
    const wantNeg = new Map<number, number>();
    let zero = 0;
    for (let n = 0; n < 500; n++) {
      // Clustered values with gaps, zeros, negatives, far outliers and infinities.
      const r = next();
      const v = r < 0.05 ? 0 : r < 0.1 ? -(2 ** (next() * 20)) : r < 0.12 ? Infinity : r < 0.13 ? 2 ** (next() * 2000 - 1000) : 2 ** (Math.floor(next() * 6) * 3 + next());
      h.record(v);
      if (Math.abs(v) <= NATIVE_ZERO_THRESHOLD) zero++;
      else {
        const i = Number.isFinite(v) ? nativeIndex(v) : 2 ** 31 - 1;
        const m = v > 0 ? want : wantNeg;
        m.set(i, (m.get(i) ?? 0) + 1);
      }
    }
    const decode = ({ spans, deltas }: { spans: { offset: number; length: number }[]; deltas: number[] }) => {
      const out = new Map<number, number>();
      let i = 0;
      let d = 0;
      let count = 0;
      spans.forEach((s, k) => {
        i = k === 0 ? s.offset : i + s.offset;
        for (let j = 0; j < s.length; j++, i++) {
          count += deltas[d++]!;
          if (count !== 0) out.set(i, count);
        }
      });
      assert.equal(d, deltas.length, 'every delta in a span');
      return out;
    };
    const { positive, negative } = h.native();
    assert.deepEqual(decode(positive), want);
    assert.deepEqual(decode(negative), wantNeg);
    assert.equal(h.zeroCount, zero);
    assert.equal(h.count, 500);
  }
});

test('past maxWidth the resolution is halved until it fits: every value stays in the bucket the lower schema gives it', () => {
  const next = random(31);
  for (const maxWidth of [16, 64, 160]) {
    const h = new HistogramAggregate([1], maxWidth);
    const values: number[] = [];
    for (let n = 0; n < 20_000; n++) {
      // Log-uniform over 1e-6 … 1e9 (about 50 doublings: 400 buckets at schema 3), both signs.
      const v = (next() < 0.3 ? -1 : 1) * 10 ** (next() * 15 - 6);
      values.push(v);
      h.record(v);
    }
    assert.ok(h.schema < 3 && h.schema >= -4, `schema ${h.schema}`);
    const { positive, negative } = h.nativeEntries();
    assert.ok(positive.length + negative.length <= maxWidth, `${positive.length + negative.length} buckets in ${maxWidth}`);
    // The definition at schema s: |v| is in bucket ceil(log2|v| * 2^s).
    const want = { positive: new Map<number, number>(), negative: new Map<number, number>() };
    for (const v of values) {
      const side = v > 0 ? want.positive : want.negative;
      const i = Math.ceil(Math.ceil(Math.log2(Math.abs(v)) * 8) / 2 ** (3 - h.schema));
      side.set(i, (side.get(i) ?? 0) + 1);
    }
    assert.deepEqual(positive, [...want.positive].sort((a, b) => a[0] - b[0]), `maxWidth ${maxWidth}: positive`);
    assert.deepEqual(negative, [...want.negative].sort((a, b) => a[0] - b[0]), `maxWidth ${maxWidth}: negative`);
    h.reset();
    assert.equal(h.schema, 3);
    assert.deepEqual(h.nativeEntries(), { positive: [], negative: [] });
    assert.equal(h.count + h.sum + h.zeroCount + h.classic.reduce((a, b) => a + b, 0), 0);
  }
});

// The hot encoder writes frames byte for byte as `sizeDelimitedEncode(EventSchema, …)` does.
import { create } from '@bufbuild/protobuf';
import { sizeDelimitedEncode } from '@bufbuild/protobuf/wire';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventSchema } from '../src/gen/event_pb.js';
import { normalizeKey } from '../src/app/key.js';
import { FrameEncoder, GAUGE_ABSOLUTE, GAUGE_DECREMENT, GAUGE_INCREMENT } from '../src/worker/encoder.js';
import { KeyTable } from '../src/worker/keys.js';

type Value =
  | { case: 'counter'; value: bigint }
  | { case: 'gauge'; value: { case: 'absolute' | 'increment' | 'decrement'; value: number } }
  | { case: 'histogram'; value: number };

function expected(key: unknown, nowMs: number, v: Value): Uint8Array {
  const k = normalizeKey(key);
  const seconds = Math.floor(nowMs / 1000);
  const nanos = Math.floor((nowMs - seconds * 1000) * 1e6);
  const value =
    v.case === 'counter'
      ? { case: 'counter' as const, value: { value: v.value } }
      : v.case === 'gauge'
        ? { case: 'gauge' as const, value: { value: v.value } }
        : { case: 'histogram' as const, value: { value: v.value } };
  return sizeDelimitedEncode(
    EventSchema,
    create(EventSchema, {
      event: {
        case: 'metric',
        value: {
          name: k.name,
          timestamp: { seconds: BigInt(seconds), nanos },
          labels: Object.fromEntries(k.labels),
          value,
        },
      },
    }),
  );
}

const keys: unknown[] = [
  'requests',
  { name: 'requests', labels: { service: 'api', region: 'eu' } },
  { name: 'héllo wörld ✓', labels: { zeta: 'ž', alpha: '', 'é': 'x' } },
  { name: 'x'.repeat(300), labels: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`label_${i}`, 'v'.repeat(i * 10)])) },
];
const times = [0, 1, 999.999999, 1_795_779_328_059.53, Date.now() + 0.123456];
const counters = [0, 1, 127, 128, 300, 2 ** 32, 2 ** 53 - 1];
const u64s = [0n, 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n];
const doubles = [0, -0, 1, -1.5, 0.25, 7.5, 1e300, -1e-300, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.MIN_VALUE];
const gauges = [
  ['absolute', GAUGE_ABSOLUTE],
  ['increment', GAUGE_INCREMENT],
  ['decrement', GAUGE_DECREMENT],
] as const;

function entry(table: KeyTable, key: unknown) {
  const k = normalizeKey(key);
  return table.entry(k.canonical, k.name, k.labels);
}

test('every op encodes exactly as toBinary does', () => {
  const table = new KeyTable();
  let checked = 0;
  for (const key of keys) {
    const e = entry(table, key);
    for (const t of times) {
      const enc = new FrameEncoder();
      const want: Uint8Array[] = [];
      enc.begin(t);
      for (const c of counters) {
        enc.counter(e, c);
        want.push(expected(key, t, { case: 'counter', value: BigInt(c) }));
      }
      for (const u of u64s) {
        enc.counterU64(e, Number(u & 0xffffffffn), Number(u >> 32n));
        want.push(expected(key, t, { case: 'counter', value: u }));
      }
      for (const d of doubles) {
        for (const [name, tag] of gauges) {
          enc.gauge(e, tag, d);
          want.push(expected(key, t, { case: 'gauge', value: { case: name, value: d } }));
        }
        enc.histogram(e, d);
        want.push(expected(key, t, { case: 'histogram', value: d }));
      }
      const chunk = enc.finish();
      assert.ok(chunk);
      assert.equal(chunk.ends.length, want.length);
      let start = 0;
      for (let i = 0; i < want.length; i++) {
        const got: Uint8Array = chunk.bytes.subarray(start, chunk.ends[i]!);
        assert.deepEqual(Buffer.from(got).toString('hex'), Buffer.from(want[i]!).toString('hex'), `frame ${i} of ${JSON.stringify(key)}`);
        start = chunk.ends[i]!;
        checked++;
      }
    }
  }
  assert.ok(checked > 500);
});

test('labels are written sorted by their UTF-8 bytes, like the seed BTreeMap', () => {
  const k = normalizeKey({ name: 'n', labels: { service: 'api', region: 'eu', '\u{1F600}': 'a', '\uFFFD': 'b', A: 'c' } });
  assert.deepEqual(
    k.labels.map(([l]) => l),
    ['A', 'region', 'service', '\uFFFD', '\u{1F600}'],
  );
});

test('a batch grows its buffer for frames larger than the initial one', () => {
  const table = new KeyTable();
  const big = { name: 'big', labels: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`l${i}`, 'x'.repeat(1024)])) };
  const e = entry(table, big);
  const enc = new FrameEncoder();
  enc.begin(1000);
  for (let i = 0; i < 3; i++) enc.histogram(e, i + 1);
  const chunk = enc.finish()!;
  assert.equal(chunk.ends.length, 3);
  assert.equal(
    Buffer.from(chunk.bytes.subarray(chunk.ends[1], chunk.ends[2])).toString('hex'),
    Buffer.from(expected(big, 1000, { case: 'histogram', value: 3 })).toString('hex'),
  );
});

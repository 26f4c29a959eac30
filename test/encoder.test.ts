// The hot encoder writes frames byte for byte as `sizeDelimitedEncode(EventSchema, …)` does.
import { create } from '@bufbuild/protobuf';
import { sizeDelimitedEncode } from '@bufbuild/protobuf/wire';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventSchema, Metadata_MetricType } from '../src/gen/event_pb.js';
import { EventSchema as ObserverEventSchema } from '../src/gen/observer_event_pb.js';
import { normalizeKey } from '../src/app/key.js';
import { Chunk, FrameEncoder, GaugeOp } from '../src/worker/encoder.js';
import type { Protocol } from '../src/shared/messages.js';
import { KeyTable } from '../src/worker/keys.js';
import { encodeMetadata } from '../src/worker/metadata.js';
import { Rng, baseSeed } from './fuzz-input.js';

type Value =
  | { case: 'counter'; value: bigint }
  | { case: 'gauge'; value: { case: 'absolute' | 'increment' | 'decrement'; value: number } }
  | { case: 'histogram'; value: number };

/** The observer-0.11 `operation` oneof for a value. */
function operation(v: Value) {
  if (v.case === 'counter') return { case: 'incrementCounter' as const, value: v.value };
  if (v.case === 'histogram') return { case: 'recordHistogram' as const, value: v.value };
  const g = v.value;
  const c = g.case === 'absolute' ? 'setGauge' : g.case === 'increment' ? 'incrementGauge' : 'decrementGauge';
  return { case: c, value: g.value } as const;
}

function expected(key: unknown, nowMs: number, v: Value, protocol: Protocol = 'seed'): Uint8Array {
  const k = normalizeKey(key);
  const seconds = Math.floor(nowMs / 1000);
  const nanos = Math.floor((nowMs - seconds * 1000) * 1e6);
  const timestamp = { seconds: BigInt(seconds), nanos };
  if (protocol === 'observer-0.11') {
    return sizeDelimitedEncode(
      ObserverEventSchema,
      create(ObserverEventSchema, {
        event: { case: 'metric', value: { name: k.name, timestamp, labels: Object.fromEntries(k.labels), operation: operation(v) } },
      }),
    );
  }
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
          timestamp,
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
  ['absolute', GaugeOp.Set],
  ['increment', GaugeOp.Increment],
  ['decrement', GaugeOp.Decrement],
] as const;

function entry(table: KeyTable, key: unknown) {
  const k = normalizeKey(key);
  return table.entry(k.canonical, k.name, k.labels);
}

for (const protocol of ['seed', 'observer-0.11'] as const) {
test(`every op encodes exactly as toBinary does (${protocol})`, () => {
  const table = new KeyTable();
  let checked = 0;
  for (const key of keys) {
    const e = entry(table, key);
    for (const t of times) {
      const enc = new FrameEncoder(protocol);
      const want: Uint8Array[] = [];
      enc.begin(t);
      for (const u of [...counters.map(BigInt), ...u64s]) {
        enc.counter(e, Number(u & 0xffffffffn), Number(u >> 32n));
        want.push(expected(key, t, { case: 'counter', value: u }, protocol));
      }
      for (const d of doubles) {
        for (const [name, op] of gauges) {
          enc.gauge(e, op, d);
          want.push(expected(key, t, { case: 'gauge', value: { case: name, value: d } }, protocol));
        }
        enc.histogram(e, d);
        want.push(expected(key, t, { case: 'histogram', value: d }, protocol));
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
}

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

test('a batch is written over the memory of the last one once no chunk of it is held', () => {
  const table = new KeyTable();
  const e = entry(table, { name: 'requests', labels: { route: '/users' } });
  const enc = new FrameEncoder();
  const batch = (t: number) => {
    enc.begin(t);
    for (let i = 0; i < 100; i++) enc.counter(e, i, 0);
    return enc.finish()!;
  };
  const a = batch(1000);
  const aHex = Buffer.from(a.bytes).toString('hex');
  const b = batch(2000); // a is held: b goes after it
  assert.equal(b.bytes.buffer, a.bytes.buffer);
  assert.equal(b.bytes.byteOffset, a.bytes.byteOffset + a.bytes.length);
  assert.equal(Buffer.from(a.bytes).toString('hex'), aHex);
  a.release();
  const c = batch(3000); // b is still held
  assert.equal(c.bytes.byteOffset, b.bytes.byteOffset + b.bytes.length);
  b.release();
  c.release();
  const d = batch(4000); // nothing held: back to the front
  assert.equal(d.bytes.buffer, a.bytes.buffer);
  assert.equal(d.bytes.byteOffset, a.bytes.byteOffset);
  assert.equal(Buffer.from(d.bytes).toString('hex'), Buffer.concat(Array.from({ length: 100 }, (_, i) => expected({ name: 'requests', labels: { route: '/users' } }, 4000, { case: 'counter', value: BigInt(i) }))).toString('hex'));
});

for (const protocol of ['seed', 'observer-0.11'] as const) {
  test(`random mixes of keys, ops and batches encode exactly as toBinary does, across slabs (${protocol})`, () => {
    let seed = 12345;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const table = new KeyTable();
    // Large keys make batches cross the 1 MiB slab, which moves them.
    const all = [...keys, { name: 'big', labels: { a: 'p'.repeat(1000), b: 'q'.repeat(1000), c: 'r'.repeat(1000) } }];
    const entries = all.map((k) => entry(table, k));
    const enc = new FrameEncoder(protocol);
    let checked = 0;
    // Chunks still held, as by a slow client: the encoder must not write over them.
    const held: { chunk: Chunk; hex: string }[] = [];
    for (let batch = 0; batch < 40; batch++) {
      for (let i = held.length - 1; i >= 0; i--) {
        if (rand() < 0.5) continue;
        assert.equal(Buffer.from(held[i]!.chunk.bytes).toString('hex'), held[i]!.hex, 'a held chunk was written over');
        held[i]!.chunk.release();
        held.splice(i, 1);
      }
      const t = pick(times) + batch;
      enc.begin(t);
      const want: Uint8Array[] = [];
      for (let i = Math.floor(rand() * 800); i > 0; i--) {
        const ki = Math.floor(rand() * all.length);
        const what = rand();
        if (what < 0.4) {
          const u = pick([...counters.map(BigInt), ...u64s]);
          enc.counter(entries[ki]!, Number(u & 0xffffffffn), Number(u >> 32n));
          want.push(expected(all[ki], t, { case: 'counter', value: u }, protocol));
        } else if (what < 0.7) {
          const [name, op] = pick(gauges);
          const d = pick(doubles);
          enc.gauge(entries[ki]!, op, d);
          want.push(expected(all[ki], t, { case: 'gauge', value: { case: name, value: d } }, protocol));
        } else {
          const d = pick(doubles);
          enc.histogram(entries[ki]!, d);
          want.push(expected(all[ki], t, { case: 'histogram', value: d }, protocol));
        }
      }
      const chunk = enc.finish();
      if (want.length === 0) {
        assert.equal(chunk, null);
        continue;
      }
      assert.equal(Buffer.from(chunk!.bytes).toString('hex'), Buffer.concat(want).toString('hex'), `batch ${batch}`);
      assert.equal(chunk!.ends.length, want.length);
      checked += want.length;
      if (rand() < 0.7) chunk!.release();
      else held.push({ chunk: chunk!, hex: Buffer.concat(want).toString('hex') });
    }
    assert.ok(checked > 10_000);
    for (const h of held) assert.equal(Buffer.from(h.chunk.bytes).toString('hex'), h.hex, 'a held chunk was written over');
  });
}

test('metadata frames encode exactly as toBinary does, on generated names, units and descriptions', () => {
  const rng = new Rng(baseSeed());
  const pieces = ['', 'a', 'é', '€', '😀', '\ud800', 'x'.repeat(127), 'y'.repeat(128), 'z'.repeat(20_000)];
  const text = () => Array.from({ length: rng.int(4) }, () => pieces[rng.int(pieces.length)]!).join('');
  const kinds = ['counter', 'gauge', 'histogram'] as const;
  const types = { counter: Metadata_MetricType.COUNTER, gauge: Metadata_MetricType.GAUGE, histogram: Metadata_MetricType.HISTOGRAM };
  for (let i = 0; i < 2000; i++) {
    const name = text();
    const kind = kinds[rng.int(3)]!;
    const unit = rng.chance(0.3) ? undefined : text();
    const description = rng.chance(0.3) ? undefined : text();
    const want = sizeDelimitedEncode(
      EventSchema,
      create(EventSchema, {
        event: {
          case: 'metadata',
          value: {
            name,
            metricType: types[kind],
            unit: unit === undefined ? { case: undefined } : { case: 'unitValue', value: unit },
            description: description === undefined ? { case: undefined } : { case: 'descriptionValue', value: description },
          },
        },
      }),
    );
    const got = encodeMetadata(name, kind, unit, description);
    assert.equal(Buffer.from(got).toString('hex'), Buffer.from(want).toString('hex'), `seed ${rng.seed}, ${JSON.stringify({ name, kind, unit, description }).slice(0, 200)}`);
  }
});

// The hot path allocates nothing: a million records grow the app thread's heap by almost nothing.
// Nor does the client's decoder: a million frames of known keys into a SeriesModel.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalizeKey } from '../src/app/key.js';
import { MetricReader, SeriesModel, type HistogramState } from '../src/client/index.js';
import { FrameEncoder, GaugeOp } from '../src/worker/encoder.js';
import { KeyTable } from '../src/worker/keys.js';
import { heapCost, withClient, waitFor } from './helpers.js';

test('1e6 handle records with a client connected allocate (almost) nothing on the app thread', async (t) => {
  const { recorder, client } = await withClient((b) => b.bufferSize(1 << 16));
  t.after(() => recorder.close());
  t.after(() => client.close());
  client.socket.pause(); // frames are not what this test is about
  const c = recorder.counter({ name: 'alloc', labels: { a: 'b' } });
  const g = recorder.gauge('alloc_g');
  const h = recorder.histogram('alloc_h');
  const run = (n: number) => {
    for (let i = 0; i < n; i++) {
      c.increment(1);
      g.set(i);
      h.record(0.25); // a constant: arithmetic on doubles would allocate in the test's own code
    }
  };
  run(300_000); // warm up: compile the hot path, create the handles' caches
  const { allocated, grew, runs } = heapCost(() => run(1_000_000 / 3));
  t.diagnostic(`loop allocated ${runs.map((r) => `${r.allocated} B (heap grew ${r.grew} B)`).join(', ')} over 1e6 records`);
  // 1e6 records; 16 bytes each on the heap would be 16 MB. Allow 256 KiB of noise.
  assert.ok(allocated < 256 * 1024, `the loop allocated ${allocated} bytes at least`);
  assert.ok(grew < 256 * 1024, `the heap grew by ${grew} bytes at least`);
  await waitFor('the worker drained', () => recorder.stats().recorded > 0);
});

/** A histogram state that allocates nothing itself: the largest value seen. */
class Largest implements HistogramState {
  max = Number.NEGATIVE_INFINITY;
  record(v: number): void {
    if (v > this.max) this.max = v;
  }
  reset(): void {
    this.max = Number.NEGATIVE_INFINITY;
  }
}

test('1e6 frames of known keys, decoded by MetricReader into a SeriesModel, allocate (almost) nothing', (t) => {
  // Real frames from the exporter's encoder: a counter, a gauge and a histogram over 30 labeled series.
  const keys = new KeyTable();
  const entries = Array.from({ length: 30 }, (_, i) => {
    const k = normalizeKey({ name: ['requests', 'depth', 'latency'][i % 3]!, labels: { service: 'api', route: `/r/${i % 10}` } });
    return keys.entry(k.canonical, k.name, k.labels);
  });
  const enc = new FrameEncoder('seed');
  enc.begin(Date.now());
  for (let i = 0; i < 100_000; i++) {
    const e = entries[i % 30]!;
    if (i % 3 === 0) enc.counter(e, 1, 0);
    else if (i % 3 === 1) enc.gauge(e, GaugeOp.Set, i + 0.5);
    else enc.histogram(e, i / 7);
  }
  const bytes = enc.finish()!.bytes;
  const chunks: Uint8Array[] = [];
  for (let pos = 0; pos < bytes.length; pos += 65_536) chunks.push(bytes.subarray(pos, pos + 65_536));
  const reader = new MetricReader();
  const model = new SeriesModel({ histogram: () => new Largest() });
  const feed = model.feed();
  const pass = () => {
    for (let i = 0; i < chunks.length; i++) {
      reader.push(chunks[i]!);
      feed.drain(reader);
    }
  };
  for (let i = 0; i < 30; i++) pass(); // warm up: keys interned, series bound, code optimised
  const { allocated, grew, runs } = heapCost(() => {
    for (let i = 0; i < 10; i++) pass();
  });
  t.diagnostic(`decoding allocated ${runs.map((r) => `${r.allocated} B (heap grew ${r.grew} B)`).join(', ')} over 1e6 frames`);
  assert.equal(model.events, (30 + 3 * 10) * 100_000);
  // An object per frame would be tens of MB.
  assert.ok(allocated < 256 * 1024, `decoding allocated ${allocated} bytes at least`);
  assert.ok(grew < 256 * 1024, `the heap grew by ${grew} bytes at least`);
});

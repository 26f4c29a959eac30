// An exporter's fill levels in the relay: recognised only as exporters send them, held at their
// largest for the hold, bounded however many threads a stream claims, and free of the caps.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FillHold, MAX_FILL_THREADS, fillGauge } from '../src/fill-hold.js';
import { SeriesBudget } from '../src/budget.js';
import { DEFAULT_BUCKETS, RelayStore } from '../src/store.js';

const ring = (thread: string) => ({ which: 'ring', thread }) as const;

test('only the gauges an exporter sends, with its labels, are fill levels', () => {
  assert.deepEqual(fillGauge('gauge', 'metrics_exporter_tcp_ring_peak', { thread: 'main' }), ring('main'));
  assert.deepEqual(fillGauge('gauge', 'metrics_exporter_tcp_ring_peak', { thread: '12' }), ring('12'));
  assert.deepEqual(fillGauge('gauge', 'metrics_exporter_tcp_buffer_size', {}), { which: 'size' });
  assert.deepEqual(fillGauge('gauge', 'metrics_exporter_tcp_client_queue_peak', {}), { which: 'queue' });
  for (const [kind, name, labels] of [
    ['counter', 'metrics_exporter_tcp_ring_peak', { thread: 'main' }],
    ['gauge', 'metrics_exporter_tcp_ring_peak', { thread: 'x'.repeat(20) }],
    ['gauge', 'metrics_exporter_tcp_ring_peak', { thread: '01' }],
    ['gauge', 'metrics_exporter_tcp_ring_peak', { thread: 'main', pod: 'a' }],
    ['gauge', 'metrics_exporter_tcp_buffer_size', { pod: 'a' }],
    ['gauge', 'queue_depth', {}],
  ] as const) assert.equal(fillGauge(kind, name, labels), undefined, `${kind} ${name} ${JSON.stringify(labels)}`);
});

test('a peak is held at its largest for the hold, then the current values are shown', () => {
  const hold = new FillHold(6000); // six slots of a second
  const t0 = 1_000_000;
  assert.equal(hold.held(t0), undefined, 'nothing before the buffer size');
  hold.set({ which: 'size' }, 4096, t0);
  hold.set(ring('main'), 3000, t0);
  hold.set(ring('7'), 500, t0 + 50);
  hold.set({ which: 'queue' }, 40, t0 + 50);
  hold.set(ring('main'), 0, t0 + 100); // the burst is over
  hold.set({ which: 'queue' }, 0, t0 + 100);
  assert.deepEqual(hold.held(t0 + 200), { bufferSize: 4096, ringPeak: 3000, queuePeak: 40 });
  assert.deepEqual(hold.held(t0 + 5900), { bufferSize: 4096, ringPeak: 3000, queuePeak: 40 }, 'within the hold');
  // Past the hold (and at most one slot more): what is current, thread 7's 500.
  assert.deepEqual(hold.held(t0 + 7100), { bufferSize: 4096, ringPeak: 500, queuePeak: 0 });
  hold.reset(); // a new connection: nothing current
  assert.deepEqual(hold.held(t0 + 7200), { bufferSize: 4096, ringPeak: 0, queuePeak: 0 });
  // Values no exporter sends are ignored.
  hold.set(ring('main'), Number.NaN, t0 + 7300);
  hold.set(ring('main'), -5, t0 + 7300);
  assert.equal(hold.held(t0 + 7300)!.ringPeak, 0);
});

test('a stream claiming more threads than kept has the rest refused; threads that come and go make the reader relearn its keys, never grow it', () => {
  const limits = { buckets: DEFAULT_BUCKETS, maxSeriesPerExporter: 10, maxBytesPerExporter: 10_000, peakHoldMs: 60_000 };
  const store = new RelayStore(limits, new SeriesBudget(1, 1));
  const e = store.of('x');
  const now = Date.now();
  for (let i = 1; i <= MAX_FILL_THREADS + 10; i++) e.apply({ kind: 'metric', name: 'metrics_exporter_tcp_ring_peak', labels: { thread: String(i) }, op: { type: 'gaugeSet', value: 5 } }, now);
  assert.equal(e.counts.refused.exporter_series, 10, 'past the threads kept');
  assert.equal(e.held, 0, 'fill levels hold no series');
  assert.equal(store.changes().changes.added.length, 0, 'nor are they sent to the main thread as series');
  e.apply({ kind: 'metric', name: 'jobs', labels: {}, op: { type: 'counterIncrement', value: 1n } }, now);
  assert.equal(e.held, 1, 'the one series of --max-series 1 is still free for the app');
  // Threads reported empty (gone): after as many as are kept, the reader's keys are forgotten once.
  const epoch = e.epoch;
  for (let i = 1; i < MAX_FILL_THREADS; i++) e.apply({ kind: 'metric', name: 'metrics_exporter_tcp_ring_peak', labels: { thread: String(i) }, op: { type: 'gaugeSet', value: 0 } }, now);
  assert.equal(e.epoch, epoch);
  e.apply({ kind: 'metric', name: 'metrics_exporter_tcp_ring_peak', labels: { thread: String(MAX_FILL_THREADS) }, op: { type: 'gaugeSet', value: 0 } }, now);
  assert.equal(e.epoch, epoch + 1);
});

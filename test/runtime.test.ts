// Runtime metrics under prom-client's names, recorded through the exporter's own hot path.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { threadId } from 'node:worker_threads';
import type { Event } from '../src/gen/event_pb.js';
import { startThread, waitFor, withClient } from './helpers.js';

interface Seen {
  kind: string;
  labels: Record<string, string>;
  values: number[];
}

/** Every metric frame, by name + labels (counters as numbers), and metadata by name. */
function collect(events: Event[]) {
  const metrics = new Map<string, Seen>();
  const meta = new Map<string, { type: number; unit?: string; description?: string }>();
  for (const e of events) {
    if (e.event.case === 'metadata') {
      const m = e.event.value;
      meta.set(m.name, { type: m.metricType, unit: m.unit.value, description: m.description.value });
      continue;
    }
    if (e.event.case !== 'metric') continue;
    const m = e.event.value;
    const id = `${m.name}${JSON.stringify(m.labels)}`;
    let s = metrics.get(id);
    if (s === undefined) metrics.set(id, (s = { kind: m.value.case!, labels: m.labels, values: [] }));
    const v = m.value;
    s.values.push(v.case === 'counter' ? Number(v.value.value) : v.case === 'gauge' ? v.value.value.value! : v.case === 'histogram' ? v.value.value : Number.NaN);
  }
  const byName = (name: string) => [...metrics.entries()].filter(([id]) => id.startsWith(`${name}{`)).map(([, s]) => s);
  return { metrics, meta, byName };
}

test('runtime metrics: prom-client names, kinds and units, plausible values, a forced GC; stop() stops them', async (t) => {
  const { recorder, client } = await withClient((b) => b.flushIntervalMs(5));
  t.after(() => recorder.close());
  t.after(() => client.close());
  const runtime = recorder.collectRuntimeMetrics({ intervalMs: 50 });
  t.after(() => runtime.stop());
  const gc = (globalThis as { gc?: () => void }).gc;
  await new Promise((r) => setTimeout(r, 120));
  gc?.();
  // A second and a bit of CPU, so that the CPU counters (whole seconds) must move.
  for (const end = performance.now() + 1100; performance.now() < end; );
  await waitFor('a few intervals', () => collect(client.events()).byName('nodejs_heap_size_used_bytes').reduce((n, s) => n + s.values.length, 0) >= 3);
  const { meta, byName } = collect(client.events());

  const cpu = byName('process_cpu_seconds')[0]!;
  assert.equal(cpu.kind, 'counter');
  assert.equal(cpu.values[0], 0, 'the series starts at once');
  await waitFor('a whole second of CPU', () => collect(client.events()).byName('process_cpu_seconds')[0]!.values.some((v) => v >= 1));
  assert.deepEqual(meta.get('process_cpu_seconds'), { type: 0, unit: 'seconds', description: meta.get('process_cpu_seconds')!.description });
  for (const name of ['process_resident_memory_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_external_memory_bytes']) {
    const s = byName(name)[0]!;
    assert.equal(s.kind, 'gauge', name);
    assert.ok(s.values.every((v) => v > 0), `${name} > 0`);
    assert.equal(meta.get(name)?.unit, 'bytes', name);
  }
  const start = byName('process_start_time_seconds')[0]!.values[0]!;
  assert.ok(Math.abs(start - performance.timeOrigin / 1000) < 2);
  const spaces = byName('nodejs_heap_space_size_used_bytes').map((s) => s.labels.space);
  assert.ok(spaces.includes('old') && spaces.includes('new'), `heap spaces: ${spaces.join(', ')}`);
  const elu = byName('nodejs_eventloop_utilization')[0]!.values;
  assert.ok(elu.every((u) => u >= 0 && u <= 1));
  assert.ok(byName('nodejs_eventloop_lag_seconds')[0]!.values.every((v) => v >= 0 && v < 5));
  assert.ok(byName('nodejs_eventloop_lag_p99_seconds').length === 1);
  // prom-client's names: a total, and one gauge per type (this test's client socket is one).
  for (const what of ['handles', 'requests', 'resources']) assert.ok(byName(`nodejs_active_${what}_total`)[0]!.values.every((v) => v >= 0), what);
  const handleTypes = byName('nodejs_active_handles').map((s) => s.labels.type);
  assert.ok(handleTypes.includes('TCPSocketWrap'), `handle types: ${handleTypes.join(', ')}`);
  assert.ok(byName('nodejs_active_resources').some((s) => s.labels.type === 'Timeout'), 'timers are resources, not handles');
  if (process.platform === 'linux') assert.ok(byName('process_open_fds')[0]!.values[0]! > 3);
  const version = byName('nodejs_version_info')[0]!;
  assert.equal(version.labels.version, process.version);
  assert.deepEqual(version.values, [1]);
  if (gc !== undefined) {
    const major = () => collect(client.events()).byName('nodejs_gc_duration_seconds').find((s) => s.labels.kind === 'major');
    await waitFor('the forced GC', () => major() !== undefined);
    assert.ok(major()!.kind === 'histogram' && major()!.values.every((v) => v >= 0 && v < 5), 'recorded in seconds');
    assert.equal(meta.get('nodejs_gc_duration_seconds')?.type, 2);
  }

  runtime.stop();
  await new Promise((r) => setTimeout(r, 100));
  const frames = client.frames().length;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(client.frames().length, frames, 'nothing after stop()');
});

test('runtime metrics stop with close(); bad options throw at the boundary', async () => {
  const { recorder, client } = await withClient();
  assert.throws(() => recorder.collectRuntimeMetrics({ intervalMs: 0 }), TypeError);
  assert.throws(() => recorder.collectRuntimeMetrics({ prefix: 3 as unknown as string }), TypeError);
  recorder.collectRuntimeMetrics({ intervalMs: 20, prefix: 'app_' });
  await waitFor('prefixed names', () => client.events().some((e) => e.event.case === 'metadata' && e.event.value.name === 'app_process_cpu_seconds'));
  await recorder.close(); // the test would not end if its timer or observers were left running
  await client.close();
});

test('in an attached thread: the thread\'s own heap, event loop and GC, labeled thread', async (t) => {
  const { recorder, client } = await withClient((b) => b.flushIntervalMs(5));
  t.after(() => recorder.close());
  t.after(() => client.close());
  const th = startThread(recorder, [{ do: 'runtime', intervalMs: 50 }], 'linger');
  t.after(() => th.worker.terminate());
  // A collection's records may be published in more than one batch: wait for its first and last.
  await waitFor('the thread\'s heap and event loop', () => {
    const { byName } = collect(client.events());
    return byName('nodejs_heap_size_used_bytes').length > 0 && byName('nodejs_eventloop_utilization').length > 0;
  });
  const { byName, metrics } = collect(client.events());
  const heap = byName('nodejs_heap_size_used_bytes')[0]!;
  assert.equal(heap.labels.thread, String(th.worker.threadId));
  assert.notEqual(heap.labels.thread, String(threadId));
  assert.ok(byName('nodejs_eventloop_utilization')[0]!.labels.thread !== undefined);
  for (const id of metrics.keys()) assert.ok(!id.startsWith('process_'), `no process figures from a thread: ${id}`);
});

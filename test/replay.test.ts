// replayOnConnect: a client that connects late sees the totals and gauges a client connected
// from the start would, whatever happened before it: no client at all, other clients, other
// threads, a worker restart.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Event } from '../src/gen/event_pb.js';
import { hostOf } from '../src/app/recorder.js';
import type { TcpRecorder } from '../src/index.js';
import { startExporter, startThread, TestClient, waitFor } from './helpers.js';

/** What a client makes of its stream: counter totals and current gauge values, by name. */
function view(events: Event[]): { counters: Record<string, number>; gauges: Record<string, number>; histograms: number } {
  const counters: Record<string, number> = {};
  const gauges: Record<string, number> = {};
  let histograms = 0;
  for (const e of events) {
    if (e.event.case !== 'metric') continue;
    const m = e.event.value;
    const v = m.value;
    if (v.case === 'counter') counters[m.name] = (counters[m.name] ?? 0) + Number(v.value.value);
    else if (v.case === 'histogram') histograms++;
    else if (v.case === 'gauge') {
      const g = v.value.value;
      gauges[m.name] = g.case === 'absolute' ? g.value : (gauges[m.name] ?? 0) + (g.case === 'increment' ? g.value : -g.value!);
    }
  }
  return { counters, gauges, histograms };
}

async function connect(recorder: TcpRecorder, clients: number): Promise<TestClient> {
  const c = await TestClient.connect(recorder.address);
  await waitFor('the client registered', () => recorder.stats().clients === clients);
  return c;
}

test('a late client sees the totals and gauges of what happened before it, with no client at all', async (t) => {
  const recorder = await startExporter((b) => b.replayOnConnect(true).flushIntervalMs(5));
  t.after(() => recorder.close());
  recorder.registerCounter('requests', 'count', 'Requests served');
  const c = recorder.counter({ name: 'requests', labels: { route: '/a' } });
  const g = recorder.gauge('pool_size');
  const h = recorder.histogram('latency');
  for (let i = 0; i < 1000; i++) c.increment();
  g.set(10);
  g.set(16);
  h.record(0.5);
  c.increment(-1); // invalid: dropped, like any record made with no client
  const late = await connect(recorder, 1);
  t.after(() => late.close());
  await waitFor('the replay', () => view(late.events()).counters.requests === 1000);
  const events = late.events();
  assert.equal(events[0]!.event.case, 'metadata', 'metadata first');
  assert.deepEqual(view(events), { counters: { requests: 1000 }, gauges: { pool_size: 16 }, histograms: 0 }, 'histograms are not replayed');
  c.increment(5);
  await waitFor('the live stream after it', () => view(late.events()).counters.requests === 1005);
});

test('totals add up across clients coming and going, records made with none, and gauge increments', async (t) => {
  const recorder = await startExporter((b) => b.replayOnConnect(true).flushIntervalMs(5));
  t.after(() => recorder.close());
  const c = recorder.counter('jobs');
  const g = recorder.gauge('in_flight');
  const a = await connect(recorder, 1);
  for (let i = 0; i < 500; i++) c.increment();
  g.set(16);
  g.increment(3);
  await waitFor('A has them', () => view(a.events()).counters.jobs === 500 && view(a.events()).gauges.in_flight === 19);
  await a.close();
  await waitFor('no client', () => recorder.stats().clients === 0);
  for (let i = 0; i < 500; i++) c.increment();
  g.decrement(1);
  const b = await connect(recorder, 1);
  t.after(() => b.close());
  await waitFor('B sees everything', () => view(b.events()).counters.jobs === 1000);
  assert.equal(view(b.events()).gauges.in_flight, 18);
  const c2 = await connect(recorder, 2);
  t.after(() => c2.close());
  await waitFor('a second late client too', () => view(c2.events()).counters.jobs === 1000);
  assert.equal(view(c2.events()).gauges.in_flight, 18);
});

test('across threads: counters summed, gauges by the documented rule; and after a worker restart', async (t) => {
  const recorder = await startExporter((b) => b.replayOnConnect(true).flushIntervalMs(5));
  t.after(() => recorder.close());
  recorder.gauge('pool_size').set(16);
  // Two threads count 500 each, with no client connected, and exit.
  const threads = [0, 1].map(() => startThread(recorder, [{ do: 'burst', n: 500, key: 'jobs', labels: {} }]));
  await Promise.all(threads.map((th) => th.exited));
  await waitFor('their rings folded and released', () => recorder.stats().attachedThreads === 0);
  const late = await connect(recorder, 1);
  await waitFor('the totals', () => view(late.events()).counters.jobs === 1000);
  assert.equal(view(late.events()).gauges.pool_size, 16);
  recorder.counter('jobs').increment(24); // live, while connected
  await waitFor('live', () => view(late.events()).counters.jobs === 1024);

  // The worker dies; the totals live in shared memory and the app's threads keep their state.
  await hostOf(recorder).thread.terminate();
  await waitFor('restarted', () => recorder.stats().workerRestarts === 1, 10_000);
  await late.close();
  recorder.counter('jobs').increment(1000); // while no client is connected to the new worker
  let after: TestClient | undefined;
  for (let i = 0; after === undefined; i++) {
    after = await TestClient.connect(recorder.address).catch(async (err: unknown) => {
      if (i > 200) throw err;
      await new Promise((r) => setTimeout(r, 20));
      return undefined;
    });
  }
  t.after(() => after!.close());
  await waitFor('the totals after the restart', () => view(after!.events()).counters.jobs === 2024, 5000, () => view(after!.events()));
  assert.equal(view(after.events()).gauges.pool_size, 16);
});

test('off by default: a late client sees only what comes after it', async (t) => {
  const recorder = await startExporter((b) => b.flushIntervalMs(5));
  t.after(() => recorder.close());
  const c = recorder.counter('x');
  for (let i = 0; i < 10; i++) c.increment();
  const late = await connect(recorder, 1);
  t.after(() => late.close());
  c.increment();
  await waitFor('the live record', () => view(late.events()).counters.x === 1);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(view(late.events()).counters, { x: 1 });
});

test('replayOnConnect is validated like the other options', async () => {
  const { TcpBuilder } = await import('../src/index.js');
  for (const bad of [1, 'yes', undefined]) assert.throws(() => new TcpBuilder().replayOnConnect(bad as unknown as boolean), TypeError);
});

test('totals made with no client are exact past 2^31, for bigint and large increments', async (t) => {
  const recorder = await startExporter((b) => b.replayOnConnect(true).flushIntervalMs(5));
  t.after(() => recorder.close());
  const c = recorder.counter('bytes');
  c.increment(2 ** 31 - 1); // fills the int32 sum
  c.increment(1); // does not fit: goes to the double
  c.increment(2 ** 40); // not an int32
  c.increment(5n);
  c.increment(1.5); // invalid: dropped
  c.increment(-3); // invalid: dropped
  const late = await connect(recorder, 1);
  t.after(() => late.close());
  await waitFor('the total', () => view(late.events()).counters.bytes !== undefined);
  assert.equal(view(late.events()).counters.bytes, 2 ** 31 + 2 ** 40 + 5);
});

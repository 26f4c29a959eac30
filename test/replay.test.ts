// replayOnConnect: a client that connects late sees the totals and gauges a client connected
// from the start would, whatever happened before it: no client at all, other clients, other
// threads, a worker restart.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { fromBinary } from '@bufbuild/protobuf';
import { EventSchema } from '../src/gen/event_pb.js';
import { hostOf } from '../src/app/recorder.js';
import { Ctl, REPLAY_SLOTS, STATE_BYTES, STATE_PAGE_KEYS, State, createRing } from '../src/shared/layout.js';
import { KeyTable } from '../src/worker/keys.js';
import { ReplayTable } from '../src/worker/replay.js';
import { MAIN_RING, RingReader } from '../src/worker/ring-reader.js';
import type { TcpRecorder } from '../src/index.js';
import { recordSteadily } from './fixtures/steady.js';
import { splitFrames, startExporter, startThread, TestClient, view, waitFor } from './helpers.js';

/** Resolves once `client` has received nothing new for 200 ms. */
async function quiet(client: TestClient): Promise<void> {
  for (let last = -1; client.bytes !== last; ) {
    last = client.bytes;
    await new Promise((r) => setTimeout(r, 200));
  }
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
  // The bigint increment goes through the ring: it may reach the client after the replayed total, as an increment.
  const want = 2 ** 31 + 2 ** 40 + 5;
  await waitFor('the total', () => view(late.events()).counters.bytes === want, 5000, () => view(late.events()).counters.bytes);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(view(late.events()).counters.bytes, want, 'and nothing more');
});

test('records made while a client connects reach it: its totals and gauges, and a later client\'s, equal what was recorded', async () => {
  // A thread that read "no client" just before the worker said there is one writes its state
  // page after the worker folded it: that record must still reach the client (and the gauge's
  // newer live value must not be replaced by it later). The race is narrow: run it a few times,
  // on the recorder's thread and on an attached one at once.
  for (let run = 0; run < 4; run++) {
    const recorder = await startExporter((b) => b.replayOnConnect(true).bufferSize(null).flushIntervalMs(5));
    const thread = new Worker(new URL('./fixtures/steady-thread.js', import.meta.url), { workerData: { connector: recorder.connector(), ms: 900 } });
    const threadCount = new Promise<number>((r) => thread.once('message', r));
    const threadExited = new Promise((r) => thread.once('exit', r));
    const mainCount = recordSteadily(recorder, 900);
    await new Promise((r) => setTimeout(r, 300 + run * 50));
    const a = await TestClient.connect(recorder.address);
    const made = (await threadCount) + (await mainCount);
    await threadExited;
    recorder.flush();
    await waitFor('the thread\'s ring released', () => recorder.stats().attachedThreads === 0);
    const b = await TestClient.connect(recorder.address);
    await waitFor('the later client\'s replay', () => b.frames().length >= 2);
    await quiet(a); // decoding the whole stream is slow: once, when it has stopped growing
    const va = view(a.events());
    const vb = view(b.events());
    await Promise.all([a.close(), b.close()]);
    await recorder.close();
    assert.equal(va.counters.jobs, made, `run ${run}: the client connected mid-way`);
    assert.equal(vb.counters.jobs, made, `run ${run}: the later client`);
    // Each thread ends with level = its own count; which thread's set comes last differs, but
    // both clients must agree with the table, and neither may hold a value older than both.
    assert.equal(vb.gauges.level, va.gauges.level, `run ${run}: both clients see the same gauge`);
  }
});

test('a gauge set being written while the worker folds is folded whole, never half', () => {
  // The producer's set changes two slots (value, and the delta since the set); its count is a
  // seqlock. Fold at each step of a set written by hand, as a racing producer would leave it.
  const table = new ReplayTable(new SharedArrayBuffer(8 * REPLAY_SLOTS * 8), [], 'seed', () => {}, () => {});
  const key = new KeyTable().entry('"level"', 'level', []);
  table.assign(key, '"level"');
  const page = new SharedArrayBuffer(STATE_PAGE_KEYS * STATE_BYTES);
  const f64 = new Float64Array(page);
  const i32 = new Int32Array(page);
  const ring = new RingReader(createRing(2), undefined, 0, MAIN_RING);
  ring.keys[0] = key;
  ring.statePages[0] = { f64, i32 };
  const replayed = (): number => {
    const frames = table.frames(0)!;
    const gauges = splitFrames(frames.bytes).frames.map((f) => fromBinary(EventSchema, f)).flatMap((e) => (e.event.case === 'metric' && e.event.value.value.case === 'gauge' ? [e.event.value.value.value.value.value] : []));
    frames.release();
    return gauges.at(-1) as number;
  };
  // set(10), then increment(5): 15.
  i32[State.GaugeSets] = 2;
  f64[State.GaugeSetValue] = 10;
  f64[State.GaugeDelta] = 5;
  table.foldRing(ring, null, () => {});
  assert.equal(replayed(), 15);
  // set(100) half written: the count is odd, the delta already reset.
  i32[State.GaugeSets] = 3;
  f64[State.GaugeDelta] = 0;
  table.foldRing(ring, null, () => {});
  assert.equal(replayed(), 15, 'a set in progress is not folded (an increment of -5 would give 10)');
  f64[State.GaugeSetValue] = 100;
  i32[State.GaugeSets] = 4;
  table.foldRing(ring, null, () => {});
  assert.equal(replayed(), 100, 'folded once written');
});

test('a record written to a thread\'s state just after a client connected reaches it, with no record after it', async (t) => {
  // The race made deterministic: a handle that read "no client" before the connection writes its
  // state page after the worker's fold. Nothing rings the worker afterwards; it must still find it.
  const recorder = await startExporter((b) => b.replayOnConnect(true).flushIntervalMs(20));
  t.after(() => recorder.close());
  const jobs = recorder.counter('jobs');
  jobs.increment(3);
  const client = await connect(recorder, 1);
  t.after(() => client.close());
  await waitFor('the replay', () => view(client.events()).counters.jobs === 3);
  await new Promise((r) => setTimeout(r, 300)); // the worker has nothing left to do (still within the fold window)
  const late = jobs as unknown as { i32: Int32Array };
  late.i32[State.CounterFast] = late.i32[State.CounterFast]! + 4;
  await waitFor('the late record, sent live', () => view(client.events()).counters.jobs === 7, 3000, () => view(client.events()));
});

test('a record written to a state page just as a client connects reaches it, however idle the worker', async (t) => {
  // The fold window after a connection (a thread that read "no client" just before writes its
  // state a moment later) ran no rounds when the worker had nothing else to do and no thread was
  // attached: the record waited for the next record, or the next client.
  const recorder = await startExporter((b) => b.replayOnConnect(true).flushIntervalMs(20));
  t.after(() => recorder.close());
  const c = recorder.counter('late_write');
  // The worker applies the key's announcement, then finds nothing more to do and sleeps.
  await new Promise((r) => setTimeout(r, 300));
  const client = await connect(recorder, 1);
  t.after(() => client.close());
  const ctl = new Int32Array(recorder.connector().ctl);
  // This thread read "no client" an instant before the worker said there is one.
  Atomics.store(ctl, Ctl.Clients, 0);
  c.increment(5);
  Atomics.store(ctl, Ctl.Clients, 1);
  await waitFor('the record folded and sent within the fold window', () => view(client.events()).counters.late_write === 5, 3000);
});

test('a thread with thousands of keys is folded in several commits, each key once', async (t) => {
  // The fold of a ring is committed in parts (the journal holds a bounded number of changes);
  // every part must go, and none twice.
  const recorder = await startExporter((b) => b.replayOnConnect(true).maxKeys(20_000));
  t.after(() => recorder.close());
  const keys = 6000;
  for (let i = 0; i < keys; i++) recorder.counter({ name: 'many', labels: { i: String(i) } }).increment(i + 1);
  const client = await connect(recorder, 1);
  t.after(() => client.close());
  const total = (): number => view(client.events()).counters.many ?? 0;
  await waitFor('every key\'s total', () => total() === (keys * (keys + 1)) / 2, 10_000, () => ({ total: total(), stats: recorder.stats() }));
  await quiet(client);
  assert.equal(view(client.events()).counters.many, (keys * (keys + 1)) / 2, 'and nothing more');
  assert.equal(recorder.stats().workerRestarts, 0);
});

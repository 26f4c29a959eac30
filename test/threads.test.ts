// Recording from other threads: worker_threads and a piscina pool feed the same exporter.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { Event } from '../src/gen/event_pb.js';
import { attach, type TcpRecorder } from '../src/index.js';
import { withMetrics } from '../src/piscina.js';
import type { Step } from './fixtures/script-thread.js';
import { TestClient, startThread, tally, waitFor, withClient } from './helpers.js';

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url);

/** Sum of the counter frames of `name`, by `kind` label. */
function sums(events: Event[], name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of events) {
    if (e.event.case !== 'metric' || e.event.value.name !== name || e.event.value.value.case !== 'counter') continue;
    const kind = e.event.value.labels.kind ?? '';
    out[kind] = (out[kind] ?? 0) + Number(e.event.value.value.value.value);
  }
  return out;
}

interface Running {
  readonly worker: Worker;
  /** Settles when the thread has exited (listened for from the start, so never missed). */
  readonly exited: Promise<unknown>;
}

/** Starts a fixture thread; resolves once it has recorded everything. */
function runThread(recorder: TcpRecorder, data: Record<string, unknown>): Promise<Running> {
  const worker = new Worker(fixture('record-thread.js'), { workerData: { connector: recorder.connector(), ...data } });
  const exited = new Promise((r) => worker.once('exit', r));
  return new Promise((resolve, reject) => {
    worker.once('message', () => resolve({ worker, exited }));
    worker.once('error', reject);
  });
}

test('4 worker threads: the client sums are exact, and each thread lost nothing at exit', async (t) => {
  const { recorder, client } = await withClient((b) => b.bufferSize(1 << 16));
  t.after(() => recorder.close());
  t.after(() => client.close());
  const count = 20_000;
  const workers = await Promise.all([0, 1, 2, 3].map(() => runThread(recorder, { count })));
  await Promise.all(workers.map((w) => w.exited)); // each exits right after its last record
  await waitFor('every increment', () => (sums(client.events(), 'jobs').thread ?? 0) === 4 * count, 10_000);
  assert.deepEqual(recorder.stats().dropped, { ringFull: 0, clientQueue: 0, invalid: 0, metadata: 0 });
  assert.equal(recorder.stats().recorded, 4 * count);
  await waitFor('rings released', () => recorder.stats().attachedThreads === 0);
});

test('a piscina pool of 4 threads records through the same exporter', async (t) => {
  const { recorder, client } = await withClient((b) => b.bufferSize(1 << 16));
  t.after(() => recorder.close());
  t.after(() => client.close());
  const pool = new Piscina(withMetrics(recorder, { filename: fixture('pool-task.js').href, minThreads: 4, maxThreads: 4 }));
  t.after(() => pool.destroy());
  const tasks = Array.from({ length: 40 }, () => pool.run({ n: 1000 }));
  assert.equal((await Promise.all(tasks)).reduce((a: number, b: number) => a + b, 0), 40_000);
  await waitFor('every increment', () => (sums(client.events(), 'jobs').pool ?? 0) === 40_000, 10_000);
  assert.ok(recorder.stats().attachedThreads >= 1 && recorder.stats().attachedThreads <= 4);
  await pool.destroy();
  // piscina terminates its threads: their rings go too (found by the thread liveness check).
  await waitFor('rings released after the pool is gone', () => recorder.stats().attachedThreads === 0, 5000);
});

test('keys from different threads are one key; metadata from any thread reaches every client', async (t) => {
  const { recorder, client } = await withClient();
  t.after(() => recorder.close());
  t.after(() => client.close());
  const main = attach(recorder.connector()); // attach works on the main thread too
  main.counter({ name: 'jobs', labels: { kind: 'thread' } }).increment(5);
  await (await runThread(recorder, { count: 3, register: true })).exited;
  await waitFor('frames', () => (sums(client.events(), 'jobs').thread ?? 0) === 8);
  const meta = client.events().filter((e) => e.event.case === 'metadata');
  assert.equal(meta.length, 1);
  const late = await TestClient.connect(recorder.address);
  t.after(() => late.close());
  await waitFor('replay', () => late.frames().length === 1);
  const replay = late.events()[0]!;
  assert.equal(replay.event.case, 'metadata');
  assert.equal(replay.event.value.name, 'jobs');
});

test('100 threads attaching and exiting leave no ring behind', async (t) => {
  const { recorder, client } = await withClient((b) => b.bufferSize(256));
  t.after(() => recorder.close());
  t.after(() => client.close());
  const rounds = 10;
  const perRound = 10;
  for (let r = 0; r < rounds; r++) {
    const ws = await Promise.all(Array.from({ length: perRound }, () => runThread(recorder, { count: 10 })));
    await Promise.all(ws.map((w) => w.exited));
  }
  await waitFor('all frames', () => (sums(client.events(), 'jobs').thread ?? 0) === rounds * perRound * 10, 10_000);
  await waitFor('no ring left', () => recorder.stats().attachedThreads === 0);
});

test('a terminated thread is noticed and its ring released; what it published arrives', async (t) => {
  const { recorder, client } = await withClient((b) => b.bufferSize(4096));
  t.after(() => recorder.close());
  t.after(() => client.close());
  const w = await runThread(recorder, { count: 1000, linger: true });
  await waitFor('attached', () => recorder.stats().attachedThreads === 1);
  await waitFor('published records', () => (sums(client.events(), 'jobs').thread ?? 0) === 1000);
  await w.worker.terminate();
  await waitFor('released', () => recorder.stats().attachedThreads === 0, 5000);
});

test('attach() rejects anything but a connector', () => {
  for (const bad of [undefined, null, {}, { kind: 'metrics-exporter-tcp/connector' }, 'x']) {
    assert.throws(() => attach(bad), TypeError);
  }
});

test('a thread that creates keys while its earlier records are being drained loses nothing', async (t) => {
  // The ring holds all 10 000 records, so none is dropped while the worker waits for a key's
  // message; what is tested is that it drains in order around those waits, never past them.
  const { recorder, client } = await withClient((b) => b.bufferSize(16_384));
  t.after(() => recorder.close());
  t.after(() => client.close());
  // New keys every 50 records: their control messages travel on the BroadcastChannel while
  // the worker is already draining the ring behind them.
  const running = await runThread(recorder, { count: 10_000, newKeyEvery: 50 });
  await running.exited;
  await waitFor('every increment', () => (sums(client.events(), 'jobs').thread ?? 0) === 10_000, 10_000);
  await waitFor('ring released', () => recorder.stats().attachedThreads === 0);
  const s = recorder.stats();
  assert.equal(s.recorded, 10_000);
  assert.deepEqual(s.dropped, { ringFull: 0, clientQueue: 0, invalid: 0, metadata: 0 });
  assert.equal(client.metrics().length, 10_000);
});

test('keys of threads that are gone are released: churning threads do not grow the worker', async (t) => {
  const { recorder, client } = await withClient();
  t.after(() => recorder.close());
  t.after(() => client.close());
  recorder.counter('main_key').increment();
  for (let round = 0; round < 5; round++) {
    // Each thread has keys of its own (per-thread dynamic names), and one key all share.
    const threads = Array.from({ length: 4 }, (_, i) =>
      startThread(recorder, [
        ...Array.from({ length: 50 }, (_, k): Step => ({ do: 'burst', n: 1, key: `r${round}_t${i}_k${k}` })),
        { do: 'burst', n: 1, key: 'main_key' },
      ]),
    );
    await Promise.all(threads.map((th) => th.exited));
    await waitFor('rings released', () => recorder.stats().attachedThreads === 0);
    assert.equal(recorder.stats().keys, 1, 'only the main thread\'s key is left');
  }
  await waitFor('every record', () => tally(client.events()).metrics === 1 + 5 * 4 * 51);
});

// metrics-exporter-tcp/testing: captureMetrics() records through the real hot path (handles write
// into real rings and state pages, a real worker thread takes them), reads exact totals at once,
// follows module-level handles, resets exactly, and uninstalls.
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { test } from 'node:test';
import { Piscina } from 'piscina';
import { TcpBuilder, counter, describeCounter, describeHistogram, gauge, histogram } from '../src/index.js';
import { ExporterError } from '../src/errors.js';
import { withMetrics } from '../src/piscina.js';
import { hostOf, type TcpRecorder } from '../src/app/recorder.js';
import { crashWorker, waitFor } from './helpers.js';
import { CaptureError, captureMetrics, type MetricsCapture } from '../src/testing/index.js';

// Made at module level, before any capture exists: they must record into each capture.
const moduleJobs = counter({ name: 'jobs', labels: { queue: 'a' } });
const moduleDepth = gauge('depth');
const moduleLatency = histogram('latency');
describeCounter({ name: 'jobs', labels: { queue: 'a' } }, 'count', 'jobs done');
describeHistogram('latency', 'seconds', 'how long a job took');

/** A capture for one test, closed after it. */
async function capture(t: { after: (fn: () => Promise<void>) => void }, options?: { bufferSize?: number }): Promise<MetricsCapture> {
  const cap = await captureMetrics(options);
  t.after(() => cap.close());
  return cap;
}

/** Resolves when thread `w` posts its next message (it is done, or ready). */
function done(w: Worker): Promise<void> {
  return new Promise((resolve, reject) => {
    w.once('error', reject);
    w.once('message', () => resolve());
  });
}

/** Runs the record-thread fixture against `connector`: `count` increments of jobs{kind="thread"}. */
function recordInThread(connector: unknown, count: number): Promise<void> {
  return done(new Worker(new URL('./fixtures/record-thread.js', import.meta.url), { workerData: { connector, count } }));
}

/** A new thread attached to the capture (as `m`) that runs `body`. */
function attachedThread(cap: MetricsCapture, body: string): Worker {
  const code = `const { workerData, parentPort } = require('node:worker_threads');
     import(workerData.index).then(({ attach }) => {
       const m = attach(workerData.connector);
       ${body}
     });`;
  const index = new URL('../src/index.js', import.meta.url).href;
  return new Worker(code, { eval: true, workerData: { connector: cap.recorder.connector(), index } });
}

/** Runs `body` in a new thread attached to the capture (as `m`), until it posts a message. */
function inThread(cap: MetricsCapture, body: string): Promise<void> {
  return done(attachedThread(cap, body));
}

test('counters, gauges and histograms read exact totals: handles, key-based calls, bigints to 2^64', async (t) => {
  const cap = await capture(t);
  const r = cap.recorder;
  moduleJobs.increment();
  moduleJobs.increment(41);
  r.incrementCounter({ labels: { queue: 'a' }, name: 'jobs' }, 100); // the same key, labels in any order
  const big = r.counter('bytes');
  big.increment(2n ** 63n);
  big.increment(2n ** 63n - 2n);
  big.increment(1); // a number after bigints: 2^64 − 1
  moduleDepth.set(10);
  moduleDepth.increment(2.5);
  moduleDepth.decrement(0.5);
  r.updateGauge('pool', { absolute: 3 });
  moduleLatency.record(0.25);
  moduleLatency.record(0.5);
  for (let i = 0; i < 100_000; i++) r.counter('loop').increment(); // past a ring's worth: counters never fill it

  assert.equal(cap.value({ name: 'jobs', labels: { queue: 'a' } }), 142);
  assert.equal(cap.value('bytes'), 2n ** 64n - 1n);
  assert.equal(cap.value('depth'), 12);
  assert.equal(cap.value('pool'), 3);
  assert.deepEqual(cap.value('latency'), { count: 2, sum: 0.75 });
  assert.equal(cap.value('loop'), 100_000);
  assert.equal(cap.value('jobs'), undefined, 'labels must match: jobs without labels was never recorded');
  assert.deepEqual(cap.snapshot(), [
    { name: 'bytes', labels: {}, kind: 'counter', value: 2n ** 64n - 1n },
    { name: 'depth', labels: {}, kind: 'gauge', value: 12 },
    { name: 'jobs', labels: { queue: 'a' }, kind: 'counter', value: 142, unit: 'count', description: 'jobs done' },
    { name: 'latency', labels: {}, kind: 'histogram', count: 2, sum: 0.75, unit: 'seconds', description: 'how long a job took' },
    { name: 'loop', labels: {}, kind: 'counter', value: 100_000 },
    { name: 'pool', labels: {}, kind: 'gauge', value: 3 },
  ]);
});

test('a value recorded just before value() is read by it, every time', async (t) => {
  const cap = await capture(t);
  const g = cap.recorder.gauge('g');
  const h = cap.recorder.histogram('h');
  for (let i = 1; i <= 300; i++) {
    moduleJobs.increment();
    g.set(i);
    h.record(i);
    assert.equal(cap.value({ name: 'jobs', labels: { queue: 'a' } }), i);
    assert.equal(cap.value('g'), i);
    assert.deepEqual(cap.value('h', 'histogram'), { count: i, sum: (i * (i + 1)) / 2 });
  }
});

test('records of attached threads and piscina tasks are read as soon as the thread says it is done', async (t) => {
  const cap = await capture(t);
  for (let round = 1; round <= 5; round++) {
    await recordInThread(cap.recorder.connector(), 1000);
    assert.equal(cap.value({ name: 'jobs', labels: { kind: 'thread' } }), round * 1000);
  }
  const pool = new Piscina(withMetrics(cap.recorder, { filename: new URL('./fixtures/pool-task.js', import.meta.url).href, minThreads: 2, maxThreads: 2 }));
  t.after(() => pool.destroy());
  const done = await Promise.all(Array.from({ length: 20 }, () => pool.run({ n: 500 })));
  assert.equal(done.length, 20);
  assert.equal(cap.value({ name: 'jobs', labels: { kind: 'pool' } }), 10_000);
});

test('records a thread publishes just after saying it is done (its end-of-job publish) are waited for', async (t) => {
  const cap = await capture(t);
  // The thread records, posts 'done', then is busy for 10 ms before its job ends and it publishes.
  await inThread(
    cap,
    `m.counter('late').increment(7);
     m.histogram('late_h').record(1);
     parentPort.postMessage('done');
     Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);`,
  );
  assert.equal(cap.value('late'), 7);
  assert.deepEqual(cap.value('late_h'), { count: 1, sum: 1 });
});

test('reset(): every series reads undefined, then counts from 0, through handles made before it, in every thread', async (t) => {
  const cap = await capture(t);
  const c = cap.recorder.counter('c');
  moduleJobs.increment(5);
  c.increment(2n ** 60n);
  moduleDepth.set(7);
  moduleLatency.record(1);
  await recordInThread(cap.recorder.connector(), 300);
  assert.equal(cap.snapshot().length, 5);

  cap.reset();
  assert.deepEqual(cap.snapshot(), []);
  assert.equal(cap.value({ name: 'jobs', labels: { queue: 'a' } }), undefined);
  assert.equal(cap.value('depth'), undefined);

  moduleJobs.increment();
  c.increment(3);
  moduleDepth.increment(2); // from nothing: the gauge's value is the change since the reset
  moduleLatency.record(0.5);
  await recordInThread(cap.recorder.connector(), 7);
  assert.deepEqual(cap.snapshot(), [
    { name: 'c', labels: {}, kind: 'counter', value: 3 },
    { name: 'depth', labels: {}, kind: 'gauge', value: 2 },
    { name: 'jobs', labels: { kind: 'thread' }, kind: 'counter', value: 7, unit: 'count', description: 'jobs done' }, // metadata is per name
    { name: 'jobs', labels: { queue: 'a' }, kind: 'counter', value: 1, unit: 'count', description: 'jobs done' },
    { name: 'latency', labels: {}, kind: 'histogram', count: 1, sum: 0.5, unit: 'seconds', description: 'how long a job took' },
  ]);
});

test('close() uninstalls: handles go quiet, and follow the next capture; a second capture, install() and a closed capture are refused by name', async () => {
  const first = await captureMetrics();
  const made = counter('made-under-first'); // made while a capture is installed: follows the global recorder too
  await assert.rejects(captureMetrics(), (err: unknown) => err instanceof CaptureError && err.code === 'RECORDER_ALREADY_SET' && /cap\.close\(\)/.test(err.message));
  await assert.rejects(new TcpBuilder().listenAddress('127.0.0.1:0').install(), (err: unknown) => err instanceof ExporterError && err.code === 'RECORDER_ALREADY_SET');
  made.increment();
  assert.equal(first.value('made-under-first'), 1);
  await first.close();
  await first.close(); // twice is once
  assert.throws(() => first.value('made-under-first'), (err: unknown) => err instanceof CaptureError && err.code === 'CLOSED');
  made.increment(100); // no recorder: nothing

  const second = await captureMetrics();
  try {
    assert.equal(second.value('made-under-first'), undefined);
    made.increment(2);
    moduleJobs.increment(3);
    assert.equal(second.value('made-under-first'), 2);
    assert.equal(second.value({ name: 'jobs', labels: { queue: 'a' } }), 3);
  } finally {
    await second.close();
  }
});

test('an installed exporter keeps its own handles (the fast path), and a capture is refused while it is installed', async () => {
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').install();
  try {
    assert.equal(counter('x'), recorder.counter('x'), 'the recorder’s own handle');
    await assert.rejects(captureMetrics(), (err: unknown) => err instanceof CaptureError && err.code === 'RECORDER_ALREADY_SET' && /install\(\)/.test(err.message));
  } finally {
    await recorder.close();
  }
});

test('a gauge raised and lowered back reads 0, in the main thread and in another', async (t) => {
  const cap = await capture(t);
  moduleDepth.increment(3);
  moduleDepth.decrement(3);
  assert.equal(cap.value('depth'), 0);
  await inThread(
    cap,
    `const g = m.gauge('running');
     g.increment(1); g.decrement(1); g.increment(0.5); g.decrement(0.5);
     parentPort.postMessage('done');`,
  );
  assert.equal(cap.value('running'), 0);
});

test('value(key) of a key recorded as two kinds asks for the kind; bad keys are a TypeError', async (t) => {
  const cap = await capture(t);
  cap.recorder.counter('both').increment(4);
  cap.recorder.gauge('both').set(-1);
  assert.throws(() => cap.value('both'), (err: unknown) => err instanceof CaptureError && err.code === 'AMBIGUOUS_KEY');
  assert.equal(cap.value('both', 'counter'), 4);
  assert.equal(cap.value('both', 'gauge'), -1);
  assert.equal(cap.value('both', 'histogram'), undefined);
  assert.throws(() => cap.value(''), TypeError);
  assert.throws(() => counter({ name: 'x', labels: { a: 1 as unknown as string } }), TypeError);
});

test('records dropped by a full ring are reported, never read as short totals: made = observed + dropped', async (t) => {
  const cap = await capture(t, { bufferSize: 16 });
  const made = 100_000;
  const h = cap.recorder.histogram('burst');
  for (let i = 0; i < made; i++) h.record(1); // one synchronous burst: a 16-record ring cannot hold it
  let error: unknown;
  assert.throws(() => cap.flush(), (err: unknown) => (error = err) instanceof CaptureError && (err as CaptureError).code === 'RECORDS_LOST');
  assert.throws(() => cap.value('burst'), CaptureError);
  const lost = (cap.recorder as TcpRecorder).stats().dropped.ringFull;
  assert.ok(lost > 0, String(error));
  assert.match((error as Error).message, new RegExp(`^${lost} records were dropped`));
  // Counted exactly: what the worker took plus what the ring dropped is what was made.
  const taken = (cap.recorder as TcpRecorder).stats().recorded;
  assert.equal(taken + lost, made);
  // reset() forgets both, and reads work again.
  cap.reset();
  assert.equal(cap.value('burst'), undefined);
  h.record(2);
  assert.deepEqual(cap.value('burst'), { count: 1, sum: 2 });
});

test("the exporter's own figures (drops, ring and queue peaks, buffer size) are not the app's series: a capture shows none", async (t) => {
  const cap = await capture(t, { bufferSize: 64 });
  const h = cap.recorder.histogram('h');
  for (let i = 0; i < 40; i++) h.record(1); // a ring's peak of 40
  await recordInThread(cap.recorder.connector(), 10); // another thread's ring
  await new Promise((r) => setTimeout(r, 250)); // past two report windows of the in-band self metrics
  for (let i = 0; i < 1000; i++) h.record(1); // a full ring: drops
  assert.throws(() => cap.flush(), (err: unknown) => err instanceof CaptureError && err.code === 'RECORDS_LOST');
  cap.reset();
  h.record(2);
  await new Promise((r) => setTimeout(r, 250));
  assert.deepEqual(cap.snapshot(), [{ name: 'h', labels: {}, kind: 'histogram', count: 1, sum: 2 }]);
});

test("a thread's ring-full drops, read while its job goes on after it said it is done (before its end-of-job publish), make the read throw RECORDS_LOST, never a short total", async (t) => {
  const cap = await capture(t, { bufferSize: 16 });
  // Each job: a burst larger than the ring (a few records dropped), 'done', then 20 ms more of
  // the job before its end-of-job publish; 'ended' after that.
  const w = attachedThread(
    cap,
    `const h = m.histogram('burst');
     parentPort.on('message', (n) => {
       for (let i = 0; i < n; i++) h.record(1);
       parentPort.postMessage('done');
       Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
       setImmediate(() => parentPort.postMessage('ended'));
     });
     parentPort.postMessage('ready');`,
  );
  t.after(() => w.terminate());
  await done(w);
  let lost = 0;
  for (let round = 0; round < 10; round++) {
    w.postMessage(26);
    await done(w);
    try {
      assert.deepEqual(cap.value('burst'), { count: 26, sum: 26 }, `round ${round}: a short total`);
    } catch (err) {
      if (!(err instanceof CaptureError && err.code === 'RECORDS_LOST')) throw err;
      lost++;
    }
    await done(w); // 'ended'
    cap.reset();
  }
  t.diagnostic(`${lost} of 10 bursts overflowed the ring`);
  assert.ok(lost > 0, 'no burst overflowed the ring: the test showed nothing');
});

test('a capture whose worker crashed reads on: totals kept, and a thread that ended before it is not waited for again', async (t) => {
  const cap = await capture(t);
  const rec = cap.recorder as TcpRecorder;
  moduleJobs.increment(4);
  await recordInThread(cap.recorder.connector(), 50); // its thread ends: the new worker never hears of its ring
  assert.equal(cap.value({ name: 'jobs', labels: { kind: 'thread' } }), 50);
  await waitFor('the thread’s ring to be released', () => rec.stats().attachedThreads === 0);
  await crashWorker(rec);
  await waitFor('the new worker to serve', () => hostOf(rec).serving, 10_000);
  moduleJobs.increment(1);
  assert.equal(cap.value({ name: 'jobs', labels: { queue: 'a' } }), 5); // waits out the grace once
  assert.equal(cap.value({ name: 'jobs', labels: { kind: 'thread' } }), 50);
  cap.reset();
  moduleJobs.increment(2);
  assert.equal(cap.value({ name: 'jobs', labels: { queue: 'a' } }), 2);
});

test('no socket: a capture opens no file descriptor of a socket (Linux)', { skip: process.platform !== 'linux' && 'reads /proc/self/fd' }, async () => {
  const sockets = (): number => readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false; // closed meanwhile (readdirSync's own descriptor)
    }
  }).length;
  const before = sockets();
  const cap = await captureMetrics();
  try {
    moduleJobs.increment();
    assert.equal(cap.value({ name: 'jobs', labels: { queue: 'a' } }), 1);
    assert.equal(sockets(), before);
  } finally {
    await cap.close();
  }
});

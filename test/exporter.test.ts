// End to end through a real worker and real sockets on 127.0.0.1.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { ExporterError, TcpBuilder } from '../src/index.js';
import type { Event } from '../src/gen/event_pb.js';
import { DROPPED_METRIC, startExporter, tally, TestClient, waitFor, withClient } from './helpers.js';

const plain = (events: Event[]) =>
  events.map((e) => {
    if (e.event.case === 'metadata') {
      const m = e.event.value;
      return { meta: m.name, type: m.metricType, unit: m.unit.value, description: m.description.value };
    }
    const m = e.event.value!;
    const v = m.value;
    const value =
      v.case === 'counter' ? v.value.value : v.case === 'gauge' ? { [v.value.value.case!]: v.value.value.value } : v.value?.value;
    return { metric: m.name, labels: { ...m.labels }, [v.case!]: value };
  });

test('metadata comes first, then every op with exact values, labels and order', async (t) => {
  const recorder = await startExporter();
  t.after(() => recorder.close());
  const api = { name: 'requests', labels: { service: 'api', region: 'eu' } };
  recorder.registerCounter(api, 'count', 'Total requests');
  recorder.registerGauge('queue_depth', 'bytes');
  recorder.registerHistogram('latency', 'seconds', 'Request latency');
  const client = await TestClient.connect(recorder.address);
  t.after(() => client.close());
  await waitFor('client', () => recorder.stats().clients === 1);

  const c = recorder.counter(api);
  const g = recorder.gauge('queue_depth');
  const h = recorder.histogram({ name: 'latency', labels: { route: '/a' } });
  c.increment();
  c.increment(41);
  c.increment(2 ** 53 - 1);
  c.increment(2n ** 64n - 1n);
  c.increment(0n);
  g.set(7.5);
  g.increment(2);
  g.decrement(1.5);
  g.set(-0.25);
  h.record(0.25);
  h.record(0);
  h.record(1e-9);
  recorder.incrementCounter(api, 5);
  recorder.updateGauge('queue_depth', { absolute: 3 });
  recorder.recordHistogram({ name: 'latency', labels: { route: '/a' } }, 2);
  await waitFor('18 frames', () => client.frames().length === 18);

  const labels = { region: 'eu', service: 'api' };
  assert.deepEqual(plain(client.events()), [
    { meta: 'requests', type: 0, unit: 'count', description: 'Total requests' },
    { meta: 'queue_depth', type: 1, unit: 'bytes', description: undefined },
    { meta: 'latency', type: 2, unit: 'seconds', description: 'Request latency' },
    { metric: 'requests', labels, counter: 1n },
    { metric: 'requests', labels, counter: 41n },
    { metric: 'requests', labels, counter: 2n ** 53n - 1n },
    { metric: 'requests', labels, counter: 2n ** 64n - 1n },
    { metric: 'requests', labels, counter: 0n },
    { metric: 'queue_depth', labels: {}, gauge: { absolute: 7.5 } },
    { metric: 'queue_depth', labels: {}, gauge: { increment: 2 } },
    { metric: 'queue_depth', labels: {}, gauge: { decrement: 1.5 } },
    { metric: 'queue_depth', labels: {}, gauge: { absolute: -0.25 } },
    { metric: 'latency', labels: { route: '/a' }, histogram: 0.25 },
    { metric: 'latency', labels: { route: '/a' }, histogram: 0 },
    { metric: 'latency', labels: { route: '/a' }, histogram: 1e-9 },
    { metric: 'requests', labels, counter: 5n },
    { metric: 'queue_depth', labels: {}, gauge: { absolute: 3 } },
    { metric: 'latency', labels: { route: '/a' }, histogram: 2 },
  ]);
  const ts = client.metrics().map((e) => (e.event.case === 'metric' ? e.event.value.timestamp! : undefined)!);
  const now = BigInt(Math.floor(Date.now() / 1000));
  for (const x of ts) assert.ok(now - x.seconds <= 5n && x.seconds <= now, 'timestamps are the wall clock');
  const s = recorder.stats();
  assert.equal(s.recorded, 15);
  assert.deepEqual(s.dropped, { ringFull: 0, clientQueue: 0, invalid: 0, metadata: 0 });
});

test('nothing is recorded or sent while no client is connected', async (t) => {
  const recorder = await startExporter();
  t.after(() => recorder.close());
  const c = recorder.counter('early');
  for (let i = 0; i < 1000; i++) c.increment();
  recorder.incrementCounter('early', 1);
  recorder.recordHistogram('early_h', 1);
  const client = await TestClient.connect(recorder.address);
  t.after(() => client.close());
  await waitFor('client', () => recorder.stats().clients === 1);
  c.increment(7);
  await waitFor('one frame', () => client.frames().length === 1);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(plain(client.events()), [{ metric: 'early', labels: {}, counter: 7n }]);
  assert.equal(recorder.stats().recorded, 1);
});

test('a late client gets the metadata replay; re-registering replaces it everywhere', async (t) => {
  const { recorder, client: early } = await withClient();
  t.after(() => recorder.close());
  t.after(() => early.close());
  recorder.registerCounter('jobs', 'count', 'first');
  recorder.registerGauge({ name: 'temp', labels: { room: 'a' } }, 'percent');
  recorder.registerCounter('jobs', 'count_per_second', 'second');
  await waitFor('3 metadata frames', () => early.frames().length === 3);
  assert.deepEqual(plain(early.events()), [
    { meta: 'jobs', type: 0, unit: 'count', description: 'first' },
    { meta: 'temp', type: 1, unit: 'percent', description: undefined },
    { meta: 'jobs', type: 0, unit: 'count_per_second', description: 'second' },
  ]);
  const late = await TestClient.connect(recorder.address);
  t.after(() => late.close());
  await waitFor('replay', () => late.frames().length === 2);
  assert.deepEqual(plain(late.events()), [
    { meta: 'jobs', type: 0, unit: 'count_per_second', description: 'second' },
    { meta: 'temp', type: 1, unit: 'percent', description: undefined },
  ]);
});

test('two clients each get everything; one leaving mid-stream does not disturb the other', async (t) => {
  // The ring holds every record, so none is dropped however late the worker gets the CPU; a
  // short flush interval sends B some of them before it leaves.
  const { recorder, client: a } = await withClient((b) => b.bufferSize(1 << 16).flushIntervalMs(2));
  t.after(() => recorder.close());
  const b = await TestClient.connect(recorder.address);
  await waitFor('two clients', () => recorder.stats().clients === 2);
  const c = recorder.counter({ name: 'n', labels: { k: 'v' } });
  const total = 20_000;
  for (let i = 1; i <= total; i++) {
    c.increment(i);
    if (i === total / 2) {
      await b.close();
      await waitFor('one client', () => recorder.stats().clients === 1);
    }
    // A producer far faster than any consumer would overflow the ring: pace it.
    if (i % 500 === 0) await new Promise((r) => setTimeout(r, 1));
  }
  await waitFor('all frames at A', () => tally(a.events()).metrics === total, 10_000);
  assert.equal(recorder.stats().dropped.ringFull, 0);
  const values = a.metrics().map((e) => (e.event.case === 'metric' && e.event.value.value.case === 'counter' ? e.event.value.value.value.value : -1n));
  assert.deepEqual(values, Array.from({ length: total }, (_, i) => BigInt(i + 1)));
  const bValues = b.metrics().map((e) => (e.event.case === 'metric' && e.event.value.value.case === 'counter' ? Number(e.event.value.value.value.value) : -1));
  assert.ok(bValues.length >= 1 && bValues.length <= total / 2 + 1, `B got ${bValues.length} frames before leaving`);
  assert.deepEqual(bValues, bValues.map((_, i) => i + 1), 'B got a prefix, in order, with no torn frame');
  assert.equal(recorder.stats().clients, 1);
  await a.close();
  await waitFor('no clients', () => recorder.stats().clients === 0);
});

test('a client that never reads loses its oldest frames, only whole frames, and the others lose nothing', async (t) => {
  const bufferSize = 256;
  const { recorder, client: slow } = await withClient((b) => b.bufferSize(bufferSize));
  t.after(() => recorder.close());
  slow.socket.pause();
  const fast = await TestClient.connect(recorder.address);
  t.after(() => fast.close());
  await waitFor('two clients', () => recorder.stats().clients === 2);
  const c = recorder.counter({ name: 'flood', labels: { pad: 'x'.repeat(200) } });
  const total = 200_000;
  let made = 0;
  for (let i = 1; i <= total; i++) {
    c.increment(i);
    made++;
    // Let the worker keep up so the ring itself never overflows for the reading client.
    if (i % 500 === 0) await new Promise((r) => setTimeout(r, 1));
  }
  await waitFor('fast client has everything', () => tally(fast.events()).metrics + recorder.stats().dropped.ringFull === made, 20_000);
  const dropped = recorder.stats().dropped.clientQueue;
  assert.ok(dropped > 0, 'the paused client lost frames');
  slow.socket.resume();
  await waitFor(
    'slow client: received + dropped = made',
    () => tally(slow.events()).metrics + recorder.stats().dropped.ringFull + recorder.stats().dropped.clientQueue === made,
    20_000,
  );
  // Each client was told, in-band, what it lost: the slow one its queue's drops, the fast one nothing.
  await waitFor('the slow client\'s last loss report', () => tally(slow.events()).dropped.client_queue === recorder.stats().dropped.clientQueue);
  assert.deepEqual(tally(fast.events()).dropped, { ring_full: recorder.stats().dropped.ringFull, client_queue: 0, invalid: 0 });
  const got = slow
    .metrics()
    .filter((e) => e.event.case === 'metric' && e.event.value.name === 'flood')
    .map((e) => (e.event.case === 'metric' && e.event.value.value.case === 'counter' ? Number(e.event.value.value.value.value) : -1));
  // Every frame decodes (no torn frame), values rise, and the newest records arrived.
  for (let i = 1; i < got.length; i++) assert.ok(got[i]! > got[i - 1]!, 'in order');
  const fastLast = fast.metrics().filter((e) => e.event.case === 'metric' && e.event.value.name === 'flood').at(-1)!;
  assert.equal(got.at(-1), fastLast.event.case === 'metric' && fastLast.event.value.value.case === 'counter' ? Number(fastLast.event.value.value.value.value) : NaN);
  assert.equal(slow.buffer().length, slow.allFrames().reduce((n, f) => n + f.length + (f.length < 128 ? 1 : 2), 0), 'no partial frame');
});

test('invalid values are dropped and counted, never thrown; only while a client is connected', async (t) => {
  const recorder = await startExporter();
  t.after(() => recorder.close());
  const c = recorder.counter('c');
  const g = recorder.gauge('g');
  const h = recorder.histogram('h');
  c.increment(-1);
  g.set(Number.NaN);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(recorder.stats().dropped.invalid, 0);
  const client = await TestClient.connect(recorder.address);
  t.after(() => client.close());
  await waitFor('client', () => recorder.stats().clients === 1);
  c.increment(-1);
  c.increment(1.5);
  c.increment(Number.NaN);
  c.increment(2 ** 53);
  c.increment(Number.POSITIVE_INFINITY);
  c.increment(-1n);
  c.increment(2n ** 64n);
  c.increment('3' as unknown as number);
  g.set(Number.NaN);
  g.increment(Number.NaN);
  g.decrement(Number.NaN);
  h.record(Number.NaN);
  recorder.updateGauge('g', {} as never);
  c.increment(1);
  await waitFor('13 invalid', () => recorder.stats().dropped.invalid === 13);
  // The client is told in-band: the drop counter's metadata, then its increments.
  await waitFor('the valid frame and the loss report', () => tally(client.events()).dropped.invalid === 13);
  const events = plain(client.events());
  assert.deepEqual(events.filter((e) => e.metric === 'c'), [{ metric: 'c', labels: {}, counter: 1n }]);
  assert.equal(events.filter((e) => e.meta === DROPPED_METRIC && e.unit === 'count').length, 1);
  assert.equal(tally(client.events()).metrics, 1);
});

test('a name with no labels is one key however it is written', async (t) => {
  const { recorder, client } = await withClient();
  t.after(async () => {
    await client.close();
    await recorder.close();
  });
  recorder.counter('jobs').increment();
  recorder.counter({ name: 'jobs' }).increment();
  recorder.counter({ name: 'jobs', labels: {} }).increment();
  recorder.incrementCounter({ name: 'jobs', labels: {} }, 1);
  await waitFor('four frames', () => client.frames().length === 4);
  await waitFor('the key counted', () => recorder.stats().keys > 0); // stats trail by a round
  assert.equal(recorder.stats().keys, 1);
  assert.deepEqual(new Set(client.events().map((e) => JSON.stringify(e.event.case === 'metric' ? e.event.value.labels : null))), new Set(['{}']));
});

test('invalid keys, units and descriptions throw at the boundary', async (t) => {
  const recorder = await startExporter();
  t.after(() => recorder.close());
  for (const bad of ['', 5, null, {}, { name: '' }, { name: 7 }, { name: 'x', labels: { a: 1 } }, { name: 'x', labels: { '': 'v' } }, { name: 'x', labels: 'a=b' }]) {
    assert.throws(() => recorder.counter(bad as never), TypeError, JSON.stringify(bad));
    assert.throws(() => recorder.registerGauge(bad as never), TypeError);
  }
  assert.throws(() => recorder.histogram('x'.repeat(5000)), RangeError);
  assert.throws(() => recorder.registerCounter('x', 'furlongs' as never), TypeError);
  assert.throws(() => recorder.registerCounter('x', 'count', 5 as never), TypeError);
  assert.throws(() => recorder.registerCounter('x', 'count', 'd'.repeat(5000)), RangeError);
  assert.throws(() => new TcpBuilder().listenAddress('nope'), TypeError);
  assert.throws(() => new TcpBuilder().listenAddress('127.0.0.1:70000'), TypeError);
  assert.throws(() => new TcpBuilder().bufferSize(0), TypeError);
  assert.throws(() => new TcpBuilder().bufferSize(1.5), TypeError);
  assert.throws(() => new TcpBuilder().maxClients(-1), TypeError);
  assert.throws(() => new TcpBuilder().closeTimeoutMs(Number.NaN), TypeError);
  for (const bad of [-1, 20, 1.5, '3', Number.NaN]) assert.throws(() => new TcpBuilder().workerNice(bad as never), TypeError, String(bad));
});

test('a port in use rejects with ExporterError code IO and the OS error as cause', async (t) => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => blocker.close(() => r())));
  const port = (blocker.address() as { port: number }).port;
  await assert.rejects(new TcpBuilder().listenAddress(`127.0.0.1:${port}`).build(), (err: unknown) => {
    assert.ok(err instanceof ExporterError);
    assert.equal(err.code, 'IO');
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'EADDRINUSE');
    return true;
  });
});

test('install() sets the global recorder once; the global functions use it', async (t) => {
  const { counter, describeCounter } = await import('../src/index.js');
  counter('before').increment(); // no recorder installed: a no-op, not an error
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').install();
  t.after(() => recorder.close());
  await assert.rejects(new TcpBuilder().listenAddress('127.0.0.1:0').install(), (err: unknown) => {
    assert.ok(err instanceof ExporterError);
    assert.equal(err.code, 'RECORDER_ALREADY_SET');
    return true;
  });
  describeCounter('global_hits', 'count', 'via the global recorder');
  const client = await TestClient.connect(recorder.address);
  t.after(() => client.close());
  await waitFor('client', () => recorder.stats().clients === 1);
  counter({ name: 'global_hits', labels: { a: 'b' } }).increment(2);
  await waitFor('2 frames', () => client.frames().length === 2);
  assert.deepEqual(plain(client.events()), [
    { meta: 'global_hits', type: 0, unit: 'count', description: 'via the global recorder' },
    { metric: 'global_hits', labels: { a: 'b' }, counter: 2n },
  ]);
});

test('close() delivers what was recorded, then stats() keeps the final figures', async (t) => {
  const { recorder, client } = await withClient();
  t.after(() => client.close());
  const c = recorder.counter('last');
  for (let i = 0; i < 500; i++) c.increment();
  await recorder.close();
  await recorder.close(); // twice is fine
  await waitFor('client sees the end', () => client.closed);
  assert.equal(client.frames().length, 500);
  const s = recorder.stats();
  assert.equal(s.recorded, 500);
  assert.equal(s.framesSent, 500);
  assert.equal(s.clients, 0);
  c.increment(); // after close: ignored, no throw
  assert.equal(recorder.stats().recorded, 500);
});

test('await using closes the recorder', async () => {
  let address;
  {
    await using recorder = await startExporter();
    address = recorder.address;
  }
  await assert.rejects(TestClient.connect(address), /ECONNREFUSED/);
});

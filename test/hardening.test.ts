// Bad input, hostile or broken clients, and faults in the exporter itself.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { hostOf } from '../src/app/recorder.js';
import { ExporterError, TcpBuilder } from '../src/index.js';
import { DROPPED_METRIC, TestClient, startExporter, tally, waitFor, waitForConnect, warningsDuring, withClient } from './helpers.js';

/** Collects process warnings with one of our codes while `fn` runs. */
const openFds = () => readdirSync('/proc/self/fd').length;
const pace = () => new Promise((r) => setTimeout(r, 1));

test('invalid values warn once per key', async (t) => {
  const { recorder, client } = await withClient();
  t.after(() => recorder.close());
  t.after(() => client.close());
  const warnings = await warningsDuring(async () => {
    const a = recorder.counter({ name: 'a', labels: { x: '1' } });
    const b = recorder.gauge('b');
    for (let i = 0; i < 100; i++) {
      a.increment(-1);
      b.set(Number.NaN);
    }
    await waitFor('200 invalid', () => recorder.stats().dropped.invalid === 200);
  });
  const invalid = warnings.filter((w) => w.code === 'MTCP_INVALID_VALUE');
  assert.equal(invalid.length, 2);
  assert.match(invalid.map((w) => w.message).join('\n'), /a\{x=1\}/);
});

test('maxKeys: keys beyond the cap are refused with one warning and counted drops', async (t) => {
  const { recorder, client } = await withClient((b) => b.maxKeys(5));
  t.after(() => recorder.close());
  t.after(() => client.close());
  const warnings = await warningsDuring(async () => {
    for (let i = 0; i < 5; i++) recorder.counter({ name: 'k', labels: { i: String(i) } }).increment();
    for (let i = 5; i < 50; i++) recorder.counter({ name: 'k', labels: { i: String(i) } }).increment();
    recorder.counter({ name: 'k', labels: { i: '0' } }).increment(); // a known key still works
    await waitFor('frames and drops', () => tally(client.events()).metrics === 6 && recorder.stats().dropped.invalid === 45);
    await waitFor('the client is told', () => tally(client.events()).dropped.invalid === 45);
  });
  assert.equal(warnings.filter((w) => w.code === 'MTCP_MAX_KEYS').length, 1);
});

test('maxKeys bounds memory: refused names are not remembered, metadata names are capped', async (t) => {
  const { recorder, client } = await withClient((b) => b.maxKeys(5));
  t.after(() => recorder.close());
  t.after(() => client.close());
  const described = () => client.events().flatMap((e) => (e.event.case === 'metadata' && e.event.value.name !== DROPPED_METRIC ? [e.event.value.name] : []));
  const gc = (globalThis as { gc?: () => void }).gc;
  const heap = () => {
    gc?.();
    return process.memoryUsage().heapUsed;
  };
  const warnings = await warningsDuring(async () => {
    for (let i = 0; i < 10; i++) recorder.registerCounter(`described_${i}`, 'count');
    await waitFor('5 metadata frames', () => described().length === 5);
    for (let i = 0; i < 2000; i++) recorder.counter(`warm_${i}`);
    const before = heap();
    for (let i = 0; i < 100_000; i++) recorder.incrementCounter(`name_${i}_${'x'.repeat(40)}`, 1);
    const growth = heap() - before;
    if (gc) assert.ok(growth < 2 * 2 ** 20, `heap grew ${growth} bytes for 100 000 refused names`);
  });
  assert.deepEqual(described(), ['described_0', 'described_1', 'described_2', 'described_3', 'described_4']);
  assert.ok(warnings.some((w) => /metadata for more than 5 names/.test(w.message)));
});

test('a client that floods the exporter is read and discarded; others are unaffected', async (t) => {
  const { recorder, client } = await withClient();
  t.after(() => recorder.close());
  t.after(() => client.close());
  const flooder = await TestClient.connect(recorder.address);
  t.after(() => flooder.close());
  await waitFor('two clients', () => recorder.stats().clients === 2);
  const rss0 = process.memoryUsage().rss;
  const junk = Buffer.alloc(1 << 20, 0xab);
  let sent = 0;
  const c = recorder.counter('during_flood');
  while (sent < 64) {
    if (!flooder.socket.write(junk)) await new Promise((r) => flooder.socket.once('drain', r));
    sent++;
    c.increment();
  }
  await waitFor('all frames at the normal client', () => client.frames().length === 64);
  const growth = process.memoryUsage().rss - rss0;
  assert.ok(growth < 48 * 2 ** 20, `RSS grew ${growth} bytes while 64 MiB were sent at the exporter`);
  assert.equal(recorder.stats().clients, 2);
});

test('1000 clients connecting and leaving: no fd leak, exact count, recording stops', async (t) => {
  const recorder = await startExporter();
  t.after(() => recorder.close());
  const c = recorder.counter('churn');
  const fds0 = openFds();
  for (let round = 0; round < 20; round++) {
    const sockets = await Promise.all(
      Array.from({ length: 50 }, () => new Promise<Socket>((resolve, reject) => {
        const s = connect((recorder.address as { port: number }).port, '127.0.0.1', () => resolve(s));
        s.on('error', reject);
        s.resume(); // read (and drop) what arrives, or a FIN from the exporter would go unseen
      })),
    );
    c.increment();
    // Half leave politely, half reset the connection.
    await Promise.all(sockets.map((s, i) => new Promise((r) => {
      s.once('close', r);
      if (i % 2) s.end();
      else s.resetAndDestroy();
    })));
  }
  await waitFor('no clients', () => recorder.stats().clients === 0);
  const before = recorder.stats().recorded;
  for (let i = 0; i < 100; i++) c.increment();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(recorder.stats().recorded, before, 'with no client, records are not recorded (the flag went back to 0)');
  await waitFor('fds released', () => openFds() <= fds0 + 2);
});

test('maxClients: connections beyond it are closed at once and counted', async (t) => {
  const recorder = await startExporter((b) => b.maxClients(3));
  t.after(() => recorder.close());
  const clients = await Promise.all(Array.from({ length: 5 }, () => TestClient.connect(recorder.address)));
  t.after(() => Promise.all(clients.map((c) => c.close())));
  await waitFor('3 served, 2 rejected', () => recorder.stats().clients === 3 && recorder.stats().rejectedClients === 2);
  await waitFor('the 2 rejected see the connection closed', () => clients.filter((c) => c.closed).length === 2);
  recorder.counter('x').increment();
  await waitFor('the 3 get the frame', () => clients.filter((c) => tally(c.events()).metrics === 1).length === 3);
});

test('clients that reset mid-stream are removed quietly; the others get everything', async (t) => {
  // The ring holds every record, so none is dropped however late the worker gets the CPU.
  const { recorder, client } = await withClient((b) => b.bufferSize(1 << 16));
  t.after(() => recorder.close());
  t.after(() => client.close());
  const doomed = await Promise.all(Array.from({ length: 5 }, () => TestClient.connect(recorder.address)));
  await waitFor('6 clients', () => recorder.stats().clients === 6);
  const c = recorder.counter({ name: 'rst', labels: { pad: 'x'.repeat(100) } });
  const total = 20_000;
  for (let i = 1; i <= total; i++) {
    c.increment();
    if (i === 5000) for (const d of doomed) d.socket.resetAndDestroy();
    if (i % 500 === 0) await pace();
  }
  await waitFor('survivor has everything', () => tally(client.events()).metrics + recorder.stats().dropped.ringFull === total, 10_000);
  assert.equal(recorder.stats().dropped.ringFull, 0);
  assert.equal(recorder.stats().dropped.clientQueue, 0, 'the survivor lost nothing, and the reset clients were not counted');
  await waitFor('count exact', () => recorder.stats().clients === 1);
});

test('a crashed worker is restarted: the app keeps recording, clients reconnect, metadata is replayed', async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUnhandled);
  t.after(() => {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
  });
  const { recorder, client } = await withClient();
  t.after(() => recorder.close());
  recorder.registerCounter('survivor', 'count', 'still here');
  const c = recorder.counter('survivor');
  c.increment();
  await waitFor('first frames', () => client.frames().length === 2);
  const warnings = await warningsDuring(async () => {
    void hostOf(recorder).thread.terminate(); // ends it as a crash would: no close() asked
    await waitFor('the client is dropped', () => client.closed);
    for (let i = 0; i < 1000; i++) c.increment(); // never throws, whatever state the worker is in
    await waitFor('restarted', () => recorder.stats().workerRestarts === 1);
  });
  assert.ok(warnings.some((w) => w.code === 'MTCP_WORKER_RESTART'));
  const again = await waitForConnect(recorder.address);
  t.after(() => again.close());
  await waitFor('metadata replayed', () => again.frames().length === 1);
  await waitFor('client registered', () => recorder.stats().clients === 1);
  c.increment(7);
  await waitFor('records flow again', () => again.frames().length === 2);
  assert.deepEqual(
    again.events().map((e) => e.event.case),
    ['metadata', 'metric'],
  );
  assert.deepEqual(unhandled, []);
});

test('an address that cannot be bound gives ExporterError IO with the cause', async () => {
  // 192.0.2.1 (TEST-NET-1) is on no interface here: bind fails, no packet is ever sent.
  await assert.rejects(new TcpBuilder().listenAddress('192.0.2.1:0').build(), (err: unknown) => {
    assert.ok(err instanceof ExporterError);
    assert.equal(err.code, 'IO');
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'EADDRNOTAVAIL');
    return true;
  });
});

test('soak: 4 s of records with a slow client keep heap and RSS flat', async (t) => {
  const { recorder, client } = await withClient((b) => b.bufferSize(4096));
  t.after(() => recorder.close());
  t.after(() => client.close());
  client.socket.pause();
  const slowRead = setInterval(() => {
    client.socket.resume();
    setTimeout(() => client.socket.pause(), 2);
    client.chunks.length = 0; // the test keeps no history
  }, 50);
  t.after(() => clearInterval(slowRead));
  const c = recorder.counter({ name: 'soak', labels: { pad: 'y'.repeat(64) } });
  const sample = () => ({ rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed });
  const end = Date.now() + 4000;
  let made = 0;
  let warm: { rss: number; heap: number } | undefined;
  while (Date.now() < end) {
    for (let i = 0; i < 2000; i++) c.increment();
    made += 2000;
    await pace();
    if (warm === undefined && Date.now() > end - 3000) warm = sample();
  }
  const last = sample();
  t.diagnostic(`made ${made} records; RSS ${((last.rss - warm!.rss) / 2 ** 20).toFixed(1)} MiB, heap ${((last.heap - warm!.heap) / 2 ** 20).toFixed(1)} MiB over the last 3 s; dropped ${JSON.stringify(recorder.stats().dropped)}`);
  assert.ok(made > 1_000_000);
  assert.ok(last.rss - warm!.rss < 64 * 2 ** 20, 'RSS stays flat');
  assert.ok(last.heap - warm!.heap < 16 * 2 ** 20, 'heap stays flat');
  assert.ok(recorder.stats().dropped.clientQueue > 0, 'the slow client lost its oldest frames instead');
});

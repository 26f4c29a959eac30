// The relay across threads and under load: exact totals and an exact series cap on two threads,
// and exact into a real Prometheus at a sustained paced rate from a real exporter in a child
// process (bufferSize 65536). A capacity test: `npm test` runs this folder after the others, alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TcpBuilder } from 'metrics-exporter-tcp';
import { startRelay } from '../../src/run.js';
import { NO_PROMETHEUS, PROMETHEUS, pacedApp, relayScrapedByPrometheus, relayOptions } from '../harness.js';
import { waitUntil } from '../wait.js';

/**
 * The paced test records 3 s at this rate: the target. The relay keeps up with it on this
 * 2-core machine shared with other jobs since each relay thread warms its decoder up before
 * reading (cold, it fell behind in its first milliseconds and the exporter's queue for it
 * overflowed). What it cannot make exact is the app itself: with Prometheus, the test and the
 * app on two cores, the app's own exporter worker sometimes cannot drain its ring (ring_full, in
 * about half the runs here); those records never leave the app, and the test says so.
 */
const RATE = 1_000_000;
const SECONDS = 3;

test('--threads 2 with 2 exporters: each read on its own thread, totals exact', { timeout: 60_000 }, async (t) => {
  const apps = await Promise.all([pacedApp(), pacedApp()]);
  t.after(() => apps.forEach((a) => a.kill()));
  const relay = await startRelay(relayOptions(apps.map((a) => a.address), { prometheus: '127.0.0.1:0', threads: 2 }));
  t.after(() => relay.close());
  assert.equal(relay.threads, 2);
  await Promise.all(apps.map((a) => a.send({ op: 'clients', n: 1 })));
  const stats = await Promise.all(apps.map((a, i) => a.send({ op: 'count', name: 'hits', n: 300_000 * (i + 1), rate: 300_000 })));
  for (const s of stats) assert.deepEqual([s.dropped.ringFull, s.dropped.clientQueue, s.dropped.invalid], [0, 0, 0]);
  const totals = async () => {
    const snap = await relay.snapshot();
    return apps.map((a) => snap.exporters.find((e) => e.exporter === a.address)?.series.find((s) => s.name === 'hits')?.total);
  };
  await waitUntil('both totals', async () => JSON.stringify((await totals()).map(String)) === '["300000","600000"]', 20_000).catch(async (err: Error) => {
    throw new Error(`${err.message}: ${(await totals()).join(', ')}`);
  });
});

test('--max-series holds exactly across threads: two exporters on two threads offer 4 series, 3 are kept', async (t) => {
  // No self metrics: the frames read are exactly the four records.
  const exporters = await Promise.all([0, 1].map(() => new TcpBuilder().listenAddress('127.0.0.1:0').selfMetrics(false).build()));
  t.after(() => Promise.all(exporters.map((e) => e.close())));
  const addresses = exporters.map((e) => {
    const { host, port } = e.address as { host: string; port: number };
    return `${host}:${port}`;
  });
  const relay = await startRelay(relayOptions(addresses, { prometheus: '127.0.0.1:0', threads: 2, maxSeries: 3 }));
  t.after(() => relay.close());
  assert.equal(relay.threads, 2);
  await waitUntil('connected', async () => exporters.every((e) => e.stats().clients === 1));
  for (const e of exporters) for (const q of ['a', 'b']) e.counter({ name: 'jobs', labels: { q } }).increment(1);
  await waitUntil('every frame read', async () => (await relay.snapshot()).exporters.reduce((n, e) => n + e.events, 0) === 4);
  const snap = await relay.snapshot();
  assert.equal(snap.exporters.reduce((n, e) => n + e.series.length, 0), 3);
  assert.equal(snap.refused, 1);
});

test(
  `a real exporter at a paced ${RATE / 1e6} M records/s for ${SECONDS} s → relay → a real Prometheus: every record that left the app is counted, the relay loses none`,
  { skip: PROMETHEUS ? false : NO_PROMETHEUS, timeout: 90_000 },
  async (t) => {
    const app = await pacedApp();
    t.after(() => app.kill());
    const { prom } = await relayScrapedByPrometheus(t, [app.address], { threads: 1 });
    await app.send({ op: 'clients', n: 1 });
    const n = RATE * SECONDS;
    const stats = await app.send({ op: 'count', name: 'hits', n, rate: RATE });
    // Loss is accounted for in-band: relayed + reported lost = made, exactly.
    await prom.until('sum(hits_total) + (sum(metrics_exporter_tcp_dropped_total) or vector(0))', [n]);
    // The relay kept up: it lost nothing (client_queue), so every record that left the app is in
    // Prometheus. The app's ring overflowing (its worker starved of CPU) is the app's loss.
    assert.equal(stats.dropped.clientQueue, 0, 'the relay fell behind');
    assert.equal(stats.dropped.invalid, 0);
    await prom.until('hits_total', [n - stats.dropped.ringFull]);
    if (stats.dropped.ringFull > 0) t.diagnostic(`the app's own ring dropped ${stats.dropped.ringFull} of ${n} records (its exporter worker could not keep up on this machine)`);
  },
);

// The relay against a real Prometheus (scraping it, queried through its HTTP API) and a
// loopback OTLP receiver; exporters run in child processes like separate app instances.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer as createTcpServer } from 'node:net';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import type { MetricOp } from 'metrics-exporter-tcp/client';
import { startRelay, type Relay } from '../src/run.js';
import { DEFAULT_BUCKETS } from '../src/store.js';
import { NO_PROMETHEUS, PROMETHEUS, otlpReceiver, relayScrapedByPrometheus, relayOptions, type OtlpPoint as Point } from './harness.js';
import { waitFor, waitUntil } from './wait.js';

/** Starts the exporter-app fixture; resolves with its address once it listens. */
function exporterApp(scale: number): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, [new URL('./fixtures/exporter-app.js', import.meta.url).pathname, String(scale)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => {
      const a = JSON.parse(d.toString()) as { host: string; port: number };
      resolve({ child, address: `${a.host}:${a.port}` });
    });
    child.once('error', reject);
  });
}

test('two app instances → relay → a real Prometheus: exact sums, histogram counts, gauges', { skip: PROMETHEUS ? false : NO_PROMETHEUS, timeout: 60_000 }, async (t) => {
  const apps = await Promise.all([exporterApp(1), exporterApp(2)]);
  t.after(() => apps.forEach((a) => a.child.kill()));
  const { prom } = await relayScrapedByPrometheus(t, apps.map((a) => a.address));
  await prom.until('requests_total{service="api"}', [100, 200]);
  await prom.until('sum(requests_total)', [300]);
  await prom.until('latency_seconds_count', [10, 10]);
  await prom.until('latency_seconds_bucket{le="0.05"}', [5, 5]);
  await prom.until('queue_depth', [42, 82]);
  const seconds = await prom.query('latency_seconds_sum');
  assert.equal(seconds.length, 2);
  for (const s of seconds) assert.ok(Math.abs(s - 0.55) < 1e-9);
});

test('the relay pushes OTLP to a collector endpoint', async (t) => {
  const apps = await Promise.all([exporterApp(1), exporterApp(3)]);
  t.after(() => apps.forEach((a) => a.child.kill()));
  const receiver = await otlpReceiver();
  const relay: Relay = await startRelay(relayOptions(apps.map((a) => a.address), { otlp: receiver.url, otlpIntervalMs: 200 }));
  // The relay's last export goes to the receiver: close the relay first.
  t.after(async () => {
    await relay.close();
    await receiver.close();
  });
  const latest = receiver.latest;

  const values = (points: Point[], field: 'value' | 'count') =>
    points.map((p) => Number(field === 'count' ? p.count : (p.asDouble ?? p.asInt))).sort((a, b) => a - b);
  await waitFor('OTLP counter totals', () => JSON.stringify(values(latest('requests'), 'value')) === '[100,300]', 20_000);
  await waitFor('OTLP gauges', () => JSON.stringify(values(latest('queue_depth'), 'value')) === '[42,122]', 20_000);
  await waitFor('OTLP histogram counts', () => JSON.stringify(values(latest('latency'), 'count')) === '[10,10]', 20_000);
  const exporters = latest('requests').map((p) => p.attributes.find((a) => a.key === 'exporter')?.value.stringValue).sort();
  assert.deepEqual(exporters, apps.map((a) => a.address).sort());
  // The relay's health too, named as OTLP names are (no _total).
  await waitFor('OTLP health', () => JSON.stringify(values(latest('metrics_exporter_tcp_relay_up'), 'value')) === '[1,1]', 20_000);
  assert.deepEqual(values(latest('metrics_exporter_tcp_relay_events'), 'value'), [114, 114]); // 2 metadata, 100 increments, 10 observations, 2 gauge ops each
  assert.deepEqual(values(latest('metrics_exporter_tcp_relay_series'), 'value'), [6]);
});

test('an exporter sending garbage is dropped and reported; the others keep flowing; series are capped', async (t) => {
  const good = await exporterApp(1);
  t.after(() => good.child.kill());
  const junk = createTcpServer((s) => s.end(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])));
  await new Promise<void>((r) => junk.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => junk.close(() => r())));
  const bad = `127.0.0.1:${(junk.address() as { port: number }).port}`;
  const log = new PassThrough();
  let logged = '';
  log.on('data', (d) => (logged += d));
  const relay = await startRelay({ ...relayOptions([good.address, bad], { prometheus: '127.0.0.1:0' }), log, maxSeries: 2 });
  t.after(() => relay.close());
  const stateOf = async (address: string) => (await relay.snapshot()).exporters.find((e) => e.exporter === address)?.state;
  await waitUntil('the bad exporter is given up', async () => (await stateOf(bad)) === 'failed', 10_000);
  assert.match(logged, /disconnected for good/);
  const a = relay.prometheus!.address as { host: string; port: number };
  let text = '';
  const end = Date.now() + 10_000;
  while (Date.now() < end && !/requests_total\{service="api",exporter="[^"]+"\} 100/.test(text)) {
    text = await (await fetch(`http://${a.host}:${a.port}/metrics`)).text();
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(text, /# HELP requests_total Requests served/);
  assert.match(text, /requests_total\{service="api",exporter="[^"]+"\} 100/);
  // 3 series were offered (requests, latency, queue_depth) with a cap of 2.
  await waitUntil('cap reached', async () => (await relay.snapshot()).refused > 0);
  assert.equal((await relay.snapshot()).exporters.reduce((n, e) => n + e.series.length, 0), 2);
  assert.match(text, /^metrics_exporter_tcp_relay_decode_errors_total 1$/m);
  assert.match(logged, /more than 2 series/);
});

test('exposition stays valid with clashing labels, odd names, kind conflicts and late metadata', async (t) => {
  const { RelayStore } = await import('../src/store.js');
  const { SeriesBudget } = await import('../src/budget.js');
  const { servePrometheus } = await import('../src/prometheus.js');
  const store = new RelayStore(DEFAULT_BUCKETS, new SeriesBudget(1000, 1));
  const h1 = store.of('h:1');
  const snapshot = async () => ({
    exporters: [{ exporter: 'h:1', state: 'connected' as const, events: 0, series: [...h1.series.values()], metadata: h1.metadata }],
    decodeErrors: 0,
    refused: 0,
  });
  const log = new PassThrough();
  let logged = '';
  log.on('data', (d) => (logged += d));
  const endpoint = await servePrometheus(snapshot, { host: '127.0.0.1', port: 0 }, log);
  t.after(() => endpoint.close());
  const a = endpoint.address as { host: string; port: number };
  const scrape = async () => (await fetch(`http://${a.host}:${a.port}/metrics`)).text();
  const m = (name: string, labels: Record<string, string>, op: MetricOp) => h1.apply({ kind: 'metric', name, labels, op }, Date.now());
  m('hits', { exporter: 'a' }, { type: 'counterIncrement', value: 1n });
  m('hits', { exporter: 'b' }, { type: 'counterIncrement', value: 2n });
  m('lat', { le: 'x' }, { type: 'histogramRecord', value: 0.02 });
  m('', { '': 'v' }, { type: 'gaugeSet', value: 7 });
  m('dual', {}, { type: 'gaugeSet', value: 1 });
  m('dual', {}, { type: 'counterIncrement', value: 1n }); // dual_total: no clash
  m('lat_count', {}, { type: 'gaugeSet', value: 3 }); // clashes with histogram lat's _count
  let text = await scrape();
  assert.match(text, /^hits_total\{exported_exporter="a",exporter="h:1"\} 1$/m);
  assert.match(text, /^hits_total\{exported_exporter="b",exporter="h:1"\} 2$/m);
  assert.match(text, /^lat_bucket\{exported_le="x",exporter="h:1",le="0.025"\} 1$/m);
  assert.match(text, /^lat_count\{exported_le="x",exporter="h:1"\} 1$/m);
  assert.match(text, /^_\{_="v",exporter="h:1"\} 7$/m);
  assert.match(text, /^dual 1$|^dual\{exporter="h:1"\} 1$/m);
  assert.match(text, /^dual_total\{exporter="h:1"\} 1$/m);
  assert.doesNotMatch(text, /^lat_count\{exporter="h:1"\} 3$/m);
  assert.match(logged, /1 series left out/);
  // Metadata that arrives after the first scrape still renames the family and sets HELP.
  h1.apply({ kind: 'metadata', name: 'lat', metricKind: 'histogram', unit: 'seconds', description: 'late' }, Date.now());
  text = await scrape();
  assert.match(text, /^# HELP lat_seconds late$/m);
  assert.match(text, /^lat_seconds_count\{exported_le="x",exporter="h:1"\} 1$/m);
  // Every sample line is name{labels} value, with unique name+labels.
  const samples = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  assert.equal(new Set(samples.map((l) => l.slice(0, l.lastIndexOf(' ')))).size, samples.length);
});

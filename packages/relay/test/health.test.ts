// The relay's own health on its /metrics, and the exporters' in-band loss report relayed as
// metrics_exporter_tcp_dropped_total{exporter, reason}.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { TcpBuilder } from 'metrics-exporter-tcp';
import { startRelay } from '../src/run.js';
import { relayOptions, sample, scrape } from './harness.js';
import { metric, rawExporter } from './raw-exporter.js';
import { waitUntil } from './wait.js';

test('health: up, connections, events and decode errors per exporter, series held, and refused per exporter and reason', async (t) => {
  const exporter = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  t.after(() => exporter.close());
  const { host, port } = exporter.address as { host: string; port: number };
  const good = `${host}:${port}`;
  // One exporter that is not there, one that sends garbage.
  const nobody = createServer();
  await new Promise<void>((r) => nobody.listen(0, '127.0.0.1', r));
  const down = `127.0.0.1:${(nobody.address() as { port: number }).port}`;
  await new Promise<void>((r) => nobody.close(() => r()));
  const junk = createServer((s) => s.end(Buffer.from([0x05, 0xff, 0xff, 0xff, 0xff, 0xff])));
  await new Promise<void>((r) => junk.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => junk.close(() => r())));
  const bad = `127.0.0.1:${(junk.address() as { port: number }).port}`;

  const relay = await startRelay(relayOptions([good, down, bad], { prometheus: '127.0.0.1:0', maxSeries: 3, threads: 1 }));
  t.after(() => relay.close());
  await waitUntil('connected', async () => exporter.stats().clients === 1);
  for (let i = 0; i < 4; i++) exporter.counter({ name: 'jobs', labels: { q: String(i) } }).increment(1 + i);
  exporter.gauge('depth').set(2);
  // Every frame the exporter sent the relay: the 5 recorded and its self metrics (loss, fill levels).
  let text = '';
  await waitUntil('events counted and the bad exporter disconnected', async () => {
    text = await scrape(relay);
    const events = sample(text, `metrics_exporter_tcp_relay_events_total{exporter="${good}"}`);
    return (
      sample(text, `metrics_exporter_tcp_relay_series_refused_total{exporter="${good}",reason="max_series"}`) === 2 &&
      events === exporter.stats().framesSent &&
      sample(text, `metrics_exporter_tcp_relay_decode_errors_total{exporter="${bad}"}`) === 1
    );
  });
  assert.equal(sample(text, `metrics_exporter_tcp_relay_up{exporter="${good}"}`), 1);
  assert.equal(sample(text, `metrics_exporter_tcp_relay_up{exporter="${down}"}`), 0);
  assert.equal(sample(text, `metrics_exporter_tcp_relay_up{exporter="${bad}"}`), 0);
  // 5 series offered, 3 kept: two frames refused.
  assert.equal(sample(text, 'metrics_exporter_tcp_relay_series'), 3);
  assert.equal(sample(text, `metrics_exporter_tcp_relay_series_refused_total{exporter="${good}",reason="max_series"}`), 2);
  assert.equal(sample(text, `metrics_exporter_tcp_relay_decode_errors_total{exporter="${good}"}`), 0);
  assert.equal(sample(text, `metrics_exporter_tcp_relay_connections_total{exporter="${good}"}`), 1);
  assert.equal(sample(text, `metrics_exporter_tcp_relay_connections_total{exporter="${down}"}`), 0);
  assert.match(text, /^# TYPE metrics_exporter_tcp_relay_up gauge$/m);
  assert.match(text, /^# TYPE metrics_exporter_tcp_relay_events_total counter$/m);
  assert.match(text, /^# HELP metrics_exporter_tcp_relay_series_refused_total .+$/m);
});

test('the exporter’s in-band loss report becomes metrics_exporter_tcp_dropped_total{exporter, reason}, equal to its stats()', async (t) => {
  const exporter = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  t.after(() => exporter.close());
  const { host, port } = exporter.address as { host: string; port: number };
  const address = `${host}:${port}`;
  const relay = await startRelay(relayOptions([address], { prometheus: '127.0.0.1:0', threads: 1 }));
  t.after(() => relay.close());
  await waitUntil('connected', async () => exporter.stats().clients === 1);
  const c = exporter.counter('jobs');
  for (let i = 0; i < 7; i++) c.increment(-1); // invalid: dropped and reported in-band
  c.increment(0.5);
  c.increment(4);
  const series = `metrics_exporter_tcp_dropped_total{exporter="${address}",reason="invalid"}`;
  let text = '';
  await waitUntil('the loss report', async () => {
    text = await scrape(relay);
    return sample(text, series) === 8;
  });
  assert.equal(exporter.stats().dropped.invalid, 8);
  assert.equal(sample(text, `jobs_total{exporter="${address}"}`), 4);
  assert.match(text, /^# TYPE metrics_exporter_tcp_dropped_total counter$/m);
  assert.match(text, /^# HELP metrics_exporter_tcp_dropped_total Records the exporter reported this relay did not receive/m);
});

test('a malformed stream is retried after a long back-off, and counted per exporter: a peer that briefly held the port does not disable it for good', async (t) => {
  const ex = await rawExporter((s, n) => (n === 1 ? s.end(Buffer.from([0x05, 0xff, 0xff, 0xff, 0xff, 0xff])) : s.write(metric('jobs', {}, { counter: 4n }))));
  t.after(() => ex.close());
  const relay = await startRelay(relayOptions([ex.address], { prometheus: '127.0.0.1:0', threads: 1, malformedRetryMs: 300 }));
  t.after(() => relay.close());
  let text = '';
  await waitUntil('the exporter read again', async () => sample((text = await scrape(relay)), `jobs_total{exporter="${ex.address}"}`) === 4, 10_000);
  assert.equal(ex.connections, 2);
  assert.equal(sample(text, `metrics_exporter_tcp_relay_decode_errors_total{exporter="${ex.address}"}`), 1);
  assert.equal(sample(text, `metrics_exporter_tcp_relay_up{exporter="${ex.address}"}`), 1);
});

test("an exporter's fill levels become metrics_exporter_tcp_ring_peak, _client_queue_peak and _buffer_size{exporter}, held at their largest for --peak-hold; the alert's ratio can be written", async (t) => {
  const exporter = await new TcpBuilder().listenAddress('127.0.0.1:0').bufferSize(4096).flushIntervalMs(300).build();
  t.after(() => exporter.close());
  const { host, port } = exporter.address as { host: string; port: number };
  const address = `${host}:${port}`;
  const holdMs = 1500;
  const relay = await startRelay(relayOptions([address], { prometheus: '127.0.0.1:0', threads: 1, peakHoldMs: holdMs, maxSeries: 1 }));
  t.after(() => relay.close());
  await waitUntil('connected', async () => exporter.stats().clients === 1);
  const ring = `metrics_exporter_tcp_ring_peak{exporter="${address}"}`;
  const size = `metrics_exporter_tcp_buffer_size{exporter="${address}"}`;
  const c = exporter.counter('burst');
  // Past a quarter of the ring (1024) the worker is woken: the peak it sees is from 1024 to 3500.
  for (let i = 0; i < 3500; i++) c.increment();
  let text = '';
  await waitUntil('the burst reported', async () => (sample((text = await scrape(relay)), ring) ?? 0) >= 1024);
  // A burst may end in the next report window: its peak is then the larger of the two.
  await new Promise((r) => setTimeout(r, 300));
  const peak = sample((text = await scrape(relay)), ring)!;
  assert.ok(peak <= 3500, `peak ${peak}`);
  assert.equal(sample(text, size), 4096);
  assert.match(text, /^# TYPE metrics_exporter_tcp_ring_peak gauge$/m);
  assert.ok(sample(text, `metrics_exporter_tcp_client_queue_peak{exporter="${address}"}`)! >= 0);
  // The exporter reported the ring empty 100 ms after the burst; the relay still shows the burst for the hold.
  const burstSeenAt = Date.now();
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(sample(await scrape(relay), ring), peak, 'held');
  await waitUntil('the hold to pass', async () => sample((text = await scrape(relay)), ring) === 0, 5000);
  assert.ok(Date.now() - burstSeenAt >= holdMs - 600, `held ${Date.now() - burstSeenAt} ms of ${holdMs}`);
  // Self metrics take nothing from --max-series 1 (the one series is "burst").
  assert.equal(sample(text, 'metrics_exporter_tcp_relay_series'), 1);
  assert.equal(sample(text, `metrics_exporter_tcp_relay_series_refused_total{exporter="${address}",reason="max_series"}`), 0);
});

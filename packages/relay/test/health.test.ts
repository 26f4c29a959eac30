// The relay's own health on its /metrics, and the exporters' in-band loss report relayed as
// metrics_exporter_tcp_dropped_total{exporter, reason}.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { TcpBuilder } from 'metrics-exporter-tcp';
import { startRelay } from '../src/run.js';
import { relayOptions, scrape } from './harness.js';
import { waitUntil } from './wait.js';

/** The value of the sample `series` (name{labels} as written) in an exposition, if present. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('health: up per exporter, events per exporter, decode errors, series held and refused', async (t) => {
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
  const events = 5;
  let text = '';
  await waitUntil('events counted and the bad exporter given up', async () => {
    text = await scrape(relay);
    return sample(text, `metrics_exporter_tcp_relay_events_total{exporter="${good}"}`) === events && sample(text, 'metrics_exporter_tcp_relay_decode_errors_total') === 1;
  });
  assert.equal(sample(text, `metrics_exporter_tcp_relay_up{exporter="${good}"}`), 1);
  assert.equal(sample(text, `metrics_exporter_tcp_relay_up{exporter="${down}"}`), 0);
  assert.equal(sample(text, `metrics_exporter_tcp_relay_up{exporter="${bad}"}`), 0);
  // 5 series offered, 3 kept: two frames refused.
  assert.equal(sample(text, 'metrics_exporter_tcp_relay_series'), 3);
  assert.equal(sample(text, 'metrics_exporter_tcp_relay_series_refused_total'), 2);
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
  const series = `metrics_exporter_tcp_dropped_total{reason="invalid",exporter="${address}"}`;
  let text = '';
  await waitUntil('the loss report', async () => {
    text = await scrape(relay);
    return sample(text, series) === 8;
  });
  assert.equal(exporter.stats().dropped.invalid, 8);
  assert.equal(sample(text, `jobs_total{exporter="${address}"}`), 4);
  assert.match(text, /^# TYPE metrics_exporter_tcp_dropped_total counter$/m);
  assert.match(text, /^# HELP metrics_exporter_tcp_dropped_total Records this client did not receive/m);
});

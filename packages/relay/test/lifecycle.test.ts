// The relay as exporters come and go: a reconnect is exactly a counter reset (checked through a
// real Prometheus), unreachable exporters and idle series go stale, socket globs are rescanned.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TcpBuilder } from 'metrics-exporter-tcp';
import { FrameDecoder, toClientEvent } from 'metrics-exporter-tcp/client';
import { startRelay, type Relay } from '../src/run.js';
import { NO_PROMETHEUS, PROMETHEUS, cuttableProxy, otlpReceiver, pacedApp, relayScrapedByPrometheus, relayOptions, scrape } from './harness.js';
import { waitUntil } from './wait.js';

const totalOf = async (relay: Relay, name: string) =>
  (await relay.snapshot()).exporters.flatMap((e) => e.series).find((s) => s.name === name)?.total;

/** The sum of the increments of counter `name` in a stream, decoded with protobuf-es (the reference path). */
function incrementsIn(stream: Buffer[], name: string): bigint {
  const frames = new FrameDecoder().push(Buffer.concat(stream));
  let sum = 0n;
  for (const f of frames) {
    const ev = toClientEvent(f, 'seed');
    if (ev.kind === 'metric' && ev.name === name && ev.op.type === 'counterIncrement') sum += ev.op.value;
  }
  return sum;
}

test(
  'a reconnect mid-stream is exactly a counter reset: with a real Prometheus scraping, the total is what the new connection carried, nothing of the old one',
  { skip: PROMETHEUS ? false : NO_PROMETHEUS, timeout: 90_000 },
  async (t) => {
    const app = await pacedApp();
    t.after(() => app.kill());
    const proxy = await cuttableProxy(app.address);
    t.after(() => proxy.close());
    const { relay, prom } = await relayScrapedByPrometheus(t, [proxy.address], { threads: 1 });
    await app.send({ op: 'clients', n: 1 });
    await prom.until('up', [1]); // Prometheus scrapes the relay

    // A stream of 900 000 at 150k/s (6 s). Once Prometheus has seen half of it, the connection is
    // cut with frames in flight; the relay reconnects at once and the stream goes on over the new
    // connection, which then carries less than Prometheus saw: the reset is visible.
    const n = 900_000;
    const streaming = app.send({ op: 'count', name: 'hits', n, rate: 150_000 });
    await waitUntil('Prometheus to see half the stream', async () => ((await prom.query('hits_total'))[0] ?? 0) >= n / 2, 30_000);
    proxy.cut();
    const stats = await streaming;
    assert.equal(stats.clients, 1, 'the relay came back while the stream went on');
    assert.equal(proxy.delivered.length, 2);
    assert.ok(incrementsIn(proxy.delivered[0]!, 'hits') > 0n);
    // What the relay must show: the increments the second connection carried, exactly, once the
    // exporter has sent everything (nothing new on it for half a second).
    const carried = proxy.delivered[1]!;
    for (let seen = -1; seen !== carried.length; await new Promise((r) => setTimeout(r, 500))) seen = carried.length;
    const second = incrementsIn(carried, 'hits');
    assert.ok(second > 0n);
    await waitUntil('the relay to count the second connection', async () => (await totalOf(relay, 'hits')) === second, 20_000).catch(async (err: Error) => {
      throw new Error(`${err.message}: relay ${await totalOf(relay, 'hits')}, second connection ${second}`);
    });
    await prom.until('hits_total', [Number(second)]);
    assert.deepEqual(await prom.query('resets(hits_total[5m])'), [1]);
  },
);

test('OTLP: a reconnect starts counters and histograms again from 0, with a new start time', async (t) => {
  const exporter = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  t.after(() => exporter.close());
  const { host, port } = exporter.address as { host: string; port: number };
  const proxy = await cuttableProxy(`${host}:${port}`);
  t.after(() => proxy.close());
  const receiver = await otlpReceiver();
  const relay = await startRelay(relayOptions([proxy.address], { otlp: receiver.url, otlpIntervalMs: 100, threads: 1 }));
  t.after(async () => {
    await relay.close();
    await receiver.close();
  });
  const point = (name: string) => receiver.latest(name)[0];
  const count = (name: string) => Number(point(name)?.count ?? point(name)?.asInt ?? -1);

  await waitUntil('connected', async () => exporter.stats().clients === 1);
  exporter.counter('jobs').increment(5);
  for (const v of [0.01, 0.2, 3]) exporter.histogram('latency').record(v);
  await waitUntil('the first connection exported', async () => count('jobs') === 5 && count('latency') === 3, 10_000);
  const started = BigInt(point('latency')!.startTimeUnixNano);

  const state = async () => (await relay.snapshot()).exporters[0]!.state;
  proxy.refuse = true;
  proxy.cut();
  await waitUntil('both sides saw the cut', async () => exporter.stats().clients === 0 && (await state()) !== 'connected', 10_000);
  proxy.refuse = false;
  await waitUntil('reconnected', async () => exporter.stats().clients === 1 && (await state()) === 'connected', 10_000);
  exporter.counter('jobs').increment(1);
  exporter.histogram('latency').record(0.5);
  await waitUntil('the second connection exported', async () => count('jobs') === 1 && count('latency') === 1, 10_000);
  assert.ok(BigInt(point('latency')!.startTimeUnixNano) > started);
  assert.ok(BigInt(point('jobs')!.startTimeUnixNano) > started);
});

test('stale-after: an exporter unreachable that long loses its series, but stays listed as down', async (t) => {
  const exporter = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  const { host, port } = exporter.address as { host: string; port: number };
  const address = `${host}:${port}`;
  const relay = await startRelay(relayOptions([address], { prometheus: '127.0.0.1:0', staleAfterMs: 1000, threads: 1 }));
  t.after(() => relay.close());
  await waitUntil('connected', async () => exporter.stats().clients === 1);
  exporter.counter('jobs').increment(3);
  await waitUntil('the series', async () => /^jobs_total\{exporter="[^"]+"\} 3$/m.test(await scrape(relay)));
  await exporter.close();
  // Unreachable, but not yet for stale-after: the last values stay.
  assert.match(await scrape(relay), /^jobs_total\{exporter="[^"]+"\} 3$/m);
  await waitUntil('the series to go stale', async () => !/^jobs_total/m.test(await scrape(relay)), 5000);
  assert.match(await scrape(relay), new RegExp(`^metrics_exporter_tcp_relay_up\\{exporter="${address}"\\} 0$`, 'm'));
});

test('expire-series: a series not updated for stale-after is dropped while its exporter stays connected', async (t) => {
  const exporter = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  t.after(() => exporter.close());
  const { host, port } = exporter.address as { host: string; port: number };
  const relay = await startRelay(relayOptions([`${host}:${port}`], { prometheus: '127.0.0.1:0', staleAfterMs: 400, expireSeries: true, threads: 1 }));
  t.after(() => relay.close());
  await waitUntil('connected', async () => exporter.stats().clients === 1);
  exporter.counter('idle').increment(1);
  const busy = exporter.gauge('busy');
  busy.set(1);
  await waitUntil('both series', async () => (await relay.snapshot()).exporters[0]!.series.length === 2);
  // `busy` keeps being updated, `idle` does not.
  const keepBusy = setInterval(() => busy.set(1), 50);
  t.after(() => clearInterval(keepBusy));
  await waitUntil('idle to expire', async () => !/^idle_total/m.test(await scrape(relay)), 5000);
  const text = await scrape(relay);
  assert.match(text, /^busy\{exporter="[^"]+"\} 1$/m);
  assert.match(text, /^metrics_exporter_tcp_relay_up\{exporter="[^"]+"\} 1$/m);
  assert.match(text, /^metrics_exporter_tcp_relay_series 1$/m);
  // It comes back (from 0) when it is updated again.
  exporter.counter('idle').increment(2);
  await waitUntil('idle back', async () => /^idle_total\{exporter="[^"]+"\} 2$/m.test(await scrape(relay)));
});

test('--connect with a glob of unix sockets: one exporter per socket (label = its path), rescanned as sockets come and go', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mtcp-glob-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const worker = async (i: number) => {
    const r = await new TcpBuilder().listenAddress({ path: join(dir, `metrics-${i}.sock`) }).build();
    return r;
  };
  const w1 = await worker(1);
  const w2 = await worker(2);
  t.after(() => Promise.all([w1.close(), w2.close()]));
  const relay = await startRelay(relayOptions([join(dir, 'metrics-*.sock')], { prometheus: '127.0.0.1:0', rescanMs: 100, staleAfterMs: 500 }));
  t.after(() => relay.close());
  await waitUntil('both connected', async () => w1.stats().clients === 1 && w2.stats().clients === 1);
  w1.counter('requests').increment(1);
  w2.counter('requests').increment(2);
  const line = (i: number, v: number) => new RegExp(`^requests_total\\{exporter="${join(dir, `metrics-${i}.sock`)}"\\} ${v}$`, 'm');
  await waitUntil('both series', async () => {
    const text = await scrape(relay);
    return line(1, 1).test(text) && line(2, 2).test(text);
  });
  assert.equal(relay.threads, 2);

  // A third worker starts; the second one stops (its socket file goes).
  const w3 = await worker(3);
  t.after(() => w3.close());
  await waitUntil('the third connected', async () => w3.stats().clients === 1, 5000);
  w3.counter('requests').increment(3);
  await w2.close();
  await waitUntil('the third counted, the second gone stale', async () => {
    const text = await scrape(relay);
    return line(3, 3).test(text) && !line(2, 2).test(text) && line(1, 1).test(text);
  });
  const exporters = (await relay.snapshot()).exporters.map((e) => e.exporter).sort();
  assert.deepEqual(exporters, [join(dir, 'metrics-1.sock'), join(dir, 'metrics-3.sock')]);
});

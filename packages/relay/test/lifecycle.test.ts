// The relay as exporters come and go: a reconnect is exactly a counter reset (checked through a
// real Prometheus), unreachable exporters and idle series go stale, socket globs are rescanned.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Socket } from 'node:net';
import { TcpBuilder, type TcpRecorder } from 'metrics-exporter-tcp';
import { FrameDecoder, toClientEvent } from 'metrics-exporter-tcp/client';
import { startRelay, type Relay } from '../src/run.js';
import { NO_PROMETHEUS, PROMETHEUS, cuttableProxy, otlpReceiver, pacedApp, relayScrapedByPrometheus, relayOptions, sample, scrape } from './harness.js';
import { metric, rawExporter } from './raw-exporter.js';
import { waitUntil } from './wait.js';

/** A real exporter and a relay of it (one thread) with `extra` options, both closed after `t`; resolves once connected. */
async function relayOfOne(t: { after(fn: () => unknown): void }, extra: Partial<Parameters<typeof startRelay>[0]>) {
  const exporter = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  t.after(() => exporter.close());
  const { host, port } = exporter.address as { host: string; port: number };
  const address = `${host}:${port}`;
  const relay = await startRelay(relayOptions([address], { prometheus: '127.0.0.1:0', threads: 1, ...extra }));
  t.after(() => relay.close());
  await waitUntil('connected', async () => exporter.stats().clients === 1);
  return { exporter, address, relay };
}

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
  const count = (name: string) => Number(point(name)?.count ?? point(name)?.asDouble ?? -1);

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

test('expire-series: a gauge not updated for stale-after is dropped while its exporter stays connected', async (t) => {
  const { exporter, relay } = await relayOfOne(t, { staleAfterMs: 400, expireSeries: true });
  exporter.gauge('idle').set(1);
  const busy = exporter.gauge('busy');
  busy.set(1);
  await waitUntil('both series', async () => (await relay.snapshot()).exporters[0]!.series.length === 2);
  // `busy` keeps being updated, `idle` does not.
  const keepBusy = setInterval(() => busy.set(1), 50);
  t.after(() => clearInterval(keepBusy));
  await waitUntil('idle to expire', async () => !/^idle\{/m.test(await scrape(relay)), 5000);
  const text = await scrape(relay);
  assert.match(text, /^busy\{exporter="[^"]+"\} 1$/m);
  assert.match(text, /^metrics_exporter_tcp_relay_up\{exporter="[^"]+"\} 1$/m);
  assert.match(text, /^metrics_exporter_tcp_relay_series 1$/m);
  // It comes back when it is set again.
  exporter.gauge('idle').set(2);
  await waitUntil('idle back', async () => /^idle\{exporter="[^"]+"\} 2$/m.test(await scrape(relay)));
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

test('a gauge whose base is unknown is not exposed until a set arrives: after a reconnect (maybe a restarted app), or a late connect', async (t) => {
  const sockets: Socket[] = [];
  const ex = await rawExporter((s, n) => {
    sockets.push(s);
    // The first connection sees the app set 5 then add 1; the second (the app restarted) only an
    // increment, and a gauge first seen through a decrement.
    s.write(n === 1 ? Buffer.concat([metric('in_flight', {}, { set: 5 }), metric('in_flight', {}, { inc: 1 })]) : Buffer.concat([metric('in_flight', {}, { inc: 1 }), metric('depth', {}, { dec: 1 })]));
  });
  t.after(() => ex.close());
  const relay = await startRelay(relayOptions([ex.address], { prometheus: '127.0.0.1:0', threads: 1 }));
  t.after(() => relay.close());
  const series = `in_flight{exporter="${ex.address}"}`;
  await waitUntil('the first value', async () => sample(await scrape(relay), series) === 6);
  ex.cut();
  await waitUntil('the second connection read', async () => ex.connections === 2 && (await relay.snapshot()).exporters[0]!.events === 4);
  let text = await scrape(relay);
  assert.equal(sample(text, series), undefined, 'an increment of an unknown base');
  assert.equal(sample(text, `depth{exporter="${ex.address}"}`), undefined, 'a decrement of an unknown base');
  sockets[1]!.write(metric('in_flight', {}, { set: 1 }));
  await waitUntil('the set', async () => sample((text = await scrape(relay)), series) === 1);
});

test('--expire-series forgets the keys of expired series too; a key refused while full is retried once there is room', async (t) => {
  const { exporter, relay } = await relayOfOne(t, { staleAfterMs: 300, expireSeries: true, maxSeries: 5, maxSeriesPerExporter: 5 });
  const names = async () => (await relay.snapshot()).exporters[0]!.series.map((s) => s.name).sort().join(' ');
  for (let i = 0; i < 5; i++) exporter.gauge(`g${i}`).set(i);
  await waitUntil('five series', async () => (await names()) === 'g0 g1 g2 g3 g4');
  exporter.gauge('late').set(1); // refused: full
  await waitUntil('all expired', async () => (await names()) === '', 5000);
  exporter.gauge('late').set(2);
  for (let i = 0; i < 4; i++) exporter.gauge(`h${i}`).set(i);
  await waitUntil('five new series', async () => (await names()) === 'h0 h1 h2 h3 late', 5000).catch(async (err: Error) => {
    throw new Error(`${err.message}: ${await names()}`);
  });
});

test('a key refused for the relay-wide cap is retried once series of another exporter, on another thread, expire', async (t) => {
  const exporters = await Promise.all([0, 1].map(() => new TcpBuilder().listenAddress('127.0.0.1:0').build()));
  t.after(() => Promise.all(exporters.map((e) => e.close())));
  const [a, b] = exporters as [TcpRecorder, TcpRecorder];
  const addresses = exporters.map((e) => `127.0.0.1:${(e.address as { port: number }).port}`);
  const relay = await startRelay(relayOptions(addresses, { prometheus: '127.0.0.1:0', staleAfterMs: 400, expireSeries: true, threads: 2, maxSeries: 2 }));
  t.after(() => relay.close());
  await waitUntil('connected', async () => exporters.every((e) => e.stats().clients === 1));
  const names = async () => (await relay.snapshot()).exporters.flatMap((e) => e.series.map((s) => s.name)).sort().join(' ');
  a.gauge('a0').set(1);
  a.gauge('a1').set(1);
  await waitUntil('the cap filled', async () => (await names()) === 'a0 a1');
  b.gauge('b0').set(1); // refused
  await waitUntil('a refusal', async () => (await relay.snapshot()).refused === 1);
  await waitUntil('a0 and a1 expired', async () => (await names()) === '', 5000);
  b.gauge('b0').set(2);
  await waitUntil('b0 taken', async () => (await names()) === 'b0', 5000);
});

test('--expire-series keeps the counters and histograms of a connected exporter: expiring them would make increase() wrong', async (t) => {
  const { exporter, address, relay } = await relayOfOne(t, { staleAfterMs: 200, expireSeries: true });
  exporter.counter('rare').increment(3);
  exporter.histogram('seldom').record(0.1);
  exporter.gauge('idle').set(1);
  await waitUntil('the gauge expired', async () => !/^idle\{/m.test(await scrape(relay)), 5000);
  await new Promise((r) => setTimeout(r, 500));
  const text = await scrape(relay);
  assert.equal(sample(text, `rare_total{exporter="${address}"}`), 3);
  assert.equal(sample(text, `seldom_count{exporter="${address}"}`), 1);
});

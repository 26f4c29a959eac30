// The relay against a real Prometheus (scraping it, queried through its HTTP API) and a
// loopback OTLP receiver; exporters run in child processes like separate app instances.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { startRelay, type Relay } from '../src/run.js';
import { NO_PROMETHEUS, PROMETHEUS, otlpReceiver, relayScrapedByPrometheus, relayOptions, sample, scrape, type OtlpPoint as Point } from './harness.js';
import { metadata, metric, rawExporter } from './raw-exporter.js';
import { waitFor, waitUntil } from './wait.js';

const PROMTOOL = PROMETHEUS === undefined ? undefined : 'promtool';
/** `promtool check metrics` of `text`: status 0 clean, 3 lint problems, 1 a parse error. */
const promtool = (text: string) => spawnSync(PROMTOOL!, ['check', 'metrics'], { input: text, encoding: 'utf8' });

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
  // 2 metadata, 100 increments, 10 observations, 2 gauge ops each, and the exporters' self metrics.
  assert.ok(values(latest('metrics_exporter_tcp_relay_events'), 'value').every((n) => n >= 114));
  await waitFor('OTLP fill levels', () => JSON.stringify(values(latest('metrics_exporter_tcp_buffer_size'), 'value')) === '[16384,16384]', 20_000);
  assert.deepEqual(values(latest('metrics_exporter_tcp_relay_series'), 'value'), [6]);
});

test('an exporter sending garbage is disconnected and reported; the others keep flowing; series are capped', async (t) => {
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
  await waitUntil('the bad exporter is disconnected', async () => (await stateOf(bad)) === 'malformed', 10_000);
  assert.match(logged, new RegExp(`${bad} sent a malformed stream \\(FRAME_TOO_LARGE\\): .*; trying again in \\d+ s`));
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
  assert.match(text, new RegExp(`^metrics_exporter_tcp_relay_decode_errors_total\\{exporter="${bad}"\\} 1$`, 'm'));
  assert.match(logged, /new series refused: the relay holds --max-series 2 series/);
});

test('exposition stays valid with clashing labels, odd names, kind conflicts and late metadata', async (t) => {
  const sockets: Socket[] = [];
  const ex = await rawExporter((s) => {
    sockets.push(s);
    s.write(
      Buffer.concat([
        metric('hits', { exporter: 'a' }, { counter: 1n }),
        metric('hits', { exporter: 'b' }, { counter: 2n }),
        metric('lat', { le: 'x' }, { observe: 0.02 }),
        metric('', { '': 'v' }, { set: 7 }),
        metric('dual', {}, { set: 1 }),
        metric('dual', {}, { counter: 1n }), // dual_total: no clash
        metric('lat_count', {}, { set: 3 }), // clashes with histogram lat's _count
        metric('esc', { v: 'a"b\\c\nd' }, { set: 1 }),
      ]),
    );
  });
  t.after(() => ex.close());
  const relay = await startRelay(relayOptions([ex.address], { prometheus: '127.0.0.1:0', threads: 1 }));
  t.after(() => relay.close());
  const h = `exporter="${ex.address}"`;
  let text = '';
  await waitUntil('every series', async () => /^esc\{/m.test((text = await scrape(relay))));
  assert.match(text, new RegExp(`^hits_total\\{exported_exporter="a",${h}\\} 1$`, 'm'));
  assert.match(text, new RegExp(`^hits_total\\{exported_exporter="b",${h}\\} 2$`, 'm'));
  assert.match(text, new RegExp(`^lat_bucket\\{exported_le="x",${h},le="1"\\} 1$`, 'm'));
  assert.match(text, new RegExp(`^lat_count\\{exported_le="x",${h}\\} 1$`, 'm'));
  assert.match(text, new RegExp(`^_\\{_="v",${h}\\} 7$`, 'm'));
  assert.match(text, new RegExp(`^dual\\{${h}\\} 1$`, 'm'));
  assert.match(text, new RegExp(`^dual_total\\{${h}\\} 1$`, 'm'));
  assert.match(text, new RegExp(`^esc\\{v="a\\\\"b\\\\\\\\c\\\\nd",${h}\\} 1$`, 'm'));
  assert.doesNotMatch(text, new RegExp(`^lat_count\\{${h}\\} 3$`, 'm'));
  assert.equal(sample(text, `metrics_exporter_tcp_relay_series_hidden{${h},reason="name_clash"}`), 1);
  // Metadata that arrives later still renames the family and sets HELP (and frees lat_count).
  sockets[0]!.write(metadata('lat', 'histogram', 'seconds', 'late'));
  await waitUntil('the late metadata', async () => /^# HELP lat_seconds late$/m.test((text = await scrape(relay))));
  assert.match(text, new RegExp(`^lat_seconds_count\\{exported_le="x",${h}\\} 1$`, 'm'));
  assert.match(text, new RegExp(`^lat_count\\{${h}\\} 3$`, 'm'));
  // Every sample line is name{labels} value, with unique name+labels, and Prometheus' own parser takes it.
  const samples = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  assert.equal(new Set(samples.map((l) => l.slice(0, l.lastIndexOf(' ')))).size, samples.length);
  if (PROMTOOL !== undefined) assert.notEqual(promtool(text).status, 1, 'promtool could not parse it');
});

test('promtool check metrics finds nothing to say of a relay of conventional names, histograms, odd label values and the health metrics', { skip: PROMTOOL ? false : NO_PROMETHEUS }, async (t) => {
  const ex = await rawExporter((s) =>
    s.write(
      Buffer.concat([
        metadata('http_requests', 'counter', 'count', 'Requests served\nby route'),
        metadata('request_duration', 'histogram', 'seconds', 'Time to serve a request'),
        metadata('queue_depth', 'gauge', 'count', 'Jobs waiting'),
        ...['/a', '/b "quoted"', 'c\\d'].map((route) => metric('http_requests', { route }, { counter: 3n })),
        ...[0.001, 0.2, 7, Number.POSITIVE_INFINITY].map((v) => metric('request_duration', { route: '/a' }, { observe: v })),
        metric('queue_depth', {}, { set: -2.5e-7 }),
      ]),
    ),
  );
  t.after(() => ex.close());
  const relay = await startRelay(relayOptions([ex.address], { prometheus: '127.0.0.1:0', threads: 1 }));
  t.after(() => relay.close());
  let text = '';
  await waitUntil('every series', async () => /^queue_depth\{/m.test((text = await scrape(relay))));
  const r = promtool(text);
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});

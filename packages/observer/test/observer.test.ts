// The observer: unit formatting, the model, the Ink view rendered to a string, and the CLI's
// JSON snapshot against a real exporter.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { render } from 'ink-testing-library';
import React from 'react';
import { TcpBuilder, type TcpRecorder } from 'metrics-exporter-tcp';
import type { ClientEvent } from 'metrics-exporter-tcp/client';
import { formatValue } from '../src/format.js';
import { HISTOGRAM_WINDOW_MS, ObserverModel } from '../src/model.js';
import { ObserverView, bufferText } from '../src/tui.js';
import { snapshotJson } from '../src/run.js';
import { cli } from './cli.js';
import { waitFor } from './wait.js';

test('values are shown scaled to their unit', () => {
  assert.equal(formatValue(1536, 'bytes'), '1.50 KiB');
  assert.equal(formatValue(3, 'mebibytes'), '3.00 MiB');
  assert.equal(formatValue(512, 'bytes'), '512 B');
  assert.equal(formatValue(0.0025, 'seconds'), '2.50 ms');
  assert.equal(formatValue(1500, 'microseconds'), '1.50 ms');
  assert.equal(formatValue(42, 'nanoseconds'), '42 ns');
  assert.equal(formatValue(2, 'seconds'), '2 s');
  assert.equal(formatValue(12.5, 'percent'), '12.50%');
  assert.equal(formatValue(2_500_000, 'bits_per_second'), '2.50 Mbit/s');
  assert.equal(formatValue(7, undefined), '7');
  assert.equal(formatValue(0.123456, 'count'), '0.123');
});

const metric = (name: string, op: Extract<ClientEvent, { kind: 'metric' }>['op'], labels: Record<string, string> = {}): ClientEvent => ({
  kind: 'metric',
  name,
  labels,
  op,
});

test('the model totals counters, applies gauge updates and summarises histograms over a window', () => {
  let now = 1_000_000;
  const m = new ObserverModel(() => now);
  m.apply({ kind: 'metadata', name: 'latency', metricKind: 'histogram', unit: 'seconds', description: 'how long' });
  for (let i = 0; i < 3; i++) m.apply(metric('requests', { type: 'counterIncrement', value: 2n }, { b: '2', a: '1' }));
  m.apply(metric('depth', { type: 'gaugeSet', value: 10 }));
  m.apply(metric('depth', { type: 'gaugeIncrement', value: 2.5 }));
  m.apply(metric('depth', { type: 'gaugeDecrement', value: 0.5 }));
  for (let i = 1; i <= 1000; i++) m.apply(metric('latency', { type: 'histogramRecord', value: i / 1000 }));
  const snap = m.snapshot().metrics;
  assert.deepEqual(snap.slice(0, 2), [
    { name: 'depth', labels: {}, kind: 'gauge', value: 12 },
    { name: 'latency', labels: {}, kind: 'histogram', unit: 'seconds', description: 'how long', count: 1000, min: 0.001, p50: snap[1]!.p50, p99: snap[1]!.p99, p999: snap[1]!.p999, max: 1 },
  ]);
  assert.deepEqual(snap[2], { name: 'requests', labels: { a: '1', b: '2' }, kind: 'counter', value: 6 });
  const h = snap[1]!;
  assert.ok(Math.abs(h.p50! - 0.5) <= 0.01, `p50 ${h.p50}`);
  assert.ok(Math.abs(h.p99! - 0.99) <= 0.02, `p99 ${h.p99}`);
  const lines = m.lines(100, true);
  assert.match(lines.join('\n'), /^requests \[a = 1, b = 2\] +total: 6$/m);
  assert.match(lines.join('\n'), /^latency +count: 1000 min: 1 ms p50: .* max: 1 s$/m);
  assert.match(lines.join('\n'), /^ {4}how long$/m);
  // ±Infinity is a valid double on the wire but not for a sketch: skipped, not a crash.
  m.apply(metric('latency', { type: 'histogramRecord', value: Number.POSITIVE_INFINITY }));
  assert.equal(m.skipped, 1);
  assert.equal(m.snapshot().metrics[1]!.count, 1000);
  // Two windows later the old observations are gone.
  now += 2 * HISTOGRAM_WINDOW_MS + 1;
  assert.equal(m.snapshot().metrics[1]!.count, undefined);
});

test('the live view renders the status bar and the lines, and d shows descriptions', async () => {
  const m = new ObserverModel();
  m.apply({ kind: 'metadata', name: 'queue', metricKind: 'gauge', unit: 'bytes', description: 'bytes waiting' });
  m.apply(metric('queue', { type: 'gaugeSet', value: 4096 }));
  const view = render(React.createElement(ObserverView, { model: m, status: () => ({ address: '127.0.0.1:5000', state: 'connected', eventsPerSec: 42 }) }));
  try {
    const frame = view.lastFrame() ?? '';
    assert.match(frame, /127\.0\.0\.1:5000 · state: connected · 42 events\/s/);
    assert.match(frame, /queue +current: 4\.00 KiB/);
    assert.doesNotMatch(frame, /bytes waiting/);
    view.stdin.write('d');
    await waitFor('descriptions', () => /bytes waiting/.test(view.lastFrame() ?? ''));
  } finally {
    view.unmount();
  }
});

/** An exporter on a free loopback port, and its `host:port`. */
async function exporter(protocol: 'seed' | 'observer-0.11'): Promise<{ recorder: TcpRecorder; address: string }> {
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').protocol(protocol).build();
  const a = recorder.address as { host: string; port: number };
  return { recorder, address: `${a.host}:${a.port}` };
}

for (const protocol of ['seed', 'observer-0.11'] as const) {
  test(`observe --json --once prints one snapshot of what the exporter sent (${protocol})`, async (t) => {
    const { recorder, address } = await exporter(protocol);
    t.after(() => recorder.close());
    recorder.registerCounter('jobs', 'count', 'jobs done');
    const run = cli([address, '--protocol', protocol, '--json', '--once', '--duration', '1500']);
    await waitFor('the observer', () => recorder.stats().clients === 1);
    const jobs = recorder.counter({ name: 'jobs', labels: { q: 'a' } });
    for (let i = 0; i < 10; i++) jobs.increment(3);
    recorder.gauge('depth').set(5);
    recorder.gauge('depth').increment(1);
    for (let i = 1; i <= 4; i++) recorder.histogram('lat').record(i);
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    const { metrics } = JSON.parse(r.stdout);
    const { p50, p99, p999, ...lat } = metrics[2];
    assert.deepEqual(metrics.slice(0, 2), [
      { name: 'depth', labels: {}, kind: 'gauge', value: 6 },
      { name: 'jobs', labels: { q: 'a' }, kind: 'counter', unit: 'count', description: 'jobs done', value: 30 },
    ]);
    assert.deepEqual(lat, { name: 'lat', labels: {}, kind: 'histogram', count: 4, min: 1, max: 4 });
    // DDSketch quantiles (1 % relative accuracy, lower-rank definition) of 1, 2, 3, 4:
    for (const [q, want] of [[p50, 2], [p99, 3], [p999, 3]] as const) assert.ok(Math.abs(q - want) <= 0.03 * want, `${q} ≈ ${want}`);
  });
}

test('observe without --protocol reads an observer-0.11 exporter (auto-detected)', async (t) => {
  const { recorder, address } = await exporter('observer-0.11');
  t.after(() => recorder.close());
  const run = cli([address, '--json', '--once', '--duration', '1200']);
  await waitFor('the observer', () => recorder.stats().clients === 1);
  recorder.registerGauge('depth', 'bytes');
  recorder.gauge('depth').set(2048);
  recorder.counter('jobs').increment(5);
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).metrics, [
    { name: 'depth', labels: {}, kind: 'gauge', unit: 'bytes', value: 2048 },
    { name: 'jobs', labels: {}, kind: 'counter', value: 5 },
  ]);
});

test('observe exits non-zero with a message when it cannot connect', async () => {
  const r = await cli(['127.0.0.1:1', '--json', '--once', '--duration', '200']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot read from 127\.0\.0\.1:1/);
  const bad = await cli(['--protocol', 'nope']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--protocol: protocol must be 'auto', 'seed', 'observer-0.11', got "nope"\n.*usage:/s);
});

test('observe --json --once reports what the exporter lost for it: total + lost = records made', async (t) => {
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').bufferSize(64).build();
  t.after(() => recorder.close());
  const a = recorder.address as { host: string; port: number };
  const run = cli([`${a.host}:${a.port}`, '--json', '--once', '--duration', '1500']);
  await waitFor('the observer', () => recorder.stats().clients === 1);
  const jobs = recorder.counter('jobs');
  for (let i = 0; i < 100_000; i++) jobs.increment(); // far more than a 64-record ring holds
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  const snap = JSON.parse(r.stdout);
  const total = snap.metrics.find((m: { name: string }) => m.name === 'jobs').value;
  const { ringFull, clientQueue, invalid } = recorder.stats().dropped;
  assert.ok(snap.lost > 0, 'records were lost');
  assert.equal(snap.lost, ringFull + clientQueue + invalid);
  assert.equal(total + snap.lost, 100_000);
});

test('the status bar shows what was lost', () => {
  const m = new ObserverModel();
  m.apply(metric('metrics_exporter_tcp_dropped', { type: 'counterIncrement', value: 5n }, { reason: 'ring_full' }));
  m.apply(metric('metrics_exporter_tcp_dropped', { type: 'counterIncrement', value: 2n }, { reason: 'client_queue' }));
  assert.equal(m.lost, 7);
  assert.equal(m.snapshot().lost, 7);
  const view = render(React.createElement(ObserverView, { model: m, status: () => ({ address: 'x:1', state: 'connected', eventsPerSec: 0, lost: m.lost }) }));
  try {
    assert.match(view.lastFrame() ?? '', /lost: 7/);
  } finally {
    view.unmount();
  }
});

/** A loopback TCP proxy to `port` whose connections the test can cut. */
async function cuttable(port: number): Promise<{ address: string; cut(): void; close(): Promise<void> }> {
  const open = new Set<Socket>();
  const server = createServer((down) => {
    const up = connect(port, '127.0.0.1');
    for (const s of [down, up]) {
      open.add(s);
      s.on('error', () => {});
      s.on('close', () => [down, up].forEach((x) => x.destroy()));
    }
    down.pipe(up).pipe(down);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    address: `127.0.0.1:${(server.address() as { port: number }).port}`,
    cut: () => open.forEach((s) => s.destroy()),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test('observe --json: a reconnect resets the model (totals an exporter replays are not counted twice), and every snapshot gives the connection state and reconnects', async (t) => {
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').replayOnConnect(true).build();
  t.after(() => recorder.close());
  const proxy = await cuttable((recorder.address as { port: number }).port);
  t.after(() => proxy.close());
  const child = spawn(process.execPath, [new URL('../src/cli.js', import.meta.url).pathname, proxy.address, '--json', '--duration', '100'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  type Snap = { metrics: { name: string; value?: number }[]; connection?: { state: string; reconnects: number } };
  const snaps: Snap[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => snaps.push(JSON.parse(l) as Snap));
  const last = () => snaps.at(-1);
  const jobs = () => last()?.metrics.find((m) => m.name === 'jobs')?.value;
  await waitFor('the observer', () => recorder.stats().clients === 1);
  recorder.counter('jobs').increment(5);
  await waitFor('jobs 5', () => jobs() === 5);
  assert.deepEqual(last()!.connection, { state: 'connected', reconnects: 0 });
  proxy.cut();
  await waitFor('the reconnect', () => last()?.connection?.reconnects === 1 && last()?.connection?.state === 'connected' && recorder.stats().clients === 1);
  const seen = snaps.length;
  await waitFor('two more snapshots', () => snaps.length >= seen + 2);
  assert.equal(jobs(), 5, 'the replayed total, once');
});

test('metadata is bounded like series: an exporter sending endless names cannot grow the observer', () => {
  const m = new ObserverModel();
  for (let i = 0; i < 150_000; i++) m.apply({ kind: 'metadata', name: `name_${i}`, metricKind: 'counter', description: 'd'.repeat(100) });
  assert.ok(m.refused >= 50_000, `${m.refused} refused`);
});

test('what an exporter sends cannot drive the terminal: control characters are shown as escapes', async (t) => {
  // OSC 0 sets the window title, OSC 52 writes the clipboard; C1 CSI and DEL besides.
  const evil = '\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\x9b31m\x7f';
  const m = new ObserverModel();
  m.apply({ kind: 'metadata', name: 'jobs', metricKind: 'counter', unit: undefined, description: `about ${evil}` });
  m.apply(metric('jobs', { type: 'counterIncrement', value: 1n }, { who: evil }));
  const lines = m.lines(200, true);
  for (const line of lines) assert.doesNotMatch(line, /[\x00-\x1f\x7f-\x9f]/, 'no control character reaches the screen');
  const text = lines.join('\n');
  assert.match(text, /who = \\x1b\]0;pwned\\x07\\x1b\]52;c;ZXZpbA==\\x07\\x9b31m\\x7f/);
  assert.match(text, /about \\x1b\]0;pwned/);
  const view = render(React.createElement(ObserverView, { model: m, status: () => ({ address: 'x', state: `connected ${evil}`, eventsPerSec: 0 }) }));
  t.after(() => view.unmount());
  await waitFor('a frame', () => (view.lastFrame() ?? '').includes('jobs'));
  for (const line of view.lastFrame()!.replace(/\x1b\[[0-9;]*m/g, '').split('\n')) {
    assert.doesNotMatch(line, /[\x00-\x1f\x7f-\x9f]/, 'nor through the status bar');
  }
});

test('observe --json --once exits 1 when the exporter refuses it (its client slots are full), not 0 with nothing', async (t) => {
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').maxClients(1).build();
  t.after(() => recorder.close());
  const { host, port } = recorder.address as { host: string; port: number };
  const holder = connect(port, host);
  t.after(() => holder.destroy());
  await waitFor('the only slot taken', () => recorder.stats().clients === 1);
  const r = await cli([`${host}:${port}`, '--json', '--once', '--duration', '2000']);
  assert.equal(r.code, 1, r.stdout);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /closed the connection/);
  assert.equal(recorder.stats().rejectedClients, 1);
});

test('observe --json: C1 controls and DEL in a snapshot are escaped too (JSON leaves them raw)', () => {
  const m = new ObserverModel();
  m.apply(metric('x\x9b\x7f', { type: 'counterIncrement', value: 1n }));
  const json = snapshotJson(m.snapshot());
  assert.doesNotMatch(json, /[\x00-\x1f\x7f-\x9f]/);
  assert.equal((JSON.parse(json) as { metrics: { name: string }[] }).metrics[0]!.name, 'x\x9b\x7f', 'the same data');
});

test('the exporter\'s fill levels: the status bar shows the fullest ring against bufferSize (highlighted past 75 %) and the size to use; they are not listed as metrics', async () => {
  const m = new ObserverModel();
  m.apply(metric('jobs', { type: 'counterIncrement', value: 1n }));
  assert.equal(m.buffer, undefined, 'nothing before the exporter reports its buffer size');
  m.apply(metric('metrics_exporter_tcp_buffer_size', { type: 'gaugeSet', value: 4096 }));
  m.apply(metric('metrics_exporter_tcp_ring_peak', { type: 'gaugeSet', value: 1200 }, { thread: 'main' }));
  m.apply(metric('metrics_exporter_tcp_ring_peak', { type: 'gaugeSet', value: 3300 }, { thread: '3' }));
  m.apply(metric('metrics_exporter_tcp_client_queue_peak', { type: 'gaugeSet', value: 10 }));
  // The next window: the burst is over; the largest peak is kept for the status bar and the recommendation.
  m.apply(metric('metrics_exporter_tcp_ring_peak', { type: 'gaugeSet', value: 0 }, { thread: '3' }));
  assert.deepEqual(m.buffer, { size: 4096, ringPeak: 1200, queuePeak: 10, ringPeakMax: 3300, queuePeakMax: 10, recommended: 8192 });
  const snap = m.snapshot();
  assert.deepEqual(snap.metrics.map((x) => x.name), ['jobs'], 'fill levels are summarised, not listed');
  assert.deepEqual(snap.buffer, m.buffer);
  // The status bar, its lines wrapped by the terminal's width joined again.
  const bar = (frame = '') => frame.replace(/[│┌┐└┘─\n]/g, ' ').replace(/\s+/g, ' ');
  const view = render(React.createElement(ObserverView, { model: m, status: () => ({ address: 'x:1', state: 'connected', eventsPerSec: 0, buffer: m.buffer }) }));
  try {
    await waitFor('the status bar', () => /ring peak 3 300 \/ 4 096 \(81 %\)/.test(bar(view.lastFrame())));
    assert.match(bar(view.lastFrame()), /bufferSize 8 192 recommended/);
  } finally {
    view.unmount();
  }
  // Under the mark, with the size already right: plain, and no recommendation.
  const calm = new ObserverModel();
  calm.apply(metric('metrics_exporter_tcp_buffer_size', { type: 'gaugeSet', value: 2048 }));
  calm.apply(metric('metrics_exporter_tcp_ring_peak', { type: 'gaugeSet', value: 700 }, { thread: 'main' }));
  const plain = render(React.createElement(ObserverView, { model: calm, status: () => ({ address: 'x:1', state: 'connected', eventsPerSec: 0, buffer: calm.buffer }) }));
  try {
    await waitFor('the status bar', () => /ring peak 700 \/ 2 048 \(34 %\)/.test(bar(plain.lastFrame())));
    assert.doesNotMatch(bar(plain.lastFrame()), /recommended/);
  } finally {
    plain.unmount();
  }
  // The highlight (colour is off where the test renders): the peak's text is yellow and bold past 75 %.
  const style = (b: NonNullable<ObserverModel['buffer']>) => (bufferText(b).props as { children: React.ReactElement<{ color?: string; bold?: boolean }>[] }).children[1]!.props;
  assert.deepEqual(style(m.buffer!), { color: 'yellow', bold: true, children: 'ring peak 3 300 / 4 096 (81 %)' });
  assert.equal(style(calm.buffer!).color, undefined);
});

test('observe --json --once: "buffer" gives the exporter\'s size, the peaks it reported and the recommended size', async (t) => {
  // The worker takes the burst at its next flush (500 ms), not before: the ring holds all of it.
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').bufferSize(4096).flushIntervalMs(500).build();
  t.after(() => recorder.close());
  const a = recorder.address as { host: string; port: number };
  const run = cli([`${a.host}:${a.port}`, '--json', '--once', '--duration', '2000']);
  await waitFor('the observer', () => recorder.stats().clients === 1);
  const burst = recorder.counter('burst');
  for (let i = 0; i < 1000; i++) burst.increment(); // under a quarter of the ring: the worker sleeps through it
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  const { buffer } = JSON.parse(r.stdout);
  assert.equal(buffer.size, 4096);
  assert.ok(buffer.ringPeakMax >= 1000 - 63 && buffer.ringPeakMax <= 1001, `ring peak ${buffer.ringPeakMax} of a burst of 1000`);
  assert.equal(buffer.recommended, 2048);
});

// What one exporter can make the relay hold is bounded by bytes where it enters, and what is
// refused is counted per exporter and named in the log; one bad exporter never costs another
// anything.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TcpBuilder } from 'metrics-exporter-tcp';
import { startRelay } from '../src/run.js';
import { logSink, relayOptions, sample, scrape } from './harness.js';
import { metadata, metric, rawExporter } from './raw-exporter.js';
import { waitUntil } from './wait.js';

const REASONS = ['max_series', 'max_bytes', 'exporter_series', 'exporter_bytes', 'too_large'];
const refused = (text: string, exporter: string, reason: string) => sample(text, `metrics_exporter_tcp_relay_series_refused_total{exporter="${exporter}",reason="${reason}"}`);

async function goodExporter() {
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  const { host, port } = recorder.address as { host: string; port: number };
  return { recorder, address: `${host}:${port}` };
}

test("names, labels and descriptions over the exporter's limits are refused, counted per exporter and logged once naming it; another exporter is untouched", async (t) => {
  const good = await goodExporter();
  t.after(() => good.recorder.close());
  const bad = await rawExporter((s) =>
    s.write(
      Buffer.concat([
        metric('ok', {}, { counter: 1n }),
        metric('big', { v: 'x'.repeat(2_000_000) }, { counter: 1n }), // 2 MB of label value
        metric('n'.repeat(1025), {}, { counter: 1n }),
        metadata('ok', 'counter', 'count', 'd'.repeat(5000)),
        metric('big', { v: 'x'.repeat(2_000_000) }, { counter: 1n }),
        metric('ok', {}, { counter: 1n }),
      ]),
    ),
  );
  t.after(() => bad.close());
  const sink = logSink();
  const relay = await startRelay({ ...relayOptions([good.address, bad.address], { prometheus: '127.0.0.1:0' }), log: sink.log });
  t.after(() => relay.close());
  await waitUntil('the good exporter connected', async () => good.recorder.stats().clients === 1);
  good.recorder.counter('jobs').increment(3);
  let text = '';
  await waitUntil('both exporters relayed', async () => {
    text = await scrape(relay);
    return sample(text, `ok_total{exporter="${bad.address}"}`) === 2 && sample(text, `jobs_total{exporter="${good.address}"}`) === 3;
  });
  assert.doesNotMatch(text, /^(big|nnnn)/m, 'nothing over the limits is exposed');
  assert.ok(text.length < 100_000, `${text.length} bytes of exposition`);
  assert.equal(refused(text, bad.address, 'too_large'), 4);
  for (const reason of REASONS) assert.equal(refused(text, good.address, reason), 0, `${reason} of the good exporter`);
  const lines = sink.text.split('\n').filter((l) => l.includes(bad.address) && /limit/.test(l));
  assert.equal(lines.length, 1, sink.text);
});

test('one exporter past its share (maxSeriesPerExporter, maxBytesPerExporter) is refused; other exporters still add series', async (t) => {
  const good = await goodExporter();
  t.after(() => good.recorder.close());
  const frames = [
    ...Array.from({ length: 50 }, (_, i) => metric('wide', { i: `${i}`.padStart(1000, '0') }, { counter: 1n })), // 1 kB keys
    ...Array.from({ length: 50 }, (_, i) => metric('narrow', { i: `${i}` }, { counter: 1n })),
  ];
  const bad = await rawExporter((s) => s.write(Buffer.concat(frames)));
  t.after(() => bad.close());
  const options = { prometheus: '127.0.0.1:0', maxSeries: 1000, maxSeriesPerExporter: 30, maxBytesPerExporter: 20_000 };
  const relay = await startRelay(relayOptions([bad.address, good.address], options));
  t.after(() => relay.close());
  let text = '';
  await waitUntil('every frame of the bad exporter', async () => {
    text = await scrape(relay);
    return REASONS.reduce((n, r) => n + (refused(text, bad.address, r) ?? 0), 0) + (text.match(/^(wide|narrow)_total/gm)?.length ?? 0) === 100;
  });
  const held = (await relay.snapshot()).exporters.find((e) => e.exporter === bad.address)!.series;
  const bytes = held.reduce((n, s) => n + s.name.length + Object.entries(s.labels).reduce((m, [k, v]) => m + k.length + v.length, 0), 0);
  assert.ok(held.length <= 30, `${held.length} series`);
  assert.ok(bytes <= 20_000, `${bytes} bytes`);
  assert.ok(refused(text, bad.address, 'exporter_bytes')! > 0);
  assert.ok(refused(text, bad.address, 'exporter_series')! > 0);
  // The other exporter is not affected.
  await waitUntil('connected', async () => good.recorder.stats().clients === 1);
  for (let i = 0; i < 40; i++) good.recorder.counter({ name: 'jobs', labels: { i: String(i) } }).increment(1);
  await waitUntil('all 40 of the good exporter', async () => ((await scrape(relay)).match(/^jobs_total\{/gm)?.length ?? 0) === 30);
});

test('--max-bytes holds over every exporter and thread', async (t) => {
  const keys = (name: string) => Buffer.concat(Array.from({ length: 30 }, (_, i) => metric(name, { i: `${i}`.padStart(1000, '0') }, { counter: 1n })));
  const exporters = await Promise.all(['a', 'b'].map((name) => rawExporter((s) => s.write(keys(name)))));
  t.after(() => Promise.all(exporters.map((e) => e.close())));
  const options = { prometheus: '127.0.0.1:0', threads: 2, maxBytes: 40_000, maxBytesPerExporter: 30_000 } as const;
  const relay = await startRelay(relayOptions(exporters.map((e) => e.address), options));
  t.after(() => relay.close());
  let text = '';
  const count = (reason: string) => exporters.reduce((n, e) => n + (refused(text, e.address, reason) ?? 0), 0);
  await waitUntil('every frame', async () => {
    text = await scrape(relay);
    return count('max_bytes') + count('exporter_bytes') + (text.match(/^[ab]_total\{/gm)?.length ?? 0) === 60;
  });
  const held = (await relay.snapshot()).exporters.flatMap((e) => e.series);
  const bytes = held.reduce((n, s) => n + s.name.length + Object.entries(s.labels).reduce((m, [k, v]) => m + k.length + v.length, 0), 0);
  assert.ok(bytes <= 40_000, `${bytes} bytes`);
  assert.ok(held.length >= 38, `${held.length} series: the relay-wide cap, not less`);
  assert.ok(count('max_bytes') > 0);
});

test('health and loss series never count against --max-series; the loss counter is there at 0, per exporter and reason, before any loss', async (t) => {
  const e = await goodExporter();
  t.after(() => e.recorder.close());
  const relay = await startRelay(relayOptions([e.address], { prometheus: '127.0.0.1:0', maxSeries: 1 }));
  t.after(() => relay.close());
  const loss = (text: string, reason: string) => sample(text, `metrics_exporter_tcp_dropped_total{exporter="${e.address}",reason="${reason}"}`);
  await waitUntil('connected', async () => e.recorder.stats().clients === 1);
  let text = await scrape(relay);
  for (const reason of ['ring_full', 'client_queue', 'invalid']) assert.equal(loss(text, reason), 0, reason);
  e.recorder.counter('a').increment(1); // takes the one series there is room for
  e.recorder.counter('b').increment(1); // refused
  for (let i = 0; i < 3; i++) e.recorder.counter('a').increment(-1); // invalid: reported in-band
  await waitUntil('the loss report', async () => loss((text = await scrape(relay)), 'invalid') === 3);
  assert.equal(sample(text, `a_total{exporter="${e.address}"}`), 1);
  assert.equal(refused(text, e.address, 'max_series'), 1);
  assert.equal(sample(text, 'metrics_exporter_tcp_relay_series'), 1);
});

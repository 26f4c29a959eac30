// The exporter's own Prometheus endpoint (`prometheus()`): what every thread recorded, whether or
// not a TCP client is connected, served by the worker, checked exactly, by promtool, and by a
// real Prometheus with native histograms (issue "Prometheus straight from the exporter"); and
// the relay's native histograms, against the same observations kept by the exporter's aggregate.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { Piscina } from 'piscina';
import { TcpBuilder, type TcpRecorder } from '../src/index.js';
import { withMetrics } from '../src/piscina.js';
import { crashWorker, startExporter, startThread, tally, TestClient, waitFor, warningsDuring } from './helpers.js';
import { NO_PROMETHEUS, PROMETHEUS, startPrometheus } from 'metrics-exporter-tcp-test-support/prometheus';
import { PassThrough } from 'node:stream';
import { fromBinary } from '@bufbuild/protobuf';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { MAX_NATIVE_BUCKETS, startRelay, type Relay } from 'metrics-exporter-tcp-relay';
import { CONTENT_TYPES } from '../src/client/exposition-format.js';
import { HistogramAggregate } from '../src/client/native-histogram.js';
import { defaultBuckets } from '../src/client/prometheus.js';
import { MetricFamilySchema, MetricType, type MetricFamily } from '../src/gen/prometheus_metrics_pb.js';

const POOL_TASK = new URL('./fixtures/pool-task.js', import.meta.url).href;
const PROMTOOL = spawnSync('promtool', ['--version']).status === 0;

async function scrape(recorder: TcpRecorder, accept?: string): Promise<string> {
  const { host, port } = recorder.prometheusAddress!;
  const res = await fetch(`http://${host}:${port}/metrics`, accept === undefined ? {} : { headers: { accept } });
  assert.equal(res.status, 200);
  return res.text();
}

/** The value of the sample `series` (name and labels as written) in an exposition, if there. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('/metrics serves what every thread recorded, exactly, with and without a TCP client', async (t) => {
  const recorder = await startExporter((b) => b.prometheus('127.0.0.1:0'));
  t.after(() => recorder.close());
  recorder.registerCounter('requests', 'count', 'Requests served');
  const requests = recorder.counter({ name: 'requests', labels: { route: '/a' } });
  const depth = recorder.gauge('queue_depth');
  recorder.registerHistogram('latency', 'seconds', 'How long');
  const latency = recorder.histogram('latency');
  // No TCP client: the main thread, an attached thread, and a piscina pool.
  for (let i = 0; i < 1000; i++) requests.increment();
  depth.set(5);
  depth.increment(2);
  for (const v of [0.003, 0.02, 0.3, 7]) latency.record(v);
  const th = startThread(recorder, [{ do: 'burst', n: 700, key: 'jobs', labels: { kind: 'thread' } }]);
  await th.exited;
  const pool = new Piscina(withMetrics(recorder, { filename: POOL_TASK, minThreads: 2, maxThreads: 2 }));
  t.after(() => pool.destroy());
  await Promise.all([pool.run({ n: 300 }), pool.run({ n: 200 })]);
  await waitFor('the pool\'s records', async () => sample(await scrape(recorder), 'jobs_total{kind="pool"}') === 500);
  const text = await scrape(recorder);
  assert.equal(sample(text, 'requests_total{route="/a"}'), 1000);
  assert.equal(sample(text, 'queue_depth'), 7);
  assert.equal(sample(text, 'jobs_total{kind="thread"}'), 700);
  assert.equal(sample(text, 'latency_seconds_count'), 4);
  assert.equal(sample(text, 'latency_seconds_sum'), 0.003 + 0.02 + 0.3 + 7);
  assert.equal(sample(text, 'latency_seconds_bucket{le="0.005"}'), 1);
  assert.equal(sample(text, 'latency_seconds_bucket{le="0.5"}'), 3);
  assert.equal(sample(text, 'latency_seconds_bucket{le="+Inf"}'), 4);
  assert.match(text, /^# HELP requests_total Requests served$/m);

  // A TCP client: it gets the live stream, and /metrics goes on counting the same totals.
  const client = await TestClient.connect(recorder.address);
  t.after(() => client.close());
  await waitFor('the client', () => recorder.stats().clients === 1);
  for (let i = 0; i < 500; i++) requests.increment();
  latency.record(0.02);
  await pool.run({ n: 100 });
  await waitFor('the live frames', () => tally(client.events()).metrics === 601);
  const after = await scrape(recorder);
  assert.equal(sample(after, 'requests_total{route="/a"}'), 1500);
  assert.equal(sample(after, 'jobs_total{kind="pool"}'), 600);
  assert.equal(sample(after, 'latency_seconds_count'), 5);
  assert.equal(sample(after, 'metrics_exporter_tcp_clients'), 1);
});

test('/metrics: counters exact to 2^64, buckets chosen at registration or from the unit, NaN dropped and counted; promtool finds it clean', async (t) => {
  const recorder = await startExporter((b) => b.prometheus('127.0.0.1:0'));
  t.after(() => recorder.close());
  const big = recorder.counter('big');
  big.increment(2n ** 64n - 2n);
  big.increment(1n);
  recorder.registerHistogram('payload', 'bytes');
  recorder.histogram('payload').record(5000);
  recorder.registerHistogram('custom', undefined, 'chosen buckets', { buckets: [1, 10, 100] });
  const custom = recorder.histogram({ name: 'custom', labels: { 'odd.label': 'a"b\\c\nd' } });
  for (const v of [0.5, 5, 50, 500, Number.NaN]) custom.record(v);
  recorder.gauge('nothing').set(Number.NaN); // dropped with no client (the thread's state drops invalid values)
  await waitFor('the NaN counted', async () => sample(await scrape(recorder), 'metrics_exporter_tcp_dropped_total{reason="invalid"}') === 1);
  const text = await scrape(recorder);
  assert.match(text, /^big_total 18446744073709551615$/m, 'exact, as a double would not be');
  assert.equal(sample(text, 'payload_bytes_bucket{le="4096"}'), 0);
  assert.equal(sample(text, 'payload_bytes_bucket{le="16384"}'), 1, 'a bytes histogram has byte-sized buckets');
  assert.deepEqual(
    ['1', '10', '100', '+Inf'].map((le) => sample(text, `custom_bucket{odd_label="a\\"b\\\\c\\nd",le="${le}"}`)),
    [1, 2, 3, 4],
  );
  assert.equal(sample(text, 'custom_count{odd_label="a\\"b\\\\c\\nd"}'), 4, 'NaN is no observation');
  if (!PROMTOOL) return t.diagnostic('promtool not found (Debian package prometheus): the exposition is not checked by it');
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});

test('prometheus() takes a TCP address; a wildcard warns; after a worker crash /metrics is back on the same port, totals exact', async (t) => {
  assert.throws(() => new TcpBuilder().prometheus({ path: '/tmp/x.sock' } as never), /TCP address/);
  assert.throws(() => new TcpBuilder().prometheus('nonsense'), TypeError);
  const warnings = await warningsDuring(async () => {
    const open = await startExporter((b) => b.prometheus('0.0.0.0:0'));
    await open.close();
  });
  assert.ok(warnings.some((w) => w.code === 'MTCP_WILDCARD_LISTEN' && w.message.includes('/metrics')), JSON.stringify(warnings));
  const recorder = await startExporter((b) => b.prometheus('127.0.0.1:0'));
  t.after(() => recorder.close());
  const c = recorder.counter('survives');
  c.increment(40);
  await waitFor('the total', async () => sample(await scrape(recorder), 'survives_total') === 40);
  const before = recorder.prometheusAddress;
  await crashWorker(recorder);
  c.increment(2);
  await waitFor('the endpoint back, with the total', async () => {
    try {
      return sample(await scrape(recorder), 'survives_total') === 42;
    } catch {
      return false;
    }
  }, 10_000);
  assert.deepEqual(recorder.prometheusAddress, before);
  assert.equal(sample(await scrape(recorder), 'metrics_exporter_tcp_worker_restarts_total'), 1);
});

test('a real Prometheus with native histograms reads the totals, the histogram\'s count and its quantiles', { skip: PROMETHEUS === undefined ? NO_PROMETHEUS : false }, async (t) => {
  const recorder = await startExporter((b) => b.prometheus('127.0.0.1:0'));
  t.after(() => recorder.close());
  const { host, port } = recorder.prometheusAddress!;
  recorder.registerHistogram('latency', 'seconds', 'How long');
  const latency = recorder.histogram('latency');
  // 1000 observations spread evenly from 1 ms to 1 s: the median is 0.5 s, p90 0.9 s.
  for (let i = 1; i <= 1000; i++) latency.record(i / 1000);
  const requests = recorder.counter({ name: 'requests', labels: { route: '/a' } });
  for (let i = 0; i < 1234; i++) requests.increment();
  const prom = await startPrometheus([`${host}:${port}`], { features: ['native-histograms'] });
  t.after(() => prom.close());
  await prom.until('sum(requests_total)', (v) => v[0] === 1234);
  await prom.until('histogram_count(latency_seconds)', (v) => v[0] === 1000);
  const [p50] = await prom.until('histogram_quantile(0.5, latency_seconds)', (v) => v.length === 1);
  const [p90] = await prom.until('histogram_quantile(0.9, latency_seconds)', (v) => v.length === 1);
  // Schema 3: a bucket is 9 % wide; a quantile read from one is within it.
  assert.ok(Math.abs(p50! - 0.5) / 0.5 < 0.09, `p50 ${p50}`);
  assert.ok(Math.abs(p90! - 0.9) / 0.9 < 0.09, `p90 ${p90}`);
  t.diagnostic(`p50 ${p50}, p90 ${p90}`);
});

/** The relay's /metrics in the protobuf format (what Prometheus asks for with native histograms on), decoded. */
async function relayFamilies(address: { host: string; port: number }): Promise<MetricFamily[]> {
  const res = await fetch(`http://${address.host}:${address.port}/metrics`, { headers: { accept: CONTENT_TYPES.protobuf } });
  assert.equal(res.headers.get('content-type'), CONTENT_TYPES.protobuf);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const out: MetricFamily[] = [];
  for (let p = 0; p < bytes.length; ) {
    const r = new BinaryReader(bytes.subarray(p));
    const len = r.uint32();
    out.push(fromBinary(MetricFamilySchema, bytes.subarray(p + r.pos, p + r.pos + len)));
    p += r.pos + len;
  }
  return out;
}

/** An exporter, and a relay reading it and serving /metrics; both closed after the test `t`. */
async function relayed(t: { after(fn: () => unknown): void }): Promise<{ recorder: TcpRecorder; address: string; relay: Relay }> {
  const recorder = await startExporter();
  t.after(() => recorder.close());
  const { host, port } = recorder.address as { host: string; port: number };
  const address = `${host}:${port}`;
  const relay = await startRelay({ connect: [address], protocol: 'auto', otlpIntervalMs: 10_000, prometheus: '127.0.0.1:0', maxSeries: 1000, threads: 1, log: new PassThrough().resume() });
  t.after(() => relay.close());
  await waitFor('the relay connected', () => recorder.stats().clients === 1);
  return { recorder, address, relay };
}

test('the relay serves native histograms too: the protobuf format when asked, buckets exactly those of the same observations kept by the exporter, at most 160 of them', async (t) => {
  const { recorder, address, relay } = await relayed(t);
  recorder.registerHistogram('latency', 'seconds', 'How long');
  recorder.registerHistogram('spread', 'bytes');
  const narrow = new HistogramAggregate(defaultBuckets('seconds'));
  const wide = new HistogramAggregate(defaultBuckets('bytes'), MAX_NATIVE_BUCKETS);
  let seed = 1;
  const next = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  for (let i = 0; i < 5000; i++) {
    const v = 0.001 * 10 ** (next() * 3); // 1 ms … 1 s
    recorder.histogram('latency').record(v);
    narrow.record(v);
    const w = (next() < 0.1 ? -1 : 1) * 10 ** (next() * 24 - 12); // 1e-12 … 1e12: past 160 buckets at schema 3
    recorder.histogram('spread').record(w);
    wide.record(w);
  }
  recorder.histogram('spread').record(0);
  wide.record(0);
  let families: MetricFamily[] = [];
  await waitFor('every observation relayed', async () => {
    families = await relayFamilies(relay.prometheus!.address as { host: string; port: number });
    return families.find((f) => f.name === 'spread_bytes')?.metric[0]?.histogram?.sampleCount === 5001n;
  }, 10_000);
  for (const [name, want] of [['latency_seconds', narrow], ['spread_bytes', wide]] as const) {
    const f = families.find((x) => x.name === name)!;
    assert.equal(f.type, MetricType.HISTOGRAM);
    assert.deepEqual(f.metric[0]!.label.map((l) => [l.name, l.value]), [['exporter', address]]);
    const h = f.metric[0]!.histogram!;
    const d = want.data();
    assert.equal(h.schema, d.schema, name);
    assert.equal(Number(h.sampleCount), d.count);
    assert.ok(Math.abs(h.sampleSum - d.sum) <= 1e-9 * Math.abs(d.sum), `${name} sum`);
    assert.equal(Number(h.zeroCount), d.zeroCount);
    assert.deepEqual(h.positiveSpan.map((s) => ({ offset: s.offset, length: s.length })), d.positive.spans, `${name} positive spans`);
    assert.deepEqual(h.positiveDelta.map(Number), d.positive.deltas, `${name} positive deltas`);
    assert.deepEqual(h.negativeSpan.map((s) => ({ offset: s.offset, length: s.length })), d.negative.spans);
    assert.deepEqual(h.negativeDelta.map(Number), d.negative.deltas);
    assert.deepEqual(h.bucket.map((b) => [b.upperBound, Number(b.cumulativeCount)]), d.bounds.map((b, i) => [b, d.cumulative[i]]), `${name} classic buckets`);
  }
  assert.equal(wide.schema < 3, true, `the wide one was reduced (schema ${wide.schema})`);
  assert.ok(families.find((f) => f.name === 'spread_bytes')!.metric[0]!.histogram!.positiveDelta.length <= MAX_NATIVE_BUCKETS);
  // The relay's own health is in the same format.
  assert.equal(families.find((f) => f.name === 'metrics_exporter_tcp_relay_up')!.metric[0]!.gauge!.value, 1);
  // Text for everyone else, unchanged.
  const text = await (await fetch(`http://${(relay.prometheus!.address as { host: string }).host}:${(relay.prometheus!.address as { port: number }).port}/metrics`)).text();
  assert.match(text, new RegExp(`^latency_seconds_count\\{exporter="${address}"\\} 5000$`, 'm'));
});

test('a real Prometheus with native histograms reads them through the relay: the totals of two threads, the count and quantiles', { skip: PROMETHEUS === undefined ? NO_PROMETHEUS : false }, async (t) => {
  const { recorder, relay } = await relayed(t);
  recorder.registerHistogram('latency', 'seconds', 'How long');
  for (let i = 1; i <= 1000; i++) recorder.histogram('latency').record(i / 1000);
  // Records of another thread reach the relay in the same stream.
  const requests = recorder.counter({ name: 'requests', labels: { route: '/a' } });
  for (let i = 0; i < 1234; i++) requests.increment();
  const th = startThread(recorder, [{ do: 'burst', n: 766, key: 'requests', labels: { route: '/a' } }]);
  await th.exited;
  const { host, port } = relay.prometheus!.address as { host: string; port: number };
  const prom = await startPrometheus([`${host}:${port}`], { features: ['native-histograms'] });
  t.after(() => prom.close());
  await prom.until('histogram_count(latency_seconds)', [1000]);
  await prom.until('sum(requests_total)', [2000]);
  const [p50] = await prom.until('histogram_quantile(0.5, latency_seconds)', (v) => v.length === 1);
  const [p90] = await prom.until('histogram_quantile(0.9, latency_seconds)', (v) => v.length === 1);
  assert.ok(Math.abs(p50! - 0.5) / 0.5 < 0.09, `p50 ${p50}`);
  assert.ok(Math.abs(p90! - 0.9) / 0.9 < 0.09, `p90 ${p90}`);
  // The relay's health, through the same format.
  await prom.until('metrics_exporter_tcp_relay_up', [1]);
});

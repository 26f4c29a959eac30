// The exporter's own Prometheus endpoint (`prometheus()`): what every thread recorded, whether or
// not a TCP client is connected, served by the worker, checked exactly, by promtool, and by a
// real Prometheus with native histograms (issue "Prometheus straight from the exporter").
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { Piscina } from 'piscina';
import { TcpBuilder, type TcpRecorder } from '../src/index.js';
import { withMetrics } from '../src/piscina.js';
import { crashWorker, startExporter, startThread, tally, TestClient, waitFor, warningsDuring } from './helpers.js';
import { NO_PROMETHEUS, PROMETHEUS, startPrometheus } from './prometheus-server.js';

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
  const prom = await startPrometheus([`${host}:${port}`], ['native-histograms']);
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

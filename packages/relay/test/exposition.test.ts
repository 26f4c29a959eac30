// What /metrics and OTLP say of awkward input: names and labels that collide once sanitized
// (nothing disappears without being counted and named), NaN observations, u64 totals.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startRelay } from '../src/run.js';
import { logSink, otlpReceiver, relayOptions, sample, scrape, type OtlpPoint } from './harness.js';
import { metric, rawExporter } from './raw-exporter.js';
import { waitUntil } from './wait.js';

test('series that collide once sanitized are hidden, counted per exporter and reason, and named in the log once', async (t) => {
  const a = await rawExporter((s) =>
    s.write(
      Buffer.concat([
        metric('http.requests', {}, { counter: 1n }),
        metric('http_requests', {}, { counter: 2n }), // the same http_requests_total
        metric('jobs', {}, { counter: 1n }),
        metric('jobs_total', {}, { counter: 2n }), // the same jobs_total
        metric('x', { 'a.b': '1' }, { counter: 1n }),
        metric('x', { a_b: '1' }, { counter: 2n }), // the same x_total{a_b="1"}
        metric('y', { exporter: 'e' }, { counter: 1n }),
        metric('y', { exported_exporter: 'e' }, { counter: 2n }), // the relay's renaming of the first
        metric('z', { 'a.b': '1', a_b: '2' }, { counter: 1n }), // two labels of one series that sanitize alike
      ]),
    ),
  );
  t.after(() => a.close());
  const b = await rawExporter((s) => setTimeout(() => s.write(metric('http_requests_total', {}, { set: 5 })), 300)); // a gauge, on another exporter, with a counter's name
  t.after(() => b.close());
  const sink = logSink();
  const relay = await startRelay({ ...relayOptions([a.address, b.address], { prometheus: '127.0.0.1:0', threads: 1 }), log: sink.log });
  t.after(() => relay.close());
  const hidden = (text: string, exporter: string, reason: string) => sample(text, `metrics_exporter_tcp_relay_series_hidden{exporter="${exporter}",reason="${reason}"}`);
  let text = '';
  await waitUntil('every series read', async () => (await relay.snapshot()).exporters.reduce((n, e) => n + e.series.length, 0) === 10);
  await waitUntil('hidden series counted', async () => hidden((text = await scrape(relay)), b.address, 'name_clash') === 1);
  assert.equal(hidden(text, a.address, 'duplicate'), 4);
  assert.equal(hidden(text, a.address, 'label_clash'), 1);
  assert.equal(hidden(text, a.address, 'name_clash'), 0);
  assert.equal(hidden(text, b.address, 'duplicate'), 0);
  // The first of each stays.
  assert.equal(sample(text, `http_requests_total{exporter="${a.address}"}`), 1);
  assert.equal(sample(text, `jobs_total{exporter="${a.address}"}`), 1);
  assert.equal(sample(text, `x_total{a_b="1",exporter="${a.address}"}`), 1);
  assert.equal(sample(text, `y_total{exported_exporter="e",exporter="${a.address}"}`), 1);
  const samples = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  assert.equal(new Set(samples.map((l) => l.slice(0, l.lastIndexOf(' ')))).size, samples.length, 'every sample once');
  // Named once, however often it is scraped.
  await scrape(relay);
  for (const name of ['counter http_requests{}', 'counter jobs_total{}', 'counter x{a_b="1"}', 'counter y{exported_exporter="e"}', 'counter z{a.b="1",a_b="2"}', 'gauge http_requests_total{}']) {
    assert.equal(sink.text.split('\n').filter((l) => l.includes('hides') && l.includes(name)).length, 1, `${name}: ${sink.text}`);
  }
});

test('a NaN observation is dropped and counted (not put in the lowest bucket, not poisoning _sum); a u64 total is never an out-of-range OTLP integer', async (t) => {
  const ex = await rawExporter((s) =>
    s.write(
      Buffer.concat([
        metric('lat', {}, { observe: 0.001 }),
        metric('lat', {}, { observe: Number.NaN }),
        metric('lat', {}, { observe: 0.2 }),
        metric('big', {}, { counter: 2n ** 64n - 1n }),
      ]),
    ),
  );
  t.after(() => ex.close());
  const receiver = await otlpReceiver();
  const relay = await startRelay(relayOptions([ex.address], { prometheus: '127.0.0.1:0', otlp: receiver.url, otlpIntervalMs: 100 }));
  t.after(async () => {
    await relay.close();
    await receiver.close();
  });
  let text = '';
  await waitUntil('all four', async () => sample((text = await scrape(relay)), `big_total{exporter="${ex.address}"}`) !== undefined);
  const s = (name: string) => sample(text, `${name}{exporter="${ex.address}"}`);
  assert.equal(sample(text, `lat_bucket{exporter="${ex.address}",le="1"}`), 2); // no unit: 1-2-5 per decade; the NaN is in none
  assert.equal(sample(text, `lat_bucket{exporter="${ex.address}",le="+Inf"}`), 2);
  assert.equal(s('lat_count'), 2);
  assert.ok(Math.abs(s('lat_sum')! - 0.201) < 1e-12, `sum ${s('lat_sum')}`);
  assert.equal(s('metrics_exporter_tcp_relay_invalid_values_total'), 1);
  assert.equal(s('big_total'), 2 ** 64);
  await waitUntil('exported', async () => receiver.latest('big').length === 1, 10_000);
  const [point] = receiver.latest('big');
  assert.ok(point!.asInt === undefined || BigInt(point!.asInt) < 2n ** 63n, `asInt ${point!.asInt}`);
  assert.equal(Number(point!.asDouble ?? point!.asInt), 2 ** 64);
});

test("a histogram's classic buckets follow its unit (bytes do not land in +Inf), unless --buckets chooses them for all", async (t) => {
  const { TcpBuilder } = await import('metrics-exporter-tcp');
  const exporter = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  t.after(() => exporter.close());
  const { host, port } = exporter.address as { host: string; port: number };
  const address = `${host}:${port}`;
  const byUnit = await startRelay(relayOptions([address], { prometheus: '127.0.0.1:0', threads: 1 }));
  t.after(() => byUnit.close());
  const chosen = await startRelay(relayOptions([address], { prometheus: '127.0.0.1:0', threads: 1, buckets: [1, 1000] }));
  t.after(() => chosen.close());
  await waitUntil('both relays connected', async () => exporter.stats().clients === 2);
  exporter.registerHistogram('payload', 'bytes', 'request body size');
  exporter.registerHistogram('latency', 'seconds');
  for (const v of [100, 3000, 70_000]) exporter.histogram('payload').record(v);
  exporter.histogram('latency').record(0.02);
  exporter.histogram('depth').record(7); // no unit: 1-2-5 per decade
  const l = `exporter="${address}"`;
  let text = '';
  await waitUntil('the histograms', async () => sample((text = await scrape(byUnit)), `depth_count{${l}}`) === 1);
  // Bytes: a factor of 4 apart from 256 B.
  assert.equal(sample(text, `payload_bytes_bucket{${l},le="256"}`), 1);
  assert.equal(sample(text, `payload_bytes_bucket{${l},le="4096"}`), 2);
  assert.equal(sample(text, `payload_bytes_bucket{${l},le="65536"}`), 2);
  assert.equal(sample(text, `payload_bytes_bucket{${l},le="262144"}`), 3);
  assert.equal(sample(text, `latency_seconds_bucket{${l},le="0.025"}`), 1);
  assert.equal(sample(text, `latency_seconds_bucket{${l},le="0.01"}`), 0);
  assert.equal(sample(text, `depth_bucket{${l},le="5"}`), 0);
  assert.equal(sample(text, `depth_bucket{${l},le="10"}`), 1);
  await waitUntil('the histograms, --buckets 1,1000', async () => sample((text = await scrape(chosen)), `depth_count{${l}}`) === 1);
  assert.equal(sample(text, `payload_bytes_bucket{${l},le="1000"}`), 1);
  assert.equal(sample(text, `payload_bytes_bucket{${l},le="+Inf"}`), 3);
  assert.equal(sample(text, `latency_seconds_bucket{${l},le="1"}`), 1);
  assert.equal((await chosen.snapshot()).exporters[0]!.series.find((s) => s.name === 'payload')!.histogram!.bounds.join(), '1,1000');
});

test('--otlp-histogram exponential: OTLP exponential histograms from the native buckets, every observation in the bucket the definition gives it', async (t) => {
  const { TcpBuilder } = await import('metrics-exporter-tcp');
  const exporter = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  t.after(() => exporter.close());
  const { host, port } = exporter.address as { host: string; port: number };
  const receiver = await otlpReceiver();
  const relay = await startRelay(relayOptions([`${host}:${port}`], { otlp: receiver.url, otlpIntervalMs: 200, otlpHistogram: 'exponential', threads: 1 }));
  t.after(async () => {
    await relay.close();
    await receiver.close();
  });
  await waitUntil('connected', async () => exporter.stats().clients === 1);
  exporter.registerHistogram('latency', 'seconds');
  const values: number[] = [];
  let seed = 7;
  const next = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  for (let i = 0; i < 2000; i++) values.push((next() < 0.2 ? -1 : 1) * 0.0001 * 10 ** (next() * 5));
  values.push(0, 0, Number.POSITIVE_INFINITY);
  for (const v of values) exporter.histogram('latency').record(v);
  await waitUntil('exported', async () => Number(receiver.latest('latency')[0]?.count ?? 0) === values.length, 10_000);
  const [p] = receiver.latest('latency');
  // Five decades on both sides take more than 160 buckets at scale 3: the relay halved the resolution.
  const scale = p!.scale!;
  assert.equal(scale, 2);
  assert.ok((p!.positive?.bucketCounts?.length ?? 0) + (p!.negative?.bucketCounts?.length ?? 0) <= 160 + 1);
  assert.equal(Number(p!.zeroCount), 2);
  // OTLP bucket k holds (2^(k/2^scale), 2^((k+1)/2^scale)]: for |v|, k = ceil(2^scale log2 |v|) − 1.
  const dense = (side: OtlpPoint['positive']) => new Map((side?.bucketCounts ?? []).map((n, j) => [(side?.offset ?? 0) + j, Number(n)] as const).filter(([, n]) => n > 0));
  const want = { positive: new Map<number, number>(), negative: new Map<number, number>() };
  for (const v of values) {
    if (v === 0 || !Number.isFinite(v)) continue;
    const side = v > 0 ? want.positive : want.negative;
    const k = Math.ceil(2 ** scale * Math.log2(Math.abs(v))) - 1;
    side.set(k, (side.get(k) ?? 0) + 1);
  }
  // +Inf goes to the bucket above the largest finite one.
  const top = Math.max(...want.positive.keys()) + 1;
  want.positive.set(top, 1);
  const sorted = (m: Map<number, number>) => [...m].sort((a, b) => a[0] - b[0]);
  assert.deepEqual(sorted(dense(p!.positive)), sorted(want.positive));
  assert.deepEqual(sorted(dense(p!.negative)), sorted(want.negative));
});

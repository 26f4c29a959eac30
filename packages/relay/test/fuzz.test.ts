// A seeded property test: several exporters at once into one relay, two healthy and two hostile
// (sizes over every limit, endless keys, NaN, names that collide once sanitized, restarts,
// garbage, series that expire). The healthy exporters' series stay exact, every frame is read,
// every refused and hidden series is counted, and memory stays within the stated bound.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { TcpBuilder } from 'metrics-exporter-tcp';
import { startRelay } from '../src/run.js';
import type { RelaySnapshot } from '../src/snapshot.js';
import { relayOptions, sample, scrape } from './harness.js';
import { metadata, metric, rawExporter, type Op } from './raw-exporter.js';
import { waitUntil } from './wait.js';

/** The root's seeded generator (its test build), and the seed: FUZZ_SEED, as for the root's fuzz tests. */
const { Rng, baseSeed } = (await import(new URL('../../../../dist/test/fuzz-input.js', import.meta.url).href)) as {
  Rng: new (seed: number) => { seed: number; next(): number; int(n: number): number; chance(p: number): boolean; pick<T>(xs: readonly T[]): T };
  baseSeed(): number;
};
type Rng = InstanceType<typeof Rng>;

const LIMITS = { maxSeries: 3000, maxSeriesPerExporter: 600, maxBytesPerExporter: 150_000 };
/** What the relay may grow by (resident memory) while the hostile exporters send hundreds of MB: see the README's bound. */
const MEMORY_BOUND = 96 * 1024 * 1024;
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A histogram's expected buckets (not cumulative), count and sum. */
class Expected {
  counts = new Array<number>(BUCKETS.length + 1).fill(0);
  sum = 0;
  count = 0;
  record(v: number): void {
    let i = 0;
    while (i < BUCKETS.length && v > BUCKETS[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

/** What a healthy exporter's connection said: counter totals, gauge values, histograms, by series. */
class Truth {
  readonly counters = new Map<string, bigint>();
  readonly gauges = new Map<string, number>();
  readonly histograms = new Map<string, Expected>();
  /** Frames written. */
  frames = 0;
  /** A frame of `op` on `name` + `labels`, recorded as the relay must see it. */
  frame(name: string, labels: Record<string, string>, op: Op): Buffer {
    const id = JSON.stringify([name, labels]);
    this.frames++;
    if ('counter' in op) this.counters.set(id, (this.counters.get(id) ?? 0n) + op.counter);
    else if ('set' in op) this.gauges.set(id, op.set);
    else if ('observe' in op) {
      const h = this.histograms.get(id) ?? new Expected();
      this.histograms.set(id, h);
      h.record(op.observe);
    }
    return metric(name, labels, op);
  }
}

/** Asserts `exporter`'s series in the relay are `truth`, exactly. */
function assertExact(snap: RelaySnapshot, exporter: string, truth: Truth, what: string): void {
  const e = snap.exporters.find((x) => x.exporter === exporter)!;
  const id = (s: { name: string; labels: Readonly<Record<string, string>> }) => JSON.stringify([s.name, s.labels]);
  const got = (kind: string) => new Map(e.series.filter((s) => s.kind === kind && s.name !== 'metrics_exporter_tcp_dropped').map((s) => [id(s), s]));
  assert.deepEqual(new Map([...got('counter')].map(([k, s]) => [k, s.total])), truth.counters, `${what}: counters`);
  assert.deepEqual(new Map([...got('gauge')].map(([k, s]) => [k, s.known ? s.value : Number.NaN])), truth.gauges, `${what}: gauges`);
  assert.deepEqual(
    new Map([...got('histogram')].map(([k, s]) => [k, { counts: s.histogram!.counts, count: s.histogram!.count, sum: s.histogram!.sum }])),
    new Map([...truth.histograms].map(([k, h]) => [k, { counts: h.counts, count: h.count, sum: h.sum }])),
    `${what}: histograms`,
  );
}

/** A healthy stand-in's connection: keys from a fixed pool, values of every kind. */
function healthyStream(r: Rng, truth: Truth, n: number): Buffer {
  const frames = [metadata('orders', 'counter', 'count', 'Orders taken'), metadata('wait', 'histogram', undefined, 'Time waited')];
  truth.frames += 2;
  for (let i = 0; i < n; i++) {
    const labels = { shop: `s${r.int(4)}` };
    const k = r.int(3);
    const op: Op = k === 0 ? { counter: BigInt(1 + r.int(1000)) } : k === 1 ? { set: r.int(100) - 50 } : { observe: r.pick([0.001, 0.02, 0.3, 4, 20]) };
    frames.push(truth.frame(k === 0 ? 'orders' : k === 1 ? 'stock' : 'wait', labels, op));
  }
  return Buffer.concat(frames);
}

/** What a hostile exporter's frames should cost it: frames too large, NaN observations. */
interface Tally {
  frames: number;
  bytes: number;
  tooLarge: number;
  nan: number;
}

/**
 * Frames over the limits, made once and sent again and again (this process is the relay's too:
 * its memory is what is measured): a name over 1024 characters, label values of 2 kB to 300 kB,
 * and a frame over 1 MiB (skipped as it streams).
 */
const TOO_LARGE = [
  ...[1025, 3000, 6000].map((n) => metric('n'.repeat(n), {}, { counter: 1n })),
  ...[2000, 40_000, 300_000].map((n) => metric('wide', { v: 'x'.repeat(n) }, { counter: 1n })),
  metric('huge', { v: 'x'.repeat(1_200_000) }, { counter: 1n }),
];

/** One hostile frame, with what it should cost. */
function hostileFrame(r: Rng, t: Tally, i: number): Buffer {
  const f = hostileKind(r, t, i);
  t.frames++;
  t.bytes += f.length;
  return f;
}

function hostileKind(r: Rng, t: Tally, i: number): Buffer {
  switch (r.int(9)) {
    case 0:
    case 1:
    case 2:
      t.tooLarge++;
      return r.pick(TOO_LARGE);
    case 3:
      t.tooLarge++;
      return metric('many', Object.fromEntries(Array.from({ length: 65 + r.int(10) }, (_, j) => [`l${j}`, 'v'])), { set: 1 });
    case 4:
      t.tooLarge++;
      return metadata('described', 'gauge', 'bytes', 'd'.repeat(4097 + r.int(10_000)));
    case 5:
      t.nan += 1;
      return metric('lat', {}, { observe: Number.NaN });
    case 6: // names that collide once sanitized, with each other and with the healthy exporters'
      return metric(r.pick(['orders_total', 'orders', 'a.b', 'a_b', 'wait_count', 'metrics_exporter_tcp_relay_up']), r.pick<Record<string, string>>([{}, { 'x.y': '1' }, { x_y: '1' }]), { set: 1 });
    default: // a key of its own, of 100 to 600 bytes: the per-exporter caps
      return metric('card', { id: `${i}`, pad: 'p'.repeat(100 + r.int(500)) }, r.chance(0.5) ? { set: i } : { counter: 1n });
  }
}

/** Writes `frames` one after another as the socket takes them; resolves once all are written. */
async function pump(s: Socket, frames: Iterable<Buffer>): Promise<void> {
  for (const f of frames) if (!s.write(f)) await new Promise((r) => s.once('drain', r));
}

test('fuzz: two healthy and two hostile exporters at once; healthy series exact, every frame read, refused and hidden series counted, memory bounded', { timeout: 60_000 }, async (t) => {
  const seed = baseSeed();
  const r = new Rng(seed);
  t.diagnostic(`seed ${seed} (FUZZ_SEED to replay)`);

  // Healthy 1: a real exporter, connected for good.
  const real = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  t.after(() => real.close());
  const h1 = `127.0.0.1:${(real.address as { port: number }).port}`;
  const realTruth = new Truth();

  // Healthy 2: a stand-in that restarts: each connection is a fresh app, the last one stays.
  const h2Truths: Truth[] = [];
  const H2_CONNECTIONS = 3;
  let h2Socket: Socket | undefined;
  const healthy = await rawExporter((s, n) => {
    const truth = new Truth();
    h2Truths.push(truth);
    const bytes = healthyStream(new Rng(seed + n), truth, 2000);
    if (n < H2_CONNECTIONS) s.end(bytes);
    else s.write(bytes, () => (h2Socket = s));
  });
  t.after(() => healthy.close());

  // Hostile 1: sizes over every limit, endless keys, NaN, names that collide.
  const tally: Tally = { frames: 0, bytes: 0, tooLarge: 0, nan: 0 };
  let hostileDone = false;
  let go: () => void = () => {};
  const started = new Promise<void>((resolve) => (go = resolve));
  const hostile = await rawExporter((s) => {
    const frames = function* () {
      const rh = new Rng(seed + 100);
      for (let i = 0; i < 3000; i++) yield hostileFrame(rh, tally, i);
    };
    void started.then(() => pump(s, frames())).then(() => (hostileDone = true));
  });
  t.after(() => hostile.close());

  // Hostile 2: restarts again and again, with new gauges each time (they expire), and garbage now and then.
  let churnFrames = 0;
  const churn = await rawExporter((s, n) => {
    const frames = Array.from({ length: 50 }, (_, i) => metric(`churn_${n}`, { i: String(i) }, { set: i }));
    churnFrames += frames.length;
    if (n % 4 === 2) s.end(Buffer.concat([...frames, Buffer.from([0x05, 0xff, 0xff, 0xff, 0xff, 0xff])]));
    else if (n < 8) setTimeout(() => s.end(Buffer.concat(frames)), 50);
    else s.write(Buffer.concat(frames));
  });
  t.after(() => churn.close());

  const exporters = [h1, healthy.address, hostile.address, churn.address];
  const relay = await startRelay(
    relayOptions(exporters, { prometheus: '127.0.0.1:0', threads: 2, staleAfterMs: 800, expireSeries: true, malformedRetryMs: 50, buckets: BUCKETS, ...LIMITS }),
  );
  t.after(() => relay.close());
  // Healthy apps set their gauges again and again: a gauge nobody sets for --stale-after goes (--expire-series).
  let stock = 0;
  const refresh = setInterval(() => {
    real.gauge('stock').set(stock);
    const truth = h2Truths.at(-1);
    if (h2Socket === undefined || truth === undefined) return;
    for (const id of truth.gauges.keys()) {
      const [name, labels] = JSON.parse(id) as [string, Record<string, string>];
      h2Socket.write(truth.frame(name, labels, { set: truth.gauges.get(id)! }));
    }
  }, 100);
  t.after(() => clearInterval(refresh));
  await waitUntil('every exporter connected', async () => real.stats().clients === 1 && hostile.connections === 1);
  // The relay as it is before the hostile exporter sends anything.
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const rss0 = process.memoryUsage().rss;
  go();
  // Healthy first: the names the hostile exporter collides with are theirs.
  real.registerCounter('orders', 'count', 'Orders taken');
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 50; i++) {
      const shop = `s${r.int(3)}`;
      const n = 1 + r.int(5);
      real.counter({ name: 'orders', labels: { shop } }).increment(n);
      const id = JSON.stringify(['orders', { shop }]);
      realTruth.counters.set(id, (realTruth.counters.get(id) ?? 0n) + BigInt(n));
      const v = r.pick([0.002, 0.04, 0.7, 3]);
      real.histogram('wait').record(v);
      const w = JSON.stringify(['wait', {}]);
      realTruth.histograms.set(w, realTruth.histograms.get(w) ?? new Expected());
      realTruth.histograms.get(w)!.record(v);
    }
    real.gauge('stock').set((stock = round));
    realTruth.gauges.set(JSON.stringify(['stock', {}]), round);
    await new Promise((res) => setTimeout(res, 10));
  }

  const events = async () => new Map((await relay.snapshot()).exporters.map((e) => [e.exporter, e.events]));
  await waitUntil('every frame read', async () => {
    const ev = await events();
    return hostileDone && ev.get(hostile.address) === tally.frames && healthy.connections === H2_CONNECTIONS && ev.get(healthy.address) === h2Truths.reduce((n, x) => n + x.frames, 0) && churn.connections >= 8;
  }, 30_000).catch(async (err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify([...(await events())])}, hostile ${tally.frames}, healthy ${h2Truths.map((x) => x.frames)}`);
  });
  // The real exporter's frames: 1 metadata, 1000 increments, 1000 observations, 20 sets (the loss report is in-band too).
  await waitUntil('the real exporter read', async () => ((await events()).get(h1) ?? 0) >= 2021);
  clearInterval(refresh); // (the checks below take less than --stale-after)
  const h2Frames = () => h2Truths.reduce((n, x) => n + x.frames, 0);
  await waitUntil('the last refresh read', async () => (await events()).get(healthy.address) === h2Frames());

  // A snapshot and a scrape of the same state: the churning exporter's series come and go (expiry).
  const counts = (x: RelaySnapshot) => JSON.stringify(x.exporters.map((e) => e.series.length));
  let snap = await relay.snapshot();
  let text = await scrape(relay);
  for (let again = await relay.snapshot(); counts(again) !== counts(snap); again = await relay.snapshot()) {
    snap = again;
    text = await scrape(relay);
  }
  const of = (a: string) => snap.exporters.find((e) => e.exporter === a)!;

  // The healthy exporters are exact: the real one since the relay connected, the stand-in as of its last connection.
  assertExact(snap, h1, realTruth, 'the real exporter');
  assertExact(snap, healthy.address, h2Truths.at(-1)!, 'the restarted exporter');
  assert.equal(of(healthy.address).connects, H2_CONNECTIONS);
  for (const [address, family] of [[h1, 'orders_total'], [healthy.address, 'orders_total']] as const) {
    assert.ok(text.split('\n').some((l) => l.startsWith(`${family}{`) && l.includes(`exporter="${address}"`)), `${family} of ${address} on /metrics`);
  }

  // The hostile exporter: every frame counted, what it should cost is what it cost, within its caps.
  const x = of(hostile.address);
  assert.equal(x.refused.too_large, tally.tooLarge);
  assert.equal(x.invalidValues, tally.nan);
  const held = x.series.filter((s) => s.name !== 'metrics_exporter_tcp_dropped');
  assert.ok(held.length <= LIMITS.maxSeriesPerExporter, `${held.length} series held`);
  const bytes = held.reduce((n, s) => n + Buffer.byteLength(s.name) + Object.entries(s.labels).reduce((m, [k, v]) => m + Buffer.byteLength(k) + Buffer.byteLength(v), 0), 0);
  const metaBytes = [...x.metadata].reduce((n, [name, m]) => n + Buffer.byteLength(name) + Buffer.byteLength(m.unit ?? '') + Buffer.byteLength(m.description ?? ''), 0);
  assert.ok(bytes + metaBytes <= LIMITS.maxBytesPerExporter, `${bytes + metaBytes} bytes held`);
  assert.ok(x.refused.exporter_series + x.refused.exporter_bytes > 0, 'the per-exporter caps were reached');

  // The churning exporter: read again after each malformed stream, counted.
  const c = of(churn.address);
  assert.ok(c.decodeErrors >= 2, `${c.decodeErrors} decode errors`);

  // Every series held is on /metrics or counted as hidden (gauges of unknown base aside).
  const histograms = new Set([...text.matchAll(/^# TYPE (\S+) histogram$/gm)].map((m) => m[1]!));
  for (const e of snap.exporters) {
    const shown = text
      .split('\n')
      .filter((l) => !l.startsWith('#') && !l.startsWith('metrics_exporter_tcp_') && l.includes(`exporter="${e.exporter}"`))
      .filter((l) => {
        const name = l.slice(0, l.indexOf('{'));
        const family = name.replace(/_(bucket|sum|count)$/, '');
        return histograms.has(family) && name !== family ? name.endsWith('_count') : !histograms.has(name);
      }).length;
    const hidden = ['name_clash', 'duplicate', 'label_clash'].reduce((n, reason) => n + (sample(text, `metrics_exporter_tcp_relay_series_hidden{exporter="${e.exporter}",reason="${reason}"}`) ?? 0), 0);
    const expected = e.series.filter((s) => s.name !== 'metrics_exporter_tcp_dropped' && s.known).length;
    assert.equal(shown + hidden, expected, `${e.exporter}: ${shown} shown + ${hidden} hidden`);
  }
  assert.ok((sample(text, `metrics_exporter_tcp_relay_series_hidden{exporter="${hostile.address}",reason="name_clash"}`) ?? 0) > 0);

  gc?.();
  const grown = process.memoryUsage().rss - rss0;
  t.diagnostic(`resident memory grew by ${(grown / 2 ** 20).toFixed(0)} MiB while the hostile exporter sent ${(tally.bytes / 2 ** 20).toFixed(0)} MiB in ${tally.frames} frames (${tally.tooLarge} too large); churn frames ${churnFrames}`);
  assert.ok(grown < MEMORY_BOUND, `resident memory grew by ${grown} bytes`);
});

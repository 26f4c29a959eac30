// Scrape: what GET /metrics of 100 000 series costs the relay, and what scrapes cost the
// exporters it reads.
// 1. One rendering, in this thread, interleaved rounds: the relay's exposition writer (what a
//    scrape runs) beside prom-client's Registry fed the same series the way relay 0.1.0 did
//    (a snapshot of every series, families as prom-client collectors, one string).
// 2. Over HTTP, from a real relay holding 100 000 series: one scrape at a time, and bursts of 20.
// 3. The same relay while a real exporter in another process records at a paced 1 M records/s:
//    a burst of 20 concurrent scrapes (as the issue measured; three rounds), then one every 2 s;
//    what the exporter lost for the relay, and what the app lost in its own ring (a sign that the
//    machine, not the relay, ran out of CPU: the app, its exporter, the relay and 20 curl
//    processes share 2 cores).
// Scrapers run in processes of their own, as Prometheus does: curl where there is one (reading 20
// bodies of 40 MiB in JavaScript costs a core that the relay and the app need on 2 cores),
// started by a helper process: a process that forks stalls its own threads while it does (its
// page tables are copied), so the relay's process must not be the one that starts them.
import { execFile, fork, spawnSync } from 'node:child_process';
import { get } from 'node:http';
import { createInterface } from 'node:readline';
import { DEFAULT_BUCKETS, type RelaySnapshot } from 'metrics-exporter-tcp-relay';
import { familyName } from '../src/client/index.js';
import { TcpBuilder } from '../src/index.js';
import { loadedRelay, relayOf, standIns } from './relay.js';
import { percentile, sleep, summary } from './measure.js';

export interface ScrapeBenchResult {
  series: number;
  /** Milliseconds of one rendering, per round. */
  render: { ours: number[]; promClient: number[]; oursMin: number; oursMedian: number; promClientMin: number; promClientMedian: number; bytes: number };
  /** Over HTTP: one scrape (ms per round), and bursts of 20 (ms until all 20 were answered, renderings per burst). */
  http: { one: number[]; oneMedian: number; burst: number[]; burstMedian: number; rendersPerBurst: number };
  /** Bursts of scrapes while an app streams into the relay: one (in each of three rounds), then one every 2 s. */
  streaming: Streaming[];
}

interface Streaming {
  /** Milliseconds between bursts (the first comes a second into the stream). */
  every: number;
    rate: number;
    seconds: number;
    made: number;
    ringFull: number;
    /** What the exporter dropped because the relay did not read it in time: the relay's loss. */
    clientQueue: number;
    relayed: number;
    scrapes: number;
    renders: number;
    scrapeP50Ms: number;
    scrapeMaxMs: number;
}

const SERIES = 100_000;
const BURST = 20;

// The paced app (this file run as a child process): a real exporter recording one counter at a
// paced rate once a client is connected and a line arrives on stdin, then printing its stats.
if (process.argv[2] === 'scrape-paced-app') {
  const { rate, seconds } = JSON.parse(process.argv[3]!) as { rate: number; seconds: number };
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').bufferSize(65_536).build();
  process.stdout.write(`${JSON.stringify(recorder.address)}\n`);
  while (recorder.stats().clients === 0) await sleep(10);
  await createInterface({ input: process.stdin })[Symbol.asyncIterator]().next();
  const counter = recorder.counter('hits');
  const n = rate * seconds;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const t0 = performance.now();
  for (let done = 0; done < n; ) {
    const due = Math.min(n, Math.ceil(((performance.now() - t0) * rate) / 1000));
    for (; done < due; done++) counter.increment(1);
    await new Promise((r) => setImmediate(r));
    Atomics.wait(nap, 0, 0, 0.05);
  }
  await sleep(100);
  process.stdout.write(`${JSON.stringify(recorder.stats())}\n`);
  await recorder.close();
  process.exit(0);
}

// The scraper (this file run as a child process): for each `n` it is sent, n concurrent GETs of
// the URL it was given (by curl processes, or else itself); it answers with each one's milliseconds.
if (process.argv[2] === 'scrape-client') {
  const url = process.argv[3]!;
  const curlHere = spawnSync('curl', ['--version']).status === 0;
  process.on('message', (n: number) => {
    void Promise.all(Array.from({ length: n }, () => (curlHere ? curl(url) : timedScrape(url)))).then((ms) => process.send!(ms));
  });
}

/** One GET of `url` by curl, body dropped: its milliseconds. */
function curl(url: string): Promise<number> {
  return new Promise((resolve, reject) =>
    execFile('curl', ['-s', '-o', '/dev/null', '-w', '%{time_total}', url], (err, out) => (err ? reject(err) : resolve(Number(out) * 1000))),
  );
}

/** The scraper process. */
function scraper(url: string): { burst(n: number): Promise<number[]>; stop(): void } {
  const child = fork(new URL(import.meta.url).pathname, ['scrape-client', url], { stdio: 'inherit' });
  return {
    burst: (n) =>
      new Promise((resolve) => {
        child.once('message', (ms) => resolve(ms as number[]));
        child.send(n);
      }),
    stop: () => child.disconnect(),
  };
}

/** prom-client's Registry fed the series the way relay 0.1.0 did: one string per scrape. */
async function promClientRenderer(): Promise<(snap: RelaySnapshot) => Promise<string>> {
  const { Registry } = await import('prom-client');
  type Value = { value: number; labels: Record<string, string | number>; metricName?: string };
  return async (snap) => {
    const registry = new Registry();
    const families = new Map<string, { name: string; help: string; type: string; aggregator: string; values: Value[]; get(): unknown; reset(): void }>();
    for (const e of snap.exporters) for (const s of e.series) {
      const meta = e.metadata.get(s.name);
      const name = familyName(s.name, s.kind, meta?.unit);
      let f = families.get(name);
      if (f === undefined) {
        const values: Value[] = [];
        const family = { name, help: meta?.description ?? s.name, type: s.kind, aggregator: 'sum', values, get: () => family, reset() {} };
        families.set(name, (f = family));
      }
      const labels: Record<string, string> = { ...s.labels, exporter: s.scope };
      const h = s.histogram;
      if (h === undefined) f.values.push({ value: s.kind === 'counter' ? Number(s.total) : s.value, labels });
      else {
        let cumulative = 0;
        h.bounds.forEach((le, i) => f.values.push({ metricName: `${name}_bucket`, value: (cumulative += h.counts[i]!), labels: { ...labels, le } }));
        f.values.push({ metricName: `${name}_bucket`, value: h.count, labels: { ...labels, le: '+Inf' } });
        f.values.push({ metricName: `${name}_sum`, value: h.sum, labels });
        f.values.push({ metricName: `${name}_count`, value: h.count, labels });
      }
    }
    for (const f of families.values()) registry.registerMetric(f as never);
    return registry.metrics();
  };
}

/** 1. One rendering of SERIES series, ours beside prom-client's, in interleaved rounds (ms). */
async function renderings(rounds: number): Promise<ScrapeBenchResult['render']> {
  const { internals, mirror } = await loadedRelay(SERIES);
  const exposition = new internals.Exposition(mirror, DEFAULT_BUCKETS, () => {});
  const promClient = await promClientRenderer();
  let bytes = 0;
  const ours = async () => {
    bytes = 0;
    const chunks = exposition.render();
    for (let c = chunks.next(); !c.done; c = chunks.next()) bytes += c.value.length;
  };
  const theirs = async () => void (await promClient(internals.snapshotOf(mirror, DEFAULT_BUCKETS)));
  await ours(); // the families are built once, at the first scrape after series appear
  await theirs();
  const times = { ours: [] as number[], promClient: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    for (const [k, f] of [['ours', ours], ['promClient', theirs]] as const) {
      (globalThis as { gc?: () => void }).gc?.();
      const t0 = performance.now();
      await f();
      times[k].push(performance.now() - t0);
    }
  }
  const o = summary(times.ours);
  const p = summary(times.promClient);
  return { ...times, oursMin: o.min, oursMedian: o.median, promClientMin: p.min, promClientMedian: p.median, bytes };
}

/** How long a GET of `url` took, to the last byte of its body (ms); the body is read and dropped. */
function timedScrape(url: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(performance.now() - t0));
    }).on('error', reject);
  });
}

/** A relay holding SERIES series from a stand-in exporter, and its /metrics URL. */
async function loadedRelayOverHttp(more: string[] = []) {
  const ex = await standIns(1, SERIES, SERIES, true);
  const relay = await relayOf([...ex.addresses, ...more], 'fast', 2);
  while ((await relay.snapshot()).exporters.reduce((n, e) => n + e.series.length, 0) < SERIES) await sleep(100);
  const { host, port } = relay.prometheus!.address as { host: string; port: number };
  return { ex, relay, url: `http://${host}:${port}/metrics` };
}

/** 2. Over HTTP: one scrape at a time, then bursts of BURST. */
async function overHttp(rounds: number): Promise<ScrapeBenchResult['http']> {
  const { ex, relay, url } = await loadedRelayOverHttp();
  const client = scraper(url);
  await client.burst(1);
  const one: number[] = [];
  const burst: number[] = [];
  let renders = 0;
  for (let r = 0; r < rounds; r++) {
    one.push(...(await client.burst(1)));
    const before = relay.prometheus!.stats().renders;
    burst.push(Math.max(...(await client.burst(BURST))));
    renders += relay.prometheus!.stats().renders - before;
  }
  client.stop();
  await ex.stop();
  await relay.close();
  return { one, oneMedian: summary(one).median, burst, burstMedian: summary(burst).median, rendersPerBurst: renders / rounds };
}

/** 3. A burst of BURST scrapes a second into a stream of `rate` records/s for `seconds`, and then every `every` ms. */
async function whileStreaming(rate: number, seconds: number, every: number): Promise<Streaming> {
  const app = fork(new URL(import.meta.url).pathname, ['scrape-paced-app', JSON.stringify({ rate, seconds })], { stdio: ['pipe', 'pipe', 'inherit', 'ipc'] });
  const lines = createInterface({ input: app.stdout! })[Symbol.asyncIterator]();
  const next = async () => JSON.parse((await lines.next()).value as string) as unknown;
  const a = (await next()) as { host: string; port: number };
  const { ex, relay, url } = await loadedRelayOverHttp([`${a.host}:${a.port}`]);
  const client = scraper(url);
  const rendersBefore = relay.prometheus!.stats().renders;
  const latencies: number[] = [];
  app.stdin!.write('go\n');
  const done = next() as Promise<{ dropped: { ringFull: number; clientQueue: number } }>;
  let streaming = true;
  void done.then(() => (streaming = false));
  await sleep(1000);
  while (streaming) {
    const [ms] = await Promise.all([client.burst(BURST), sleep(every)]);
    latencies.push(...ms);
  }
  client.stop();
  const stats = await done;
  const made = rate * seconds;
  const total = async () => Number((await relay.snapshot()).exporters.find((e) => e.exporter === `${a.host}:${a.port}`)?.series.find((s) => s.name === 'hits')?.total ?? 0);
  for (const end = Date.now() + 10_000; Date.now() < end && (await total()) < made - stats.dropped.ringFull - stats.dropped.clientQueue; ) await sleep(100);
  const relayed = await total();
  const renders = relay.prometheus!.stats().renders - rendersBefore;
  await ex.stop();
  await relay.close();
  latencies.sort((x, y) => x - y);
  return {
    every,
    rate,
    seconds,
    made,
    ringFull: stats.dropped.ringFull,
    clientQueue: stats.dropped.clientQueue,
    relayed,
    scrapes: latencies.length,
    renders,
    scrapeP50Ms: percentile(latencies, 50),
    scrapeMaxMs: latencies.at(-1) ?? Number.NaN,
  };
}

export async function runScrapeBench(quick: boolean): Promise<ScrapeBenchResult> {
  const render = await renderings(quick ? 1 : 7);
  const http = await overHttp(quick ? 1 : 5);
  const [rate, seconds, rounds] = quick ? [100_000, 2, 1] : [1_000_000, 4, 3];
  const streaming: Streaming[] = [];
  for (let r = 0; r < rounds; r++) streaming.push(await whileStreaming(rate, seconds, seconds * 1000));
  streaming.push(await whileStreaming(rate, 2 * seconds, 2000));
  return { series: SERIES, render, http, streaming };
}

// The exporter's own /metrics against prom-client's register.metrics(), for the same series,
// side by side in one process: how long one scrape takes, and how much of it the app's main
// thread feels (its event-loop delay, from monitorEventLoopDelay, while a scrape runs). Ours
// renders in the exporter's worker; the scraper is a process of its own, as Prometheus is, so
// that the main thread runs only what the app runs. prom-client renders on the main thread (that
// is how it is used: `await register.metrics()` in a request handler).
import { spawn } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import promClient from 'prom-client';
import { TcpBuilder } from '../src/index.js';
import { sleep, summary, table } from './measure.js';

export interface EndpointResult {
  series: number;
  /** ms per scrape, per round. */
  ours: number[];
  promClient: number[];
  /** The main thread's event-loop delay while scraping (ms): p99 and max, over all rounds. */
  oursDelay: { p99: number; max: number };
  promClientDelay: { p99: number; max: number };
  /** Bytes of one exposition (text format), ours and prom-client's. */
  bytes: { ours: number; promClient: number };
}

/**
 * A scraper in a process of its own, started once (starting a process per scrape would stall
 * this thread while it forks): `get()` asks it to GET the URL, and resolves with the time it took
 * (ms) and the body's size.
 */
function scraper(url: string): { get(): Promise<{ ms: number; bytes: number }>; close(): void } {
  const code = [
    'const url = process.argv[1];',
    "require('node:readline').createInterface({ input: process.stdin }).on('line', async () => {",
    '  const t0 = performance.now();',
    '  const body = await (await fetch(url)).arrayBuffer();',
    '  process.stdout.write(JSON.stringify({ ms: performance.now() - t0, bytes: body.byteLength }) + String.fromCharCode(10));',
    '});',
  ].join('\n');
  const child = spawn(process.execPath, ['-e', code, url], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    async get() {
      child.stdin!.write('\n');
      return JSON.parse((await lines.next()).value as string) as { ms: number; bytes: number };
    },
    close: () => child.kill(),
  };
}

/** The main thread's event-loop delay (p99 and max, ms) while `run` runs. */
async function delayDuring(run: () => Promise<void>): Promise<{ p99: number; max: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  await sleep(5); // the monitor measures from its first tick: a stall before it would go unseen
  await run();
  await sleep(20); // the monitor's next ticks measure a stall that ended just now
  h.disable();
  return { p99: h.percentile(99) / 1e6, max: h.max / 1e6 };
}

/**
 * `series` series, 60 % counters with two labels, 30 % gauges and 10 % histograms, recorded once
 * each, in our exporter and in a prom-client registry; then `rounds` scrapes of each.
 */
async function runOne(series: number, rounds: number, log: (s: string) => void): Promise<EndpointResult> {
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').maxKeys(series + 1000).prometheus('127.0.0.1:0').build();
  const registry = new promClient.Registry();
  const promCounter = new promClient.Counter({ name: 'requests_total', help: 'h', labelNames: ['route', 'status'], registers: [registry] });
  const promGauge = new promClient.Gauge({ name: 'queue_depth', help: 'h', labelNames: ['queue'], registers: [registry] });
  const promHist = new promClient.Histogram({ name: 'latency_seconds', help: 'h', labelNames: ['route'], registers: [registry] });
  for (let i = 0; i < series; i++) {
    const kind = i % 10;
    if (kind < 6) {
      recorder.counter({ name: 'requests', labels: { route: `/r${i}`, status: '200' } }).increment(i);
      promCounter.labels(`/r${i}`, '200').inc(i);
    } else if (kind < 9) {
      recorder.gauge({ name: 'queue_depth', labels: { queue: `q${i}` } }).set(i);
      promGauge.labels(`q${i}`).set(i);
    } else {
      recorder.histogram({ name: 'latency', labels: { route: `/r${i}` } }).record(0.02);
      promHist.labels(`/r${i}`).observe(0.02);
    }
  }
  await sleep(500); // the histograms' records drained
  const { host, port } = recorder.prometheusAddress!;
  const scrape = scraper(`http://${host}:${port}/metrics`);
  const ours: number[] = [];
  const prom: number[] = [];
  const oursDelays: { p99: number; max: number }[] = [];
  const promDelays: { p99: number; max: number }[] = [];
  const bytes = { ours: 0, promClient: 0 };
  for (let r = -1; r < rounds; r++) {
    log(`endpoint: ${series} series, round ${r + 1} …`);
    let got = { ms: 0, bytes: 0 };
    const od = await delayDuring(async () => {
      got = await scrape.get();
    });
    let text = '';
    let ms = 0;
    const pd = await delayDuring(async () => {
      const t0 = performance.now();
      text = await registry.metrics();
      ms = performance.now() - t0;
    });
    if (r < 0) continue; // the warm-up round
    ours.push(got.ms);
    oursDelays.push(od);
    prom.push(ms);
    promDelays.push(pd);
    bytes.ours = got.bytes;
    bytes.promClient = Buffer.byteLength(text);
  }
  scrape.close();
  await recorder.close();
  const worst = (ds: { p99: number; max: number }[]) => ({ p99: Math.max(...ds.map((d) => d.p99)), max: Math.max(...ds.map((d) => d.max)) });
  return { series, ours, promClient: prom, oursDelay: worst(oursDelays), promClientDelay: worst(promDelays), bytes };
}

export async function runEndpointBench(quick: boolean, log: (s: string) => void): Promise<{ results: EndpointResult[]; text: string }> {
  const results: EndpointResult[] = [];
  for (const series of quick ? [1000] : [10_000, 100_000]) results.push(await runOne(series, quick ? 1 : 5, log));
  const rows: (string | number)[][] = [
    ['series', 'ours: scrape ms (min / median)', 'app thread delay p99 / max ms', 'prom-client metrics() ms (min / median)', 'app thread delay p99 / max ms', 'MB (ours / prom-client)'],
  ];
  for (const r of results) {
    const o = summary(r.ours);
    const p = summary(r.promClient);
    rows.push([
      r.series,
      `${o.min.toFixed(0)} / ${o.median.toFixed(0)}`,
      `${r.oursDelay.p99.toFixed(1)} / ${r.oursDelay.max.toFixed(1)}`,
      `${p.min.toFixed(0)} / ${p.median.toFixed(0)}`,
      `${r.promClientDelay.p99.toFixed(1)} / ${r.promClientDelay.max.toFixed(1)}`,
      `${(r.bytes.ours / 1e6).toFixed(1)} / ${(r.bytes.promClient / 1e6).toFixed(1)}`,
    ]);
  }
  return { results, text: table(rows) };
}

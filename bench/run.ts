// `npm run bench [-- section… | --quick | tune --rate R --burst B --clients N]`
// Sections: hotpath, e2e, clients, threads, gc, relay, scrape, endpoint, client, cpu, tls, app, memory (default: all of them). Results go to bench/results/ as
// JSON plus a readable .md table (with --quick, a smoke run, none are kept unless --out DIR is given).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_FLUSH_INTERVAL_MS } from '../src/app/builder.js';
import { runApp } from './app.js';
import { runClientBench } from './client.js';
import { runCpu } from './cpu.js';
import { runRuntimeCost } from './runtime.js';
import { runE2E, type E2EResult, type Load } from './e2e.js';
import { runGcTrace } from './gc.js';
import { runHotpath } from './hotpath.js';
import { runMemory } from './memory.js';
import { fmt, table } from './measure.js';
import { runRelayBench } from './relay.js';
import { runScrapeBench } from './scrape.js';
import { runThreads } from './threads.js';
import { runEndpointBench } from './endpoint.js';
import { runTlsCost } from './tls.js';
import { runTune } from './tune.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    quick: { type: 'boolean', default: false },
    rate: { type: 'string' },
    burst: { type: 'string', default: '0' },
    clients: { type: 'string', default: '1' },
    seconds: { type: 'string' },
    out: { type: 'string' },
  },
});
const quick = values.quick ?? false;
const sections = positionals.length > 0 ? positionals : ['hotpath', 'e2e', 'clients', 'threads', 'gc', 'relay', 'scrape', 'endpoint', 'client', 'cpu', 'tls', 'app', 'memory'];
const known = new Set(['hotpath', 'e2e', 'clients', 'threads', 'gc', 'relay', 'scrape', 'endpoint', 'client', 'cpu', 'tls', 'app', 'memory', 'tune']);
for (const s of sections) if (!known.has(s)) throw new Error(`unknown section ${s}; use ${[...known].join(', ')}`);

const started = new Date();
const env = {
  date: started.toISOString(),
  node: process.version,
  cpu: `${cpus()[0]?.model ?? 'unknown'} × ${cpus().length}`,
  command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
  quick,
  gcExposed: typeof (globalThis as { gc?: unknown }).gc === 'function',
};
const results: Record<string, unknown> = { env };
const text: string[] = [`# Bench ${env.date}`, '', `node ${env.node}, ${env.cpu}, \`${env.command}\``, ''];
const say = (s: string) => {
  console.log(s);
  text.push(s);
};
const log = (s: string) => console.log(s);

function e2eTable(rs: E2EResult[]): string {
  const rows: (string | number)[][] = [
    ['bufferSize', 'load', 'clients', 'made/s', 'received/s', 'ring full %', 'client queue %', 'p50 ms', 'p99 ms', 'worker CPU %', 'RSS MiB'],
  ];
  for (const r of rs) {
    rows.push([
      r.bufferSize,
      r.load === 'flood' ? 'flood' : `${fmt(r.load)}/s`,
      r.clients,
      fmt(r.madePerSec),
      fmt(r.receivedPerSec),
      ((r.ringFull / r.made) * 100).toFixed(2),
      ((r.clientQueue / r.made) * 100).toFixed(2),
      r.latencyP50Ms.toFixed(3),
      r.latencyP99Ms.toFixed(3),
      r.workerCpuPct.toFixed(0),
      r.rssMiB.toFixed(0),
    ]);
  }
  return table(rows);
}

say(`## Environment\n\n\`\`\`\n${JSON.stringify(env, null, 2)}\n\`\`\`\n`);

if (sections.includes('hotpath')) {
  log('hot path …');
  const h = await runHotpath(quick ? { rounds: 2, runMs: 5, gcCalls: 200_000, aloneRuns: 2 } : { rounds: 7, runMs: 40, gcCalls: 2_000_000, aloneRuns: 11 });
  results.hotpath = h.results;
  results.hotpathOtelGc = h.otelGc;
  results.hotpathOverloadAlone = h.alone;
  say(`## Hot path (ns per call; min / median over the rounds)\n\n\`\`\`\n${h.text}\n\`\`\`\n`);
}

/** The clients section runs at the smallest size that lost nothing at 1M/s (or 16384). */
let clientsBuffer = 16_384;
if (sections.includes('e2e')) {
  const sizes = quick ? [1024] : [256, 1024, 4096, 16_384, 65_536];
  const loads: Load[] = ['flood', 100_000, 1_000_000];
  const rs: E2EResult[] = [];
  for (const bufferSize of sizes) {
    for (const load of loads) {
      log(`end to end: bufferSize ${bufferSize}, ${load === 'flood' ? 'flood' : `${load}/s`} …`);
      rs.push(await runE2E({ bufferSize, load, seconds: quick ? 0.3 : load === 'flood' ? 3 : 2, clients: 1, slowClient: false }));
    }
  }
  results.e2e = rs;
  const floods = rs.filter((r) => r.load === 'flood');
  const best = floods.reduce((a, b) => (b.receivedPerSec > a.receivedPerSec ? b : a));
  const lossless1M = rs.filter((r) => r.load === 1_000_000 && r.ringFull + r.clientQueue === 0).map((r) => r.bufferSize);
  const recommended = lossless1M.length > 0 ? Math.min(...lossless1M) : null;
  if (recommended !== null) clientsBuffer = recommended;
  results.e2eSummary = { bestFloodBuffer: best.bufferSize, bestFloodReceivedPerSec: best.receivedPerSec, recommendedFor1M: recommended };
  say(
    `## End to end, one client on loopback\n\n\`\`\`\n${e2eTable(rs)}\n\`\`\`\n\n` +
      `Best flood: ${fmt(best.receivedPerSec)} events/s received at bufferSize ${best.bufferSize} (target ≥ 5M/s).\n` +
      `Smallest bufferSize with zero drops at a sustained 1M/s: ${recommended ?? 'none of those tried'}.\n`,
  );
}

if (sections.includes('clients')) {
  const rs: E2EResult[] = [];
  for (const clients of quick ? [1, 2] : [1, 4, 16]) {
    log(`clients: ${clients} …`);
    rs.push(await runE2E({ bufferSize: clientsBuffer, load: 1_000_000, seconds: quick ? 0.3 : 2, clients, slowClient: clients > 1 }));
  }
  results.clients = rs;
  const rows: (string | number)[][] = [['clients', 'made', 'fast clients: received min / max', 'slow client: received', 'slow client: lost to its queue', 'ring full']];
  for (const r of rs) {
    const fast = r.clients > 1 ? r.received.slice(0, -1) : r.received;
    const slow = r.clients > 1 ? r.received.at(-1)! : undefined;
    rows.push([r.clients, r.made, `${Math.min(...fast)} / ${Math.max(...fast)}`, slow ?? '-', slow === undefined ? '-' : r.made - r.ringFull - slow, r.ringFull]);
  }
  say(`## Clients (1M records/s for 2 s, bufferSize ${clientsBuffer}; with more than one client the last reads slowly)\n\n\`\`\`\n${table(rows)}\n\`\`\`\n`);
}

if (sections.includes('endpoint')) {
  const e = await runEndpointBench(quick, log);
  results.endpoint = e.results;
  say(`## The exporter's /metrics against prom-client's register.metrics(), same series (${quick ? 1 : 5} rounds)\n\n\`\`\`\n${e.text}\n\`\`\`\n`);
}

if (sections.includes('tls')) {
  const t = await runTlsCost(quick, log);
  results.tls = t.rows;
  say(`## TLS against plain TCP (bufferSize 65536, one client; ${quick ? 1 : 3} runs each, alternating)\n\n\`\`\`\n${t.text}\n\`\`\`\n`);
}

if (sections.includes('threads')) {
  log('threads …');
  const rs = await runThreads(quick ? [1] : [1, 2, 4], quick ? 0.3 : 2);
  results.threads = rs;
  const rows: (string | number)[][] = [['piscina threads', 'ns/op median (min) per thread', 'flood made/s', 'received/s', 'ring full']];
  for (const r of rs) rows.push([r.threads, `${r.nsPerOpMedian.toFixed(2)} (${r.nsPerOpMin.toFixed(2)})`, fmt(r.madePerSec), fmt(r.receivedPerSec), r.ringFull]);
  say(`## Threads (a piscina pool recording through attach(); one client; bufferSize 65536)\n\n\`\`\`\n${table(rows)}\n\`\`\`\n`);
}

if (sections.includes('gc')) {
  log('gc trace …');
  const g = await runGcTrace(quick ? 1_000_000 : 10_000_000);
  results.gc = g;
  say(
    `## Allocation on the producer thread\n\n${g.records.toLocaleString('en')} records with a client connected: ${g.gcEvents} GC events, heap ${g.heapGrowthBytes >= 0 ? '+' : ''}${g.heapGrowthBytes} bytes (${g.bytesPerRecord.toFixed(4)} bytes per record).\n`,
  );
}

if (sections.includes('relay')) {
  log('relay …');
  const r = await runRelayBench(quick ? 1 : 3, quick ? 0.3 : 1.5);
  results.relay = r;
  const rows: (string | number)[][] = [['decoder', '--threads', 'threads used', 'events/s min', 'median', '× events, 1 thread', 'relay CPU s per M events']];
  const base = r.results.find((x) => x.decoder === 'events' && x.threads === 1)!.median;
  for (const x of r.results) rows.push([x.decoder, x.threads, x.threadsUsed, fmt(x.min), fmt(x.median), (x.median / base).toFixed(2), x.cpuSecondsPerM.toFixed(2)]);
  say(
    `## Relay (2 stand-in exporters in a child process replaying real frames as fast as TCP allows; ${quick ? 1 : 3} interleaved rounds)\n\n\`\`\`\n${table(rows)}\n\`\`\`\n\n` +
      `\`fast\`: the client's MetricReader, series bound once per key; \`events\`: protobuf-es fromBinary and an event object per frame (the old path).\n\n` +
      `Decode + aggregate into one relay store on one thread, frames in memory (no sockets): ${r.inMemory.map((m) => `${m.decoder} ${fmt(m.median)}/s median (min ${fmt(m.min)})`).join(', ')}.\n` +
      `Memory: ${r.bytesPerSeries.toFixed(0)} bytes of heap per series (100 000 series, a third each counters, gauges, histograms: a reader thread's store and key table and the main thread's mirror and /metrics families, measured in one thread).\n`,
  );
}

if (sections.includes('scrape')) {
  log('scrape …');
  const r = await runScrapeBench(quick);
  results.scrape = r;
  const { render: x, http: h, streaming: st } = r;
  const rows: (string | number)[][] = [
    ['one rendering of 100 000 series', 'ms min', 'median', '× ours (median)'],
    ['relay writer (chunks from a frozen copy)', x.oursMin.toFixed(0), x.oursMedian.toFixed(0), '1.00'],
    ['prom-client Registry, as relay 0.1.0', x.promClientMin.toFixed(0), x.promClientMedian.toFixed(0), (x.promClientMedian / x.oursMedian).toFixed(2)],
  ];
  say(
    `## Scrape (a relay holding ${r.series} series, a third each counters, gauges, histograms; ${x.ours.length} interleaved rounds)\n\n\`\`\`\n${table(rows)}\n\`\`\`\n\n` +
      `Exposition: ${(x.bytes / 2 ** 20).toFixed(1)} MiB. Over HTTP from a real relay (2 reader threads): one scrape ${h.oneMedian.toFixed(0)} ms median (${h.one.map((v) => v.toFixed(0)).join(', ')}); bursts of 20 concurrent scrapes: ${h.burstMedian.toFixed(0)} ms median until all were answered (${h.burst.map((v) => v.toFixed(0)).join(', ')}), ${h.rendersPerBurst.toFixed(1)} renderings per burst.\n\n` +
      st
        .map(
          (s) =>
            `While an exporter in another process records at a paced ${fmt(s.rate)}/s for ${s.seconds} s into the same relay, ${s.every >= s.seconds * 1000 ? 'one burst of 20 concurrent scrapes a second in' : `a burst of 20 concurrent scrapes every ${s.every / 1000} s`}: ${s.scrapes} scrapes (${s.renders} renderings), p50 ${s.scrapeP50Ms.toFixed(0)} ms, max ${s.scrapeMaxMs.toFixed(0)} ms; records made ${fmt(s.made)}, lost for the relay (client_queue) ${s.clientQueue}, lost in the app's own ring ${s.ringFull}, relayed ${fmt(s.relayed)}.\n`,
        )
        .join('\n'),
  );
}

if (sections.includes('client')) {
  log('client …');
  const c = await runClientBench(quick);
  results.client = c.result;
  say(
    `## Client: decode + aggregate into the observer's model, one thread (events/s over 7 interleaved rounds of ≥ 300 ms after a warm-up round; real frames from the exporter's encoder, ${c.result.bytesPerFrame.toFixed(1)} bytes each)\n\n\`\`\`\n${c.text}\n\`\`\`\n`,
  );
}

if (sections.includes('cpu')) {
  if (process.platform !== 'linux') {
    say('## CPU\n\nSkipped: it reads per-thread CPU time from /proc, which only Linux has.\n');
  } else {
    const c = await runCpu(quick, log);
    log('cpu: runtime metrics …');
    const rt = await runRuntimeCost(quick ? 0.3 : 3);
    results.cpu = { rows: c.rows, sweep: c.sweep, workerGc: c.gc, runtimeMetrics: rt };
    say(
      `## CPU of the whole exporter, by record rate (% of one core; one labeled counter, bufferSize 65536, flushIntervalMs ${DEFAULT_FLUSH_INTERVAL_MS} (the default) unless said; one client in another process)\n\n` +
        `\`exporter %\` is the worker thread plus what the other threads (V8's GC and compiler threads) spend beyond the same app recording into a no-op (\`baseline other %\`). The app thread is shown beside its baseline and not added: its share is the hot path (\`hotpath\`), below the pacing loop's noise. Latency is record → client receipt, from probe records.\n\n\`\`\`\n${c.text}\n\`\`\`\n\n` +
        `collectRuntimeMetrics(): ${rt.usPerCollection.toFixed(0)} µs of the app thread's CPU per collection (${rt.collections} collections, no client), ${rt.pctAtDefault.toFixed(4)} % of a core at the default 5 s interval.\n`,
    );
  }
}

if (sections.includes('app')) {
  const a = await runApp(quick, log);
  results.app = a.rows;
  results.appPaired = a.paired;
  const p = a.paired;
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)} %`;
  say(
    `## A node:http server under autocannon (16 connections, 4 records per request; 2 s slices, each in a fresh process, 6 rounds in rotated order; ${a.pinned ? 'the server pinned to core 0, autocannon and the reader to the others' : 'not pinned (no taskset)'})\n\n` +
      `Requests per second of the server, and the CPU of its process per request by thread: the main thread, our worker, and the others (V8's helpers).\n\n\`\`\`\n${a.text}\n\`\`\`\n\n` +
      `Paired in one process (the exporter built with a reader connected, then closed, in blocks of four slices: off, on, on, off or the reverse): ours with a client reading, against no metrics, ${pct(p.median)} req/s (median of ${p.blocks.length} blocks; ${pct(p.min)} to ${pct(p.max)}); our worker ${p.workerUsPerRequest.toFixed(2)} µs of CPU per request.\n`,
  );
}

if (sections.includes('memory')) {
  const m = await runMemory(quick, log);
  results.memory = m.rows;
  say(`## Memory: what the app's process grows by (RSS after a GC; 1 000 records/s for ${quick ? 1 : 5} s; ${quick ? 1 : 5} processes each, interleaved)\n\n\`\`\`\n${m.text}\n\`\`\`\n`);
}

if (sections.includes('tune')) {
  if (values.rate === undefined) throw new Error('tune needs --rate <records per second> (and optionally --burst N --clients N)');
  const t = await runTune(
    { rate: Number(values.rate), burst: Number(values.burst), clients: Number(values.clients), seconds: Number(values.seconds ?? (quick ? 0.3 : 2)) },
    log,
  );
  results.tune = t.result;
  say(`## Buffer size for ${values.rate}/s, bursts of ${values.burst}, ${values.clients} client(s)\n\n\`\`\`\n${t.text}\n\`\`\`\n`);
}

// A quick run without --out writes its files to a temporary folder, reads the JSON back (the
// smoke test covers writing results too) and removes the folder: its timings mean nothing.
const scratch = quick && values.out === undefined;
const dir = values.out ?? (scratch ? mkdtempSync(join(tmpdir(), 'mtcp-bench-')) : new URL('../../bench/results/', import.meta.url).pathname);
mkdirSync(dir, { recursive: true });
const stamp = env.date.replace(/[:.]/g, '-');
const written = join(dir, `${stamp}.json`);
writeFileSync(written, `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(join(dir, `${stamp}.md`), `${text.join('\n')}\n`);
const took = `${((Date.now() - started.getTime()) / 1000).toFixed(0)} s`;
if (scratch) {
  JSON.parse(readFileSync(written, 'utf8'));
  rmSync(dir, { recursive: true });
  console.log(`\nquick run (${took}): results written, read back and removed; --out DIR keeps them`);
} else {
  console.log(`\nwritten: ${written} and .md (${took})`);
}

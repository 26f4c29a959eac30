// Hot path: ns per call of our recording calls and of Node's metrics libraries, measured side by
// side in one process, in interleaved rounds, after warm-up.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import StatsD from 'hot-shots';
import promClient from 'prom-client';
import { TcpBuilder, counter as globalCounter, type TcpRecorder } from '../src/index.js';
import { TcpMeterProvider } from '../src/otel/index.js';
import { traceAllocation, type AllocationTrace } from './gc.js';
import type { OverloadResult } from './overload-app.js';
import { fmt, loopFor, ownCpuNs, settled, summary, table, tick, timeRun, type Loop } from './measure.js';
import { Sink } from './sink.js';

export interface HotpathResult {
  name: string;
  group: string;
  minNs: number;
  medianNs: number;
  /** Calls per timed run, where fixed (ours, with a client). */
  calls?: number;
  /** Share of the calls the ring dropped while measured (ours, with a client). */
  droppedShare?: number;
  /** The app thread's own CPU per call, min and median (Linux; candidates marked `cpu`). */
  cpuMinNs?: number;
  cpuMedianNs?: number;
}

interface Candidate {
  readonly name: string;
  readonly group: string;
  readonly target: unknown;
  /** One call, with the target as `t` and the loop index as `i`. */
  readonly body: string;
  /** Calls per timed run: fixed for ours-with-client (the ring must not fill), else calibrated. */
  readonly fixedCalls?: number;
  /** Ours: the recorder written to; each run starts with its ring empty (see `settled`). */
  readonly recorder?: TcpRecorder;
  readonly between?: () => void | Promise<void>;
  /**
   * Also measure the thread's own CPU per call: on 2 cores, a worker and a reader that run
   * beside the loop take its core part of the time, which the wall clock counts.
   */
  readonly cpu?: boolean;
}


/** Calls per run so that one run takes about `ms`. */
function calibrate(loop: Loop, target: unknown, ms: number): number {
  let n = 1000;
  for (;;) {
    const t0 = process.hrtime.bigint();
    loop(target, n);
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
    if (elapsed > ms / 4 || n > 1e8) return Math.max(1000, Math.round((n * ms) / Math.max(elapsed, 0.001)));
    n *= 4;
  }
}

class NoopReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/** Allocation of ours through the OpenTelemetry API, with a client: `calls` calls traced. */
export interface OtelGcTrace {
  calls: number;
  reused: AllocationTrace;
  newEqual: AllocationTrace;
}

export async function runHotpath(opts: {
  rounds: number;
  runMs: number;
  /** Calls per allocation trace of the OpenTelemetry API cases. */
  gcCalls: number;
  /** Runs of the overload measured in a process of its own (`overload-app.ts`). */
  aloneRuns: number;
}): Promise<{ results: HotpathResult[]; otelGc: OtelGcTrace; alone: OverloadResult; text: string }> {
  const labels = { service: 'api', region: 'eu' };
  const cleanup: (() => Promise<unknown> | void)[] = [];

  // A handle of the global API made before install() (at module level, say): it follows
  // whichever recorder is installed. Then the installed recorder's own handle, for comparison.
  const early = { c: globalCounter({ name: 'requests', labels }) };
  const installed = await new TcpBuilder().listenAddress('127.0.0.1:0').install();
  cleanup.push(() => installed.close());
  const late = { c: globalCounter({ name: 'requests', labels }) };
  // Ours, twice: with nobody connected, and with one client connected and draining.
  const idle = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  cleanup.push(() => idle.close());
  const bufferSize = 65_536;
  /** Builds a recorder with one client connected and draining (a sink thread), closed at the end. */
  const withReader = async (builder: TcpBuilder): Promise<TcpRecorder> => {
    const r = await builder.build();
    cleanup.push(() => r.close());
    const sink = await Sink.start({ port: (r.address as { port: number }).port, clients: 1, slow: -1, probeMinLength: 1e9 });
    cleanup.unshift(() => sink.close());
    while (r.stats().clients !== 1) await tick();
    return r;
  };
  const live = await withReader(new TcpBuilder().listenAddress('127.0.0.1:0').bufferSize(bufferSize));
  const ours = (r: TcpRecorder) => ({
    c: r.counter({ name: 'requests', labels }),
    g: r.gauge({ name: 'queue_depth', labels }),
    h: r.histogram({ name: 'latency', labels }),
    r,
    key: { name: 'requests', labels },
  });
  const o0 = ours(idle);
  const o1 = ours(live);
  // Overload: a small ring (the Rust crate's 1024) with a client, fed far faster than the worker
  // drains it, so that most records are dropped: what a dropped record costs the app.
  const overloaded = await withReader(new TcpBuilder().listenAddress('127.0.0.1:0').bufferSize(1024));
  const oFull = ours(overloaded);
  // The same with the worker's priority lowered (workerNice): the app keeps its core.
  const overloadedNice = await withReader(new TcpBuilder().listenAddress('127.0.0.1:0').bufferSize(1024).workerNice(10));
  const oFullNice = ours(overloadedNice);
  // Ours through the OpenTelemetry API (metrics-exporter-tcp/otel): the same recorders.
  const viaOtel = (r: TcpRecorder) => {
    const m = new TcpMeterProvider(r).getMeter('bench');
    return { c: m.createCounter('requests'), h: m.createHistogram('latency'), attrs: { ...labels } };
  };
  const t0 = viaOtel(idle);
  const t1 = viaOtel(live);
  // The same with replayOnConnect(true): with no client, a record adds to its thread's state.
  const replayIdle = await new TcpBuilder().listenAddress('127.0.0.1:0').replayOnConnect(true).build();
  cleanup.push(() => replayIdle.close());
  const replayLive = await withReader(new TcpBuilder().listenAddress('127.0.0.1:0').bufferSize(bufferSize).replayOnConnect(true));
  const r0 = ours(replayIdle);
  const r1 = ours(replayLive);
  // With the Prometheus endpoint and no TCP client: counters and gauges add to their thread's
  // state (as with replay), a histogram observation goes to the ring for the worker to bucket.
  const endpointIdle = await new TcpBuilder().listenAddress('127.0.0.1:0').bufferSize(bufferSize).prometheus('127.0.0.1:0').build();
  cleanup.push(() => endpointIdle.close());
  const e0 = ours(endpointIdle);
  // Each timed run records a quarter of the ring into an empty ring, so the run measures
  // accepted records, below the fill at which a producer wakes the worker (half); one row
  // records past that mark, to show what waking the worker adds.
  const liveCalls = bufferSize / 4;
  const wakingCalls = bufferSize / 2 + 64;

  // prom-client: its own registry, a labeled counter, its cached child, a histogram.
  const registry = new promClient.Registry();
  const promCounter = new promClient.Counter({ name: 'requests', help: 'h', labelNames: ['service', 'region'], registers: [registry] });
  const promPlain = new promClient.Counter({ name: 'plain', help: 'h', registers: [registry] });
  const promHist = new promClient.Histogram({ name: 'latency', help: 'h', labelNames: ['service', 'region'], registers: [registry] });
  const prom = { c: promCounter, child: promCounter.labels(labels), plain: promPlain, h: promHist.labels(labels), labels };

  // OpenTelemetry SDK with a reader attached (so instruments really aggregate).
  const provider = new MeterProvider({ readers: [new NoopReader()] });
  cleanup.push(() => provider.shutdown());
  const meter = provider.getMeter('bench');
  const otel = { c: meter.createCounter('requests'), h: meter.createHistogram('latency'), attrs: labels };

  // hot-shots: mock mode (formats, keeps the string) and real UDP to a loopback socket.
  const udpSink = createSocket('udp4');
  await new Promise<void>((r) => udpSink.bind(0, '127.0.0.1', () => r()));
  cleanup.push(() => new Promise<void>((r) => udpSink.close(() => r())));
  const statsdMock = new StatsD({ mock: true });
  const statsdUdp = new StatsD({ host: '127.0.0.1', port: udpSink.address().port, errorHandler: () => {} });
  cleanup.push(() => new Promise<void>((r) => statsdUdp.close(() => r())));
  const tags = ['service:api', 'region:eu'];

  const noop = () => {};
  const candidates: Candidate[] = [
    { group: 'floor', name: 'empty function call', target: noop, body: 't()' },
    { group: 'ours, no client', name: 'counter.increment()', target: o0, body: 't.c.increment()', cpu: true },
    { group: 'ours, no client', name: 'gauge.set(v)', target: o0, body: 't.g.set(i)' },
    { group: 'ours, no client', name: 'histogram.record(v)', target: o0, body: 't.h.record(0.25)' },
    { group: 'ours, no client', name: "incrementCounter(key, 1)", target: o0, body: 't.r.incrementCounter(t.key, 1)' },
    { group: 'ours, no client', name: 'global counter() made after install()', target: late, body: 't.c.increment()' },
    { group: 'ours, no client', name: 'global counter() made before install()', target: early, body: 't.c.increment()' },
    { group: 'ours, 1 client', name: 'counter.increment()', target: o1, body: 't.c.increment()', fixedCalls: liveCalls, recorder: live },
    { group: 'ours, 1 client', name: 'gauge.set(v)', target: o1, body: 't.g.set(i)', fixedCalls: liveCalls, recorder: live },
    { group: 'ours, 1 client', name: 'histogram.record(v)', target: o1, body: 't.h.record(0.25)', fixedCalls: liveCalls, recorder: live },
    { group: 'ours, 1 client', name: "incrementCounter(key, 1)", target: o1, body: 't.r.incrementCounter(t.key, 1)', fixedCalls: liveCalls, recorder: live },
    // The same calls in bursts a quarter as long: the two split a burst's time into a cost per
    // record and a cost to start a burst (see `burstSplit`).
    { group: 'ours, 1 client, a short burst', name: 'counter.increment()', target: o1, body: 't.c.increment()', fixedCalls: liveCalls / 4, recorder: live },
    { group: 'ours, 1 client, a burst past half the ring', name: 'counter.increment() (wakes the worker)', target: o1, body: 't.c.increment()', fixedCalls: wakingCalls, recorder: live },
    // One long job per run: a steady overload, not the ring's first thousand records.
    { group: 'ours, 1 client, ring full', name: 'counter.increment() (most dropped)', target: oFull, body: 't.c.increment()', fixedCalls: 2_000_000, recorder: overloaded, cpu: true },
    { group: 'ours, 1 client, ring full, workerNice(10)', name: 'counter.increment() (most dropped)', target: oFullNice, body: 't.c.increment()', fixedCalls: 2_000_000, recorder: overloadedNice, cpu: true },
    { group: 'ours via OpenTelemetry API, no client', name: 'counter.add(1, attrs) reused attrs', target: t0, body: 't.c.add(1, t.attrs)' },
    { group: 'ours via OpenTelemetry API, 1 client', name: 'counter.add(1, attrs) reused attrs', target: t1, body: 't.c.add(1, t.attrs)', fixedCalls: liveCalls, recorder: live },
    { group: 'ours via OpenTelemetry API, 1 client', name: 'counter.add(1, {…}) new equal attrs', target: t1, body: "t.c.add(1, { service: 'api', region: 'eu' })", fixedCalls: liveCalls, recorder: live },
    { group: 'ours via OpenTelemetry API, 1 client', name: 'histogram.record(v, attrs) reused attrs', target: t1, body: 't.h.record(0.25, t.attrs)', fixedCalls: liveCalls, recorder: live },
    { group: 'ours + replay, no client', name: 'counter.increment()', target: r0, body: 't.c.increment()' },
    { group: 'ours + replay, no client', name: 'gauge.set(v)', target: r0, body: 't.g.set(i)' },
    { group: 'ours + replay, 1 client', name: 'counter.increment()', target: r1, body: 't.c.increment()', fixedCalls: liveCalls, recorder: replayLive },
    { group: 'ours + /metrics endpoint, no client', name: 'counter.increment()', target: e0, body: 't.c.increment()' },
    { group: 'ours + /metrics endpoint, no client', name: 'gauge.set(v)', target: e0, body: 't.g.set(i)' },
    { group: 'ours + /metrics endpoint, no client', name: 'histogram.record(v)', target: e0, body: 't.h.record(0.25)', fixedCalls: liveCalls, recorder: endpointIdle },
    { group: 'prom-client', name: 'inc() (no labels)', target: prom, body: 't.plain.inc()' },
    { group: 'prom-client', name: 'labels(...).inc() cached child', target: prom, body: 't.child.inc()' },
    { group: 'prom-client', name: 'inc(labels)', target: prom, body: 't.c.inc(t.labels)' },
    { group: 'prom-client', name: 'observe(v) labeled', target: prom, body: 't.h.observe(0.25)' },
    { group: 'OpenTelemetry', name: 'counter.add(1)', target: otel, body: 't.c.add(1)' },
    { group: 'OpenTelemetry', name: 'counter.add(1, attributes)', target: otel, body: 't.c.add(1, t.attrs)' },
    { group: 'OpenTelemetry', name: 'histogram.record(v, attributes)', target: otel, body: 't.h.record(0.25, t.attrs)' },
    { group: 'hot-shots', name: 'increment with tags (mock)', target: statsdMock, body: 't.increment("requests", 1, ["service:api", "region:eu"])', between: () => void ((statsdMock as unknown as { mockBuffer: string[] }).mockBuffer.length = 0) },
    { group: 'hot-shots', name: 'increment with tags (UDP)', target: { s: statsdUdp, tags }, body: 't.s.increment("requests", 1, t.tags)', between: () => new Promise((r) => setTimeout(r, 20)) },
  ];

  const loops = candidates.map((c) => loopFor(c.body, `${c.group}: ${c.name}`));
  const calls = candidates.map((c, i) => c.fixedCalls ?? calibrate(loops[i]!, c.target, opts.runMs));
  const samples: number[][] = candidates.map(() => []);
  const drops: number[] = candidates.map(() => 0);
  const made: number[] = candidates.map(() => 0);
  const cpuSamples: number[][] = candidates.map(() => []);
  // A run starts once the worker has taken everything its ring held (see `settled`).
  // Warm-up round (not recorded), then interleaved rounds so that noise hits everyone alike.
  for (let round = -1; round < opts.rounds; round++) {
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      const repeats = c.fixedCalls !== undefined ? 8 : 1; // ours-with-client: many short runs
      for (let k = 0; k < repeats; k++) {
        await c.between?.();
        if (c.recorder !== undefined) await settled(c.recorder);
        const before = c.recorder?.stats().dropped.ringFull ?? 0;
        const cpu0 = c.cpu ? ownCpuNs() : undefined;
        const ns = timeRun(loops[i]!, c.target, calls[i]!);
        const cpu1 = cpu0 !== undefined ? ownCpuNs() : undefined;
        if (round >= 0 && cpu1 !== undefined) cpuSamples[i]!.push((cpu1 - cpu0!) / calls[i]!);
        // The worker counts a ring's drops at its next round: read the figure once it has.
        if (c.recorder !== undefined) await settled(c.recorder);
        if (round >= 0) {
          samples[i]!.push(ns);
          drops[i]! += (c.recorder?.stats().dropped.ringFull ?? 0) - before;
          made[i]! += calls[i]!;
        }
      }
      (globalThis as { gc?: () => void }).gc?.();
      await tick();
    }
  }
  // Allocation of the OpenTelemetry API cases (with the client: the ring fills and drops, which
  // allocates nothing either).
  const otelGc: OtelGcTrace = {
    calls: opts.gcCalls,
    reused: await traceAllocation((n) => {
      for (let i = 0; i < n; i++) t1.c.add(1, t1.attrs);
    }, opts.gcCalls),
    newEqual: await traceAllocation((n) => {
      for (let i = 0; i < n; i++) t1.c.add(1, { service: 'api', region: 'eu' });
    }, opts.gcCalls),
  };
  for (const f of cleanup) await f();

  const results: HotpathResult[] = candidates.map((c, i) => {
    const s = summary(samples[i]!);
    const r: HotpathResult = { name: c.name, group: c.group, minNs: s.min, medianNs: s.median };
    if (c.fixedCalls !== undefined) r.calls = c.fixedCalls;
    if (c.recorder) r.droppedShare = drops[i]! / made[i]!;
    if (cpuSamples[i]!.length > 0) {
      const cpu = summary(cpuSamples[i]!);
      r.cpuMinNs = cpu.min;
      r.cpuMedianNs = cpu.median;
    }
    return r;
  });
  const alone = await overloadAlone(opts.aloneRuns);
  return { results, otelGc, alone, text: formatHotpath(results, otelGc, alone) };
}

function gcLine(trace: AllocationTrace, calls: number): string {
  return `${trace.gcEvents} GC events, heap ${trace.heapGrowthBytes >= 0 ? '+' : ''}${trace.heapGrowthBytes} bytes (${(trace.heapGrowthBytes / calls).toFixed(4)} bytes per call)`;
}

/**
 * A burst's median time as a line through two burst lengths: the cost of each further record
 * (the slope) and the cost to start a burst (where the line meets zero records). A burst starts
 * after the app's thread waited for the worker to empty the ring, and its first record also
 * schedules the turn's publish (a `setImmediate`): a per-record median of one length spreads
 * that over every record.
 */
function burstSplit(long: HotpathResult, short: HotpathResult): { perRecordNs: number; startUs: number } {
  const longNs = long.medianNs * long.calls!;
  const shortNs = short.medianNs * short.calls!;
  const perRecordNs = (longNs - shortNs) / (long.calls! - short.calls!);
  return { perRecordNs, startUs: (shortNs - perRecordNs * short.calls!) / 1000 };
}

/** The overload rows again, in a process holding one exporter besides the early exit's. */
async function overloadAlone(runs: number): Promise<OverloadResult> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./overload-app.js', import.meta.url)), String(runs), '2000000'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  // A run takes well under a second; a child stuck past this is killed, and the section fails.
  const timer = setTimeout(() => child.kill(), 120_000);
  const lines: string[] = [];
  for await (const line of createInterface({ input: child.stdout! })) lines.push(line);
  const code = await exited;
  clearTimeout(timer);
  if (code !== 0 || lines.length !== 1) throw new Error(`overload-app exited with ${code} after ${lines.length} lines`);
  return JSON.parse(lines[0]!) as OverloadResult;
}

function formatHotpath(results: HotpathResult[], otelGc: OtelGcTrace, alone: OverloadResult): string {
  const floor = results.find((r) => r.group === 'floor')!;
  const rows: (string | number)[][] = [['call', 'min ns', 'median ns', '× floor']];
  for (const r of results) {
    rows.push([`${r.group}: ${r.name}`, r.minNs.toFixed(2), r.medianNs.toFixed(2), fmt(r.medianNs / floor.medianNs)]);
  }
  const find = (group: string, name: string) => results.find((r) => r.group === group && r.name === name)!;
  const ourInc = find('ours, 1 client', 'counter.increment()');
  const ourIdle = find('ours, no client', 'counter.increment()');
  const overload = find('ours, 1 client, ring full', 'counter.increment() (most dropped)');
  const overloadNice = find('ours, 1 client, ring full, workerNice(10)', 'counter.increment() (most dropped)');
  const ourKey = find('ours, 1 client', 'incrementCounter(key, 1)');
  const waking = find('ours, 1 client, a burst past half the ring', 'counter.increment() (wakes the worker)');
  const split = burstSplit(ourInc, find('ours, 1 client, a short burst', 'counter.increment()'));
  const ratio = (peer: HotpathResult) => `${fmt(peer.medianNs / ourInc.medianNs)}×`;
  const otelReused = find('ours via OpenTelemetry API, 1 client', 'counter.add(1, attrs) reused attrs');
  const otelNew = find('ours via OpenTelemetry API, 1 client', 'counter.add(1, {…}) new equal attrs');
  const otelSdk = find('OpenTelemetry', 'counter.add(1, attributes)');
  const lines = [
    table(rows),
    '',
    `labeled counter.increment() with a client: ${ourInc.medianNs.toFixed(2)} ns median (target ≤ 5 ns); ring drops while measured: ${((ourInc.droppedShare ?? 0) * 100).toFixed(2)} %`,
    `the same, split by burst length (${ourInc.calls} and ${ourInc.calls! / 4} records a burst): ${split.perRecordNs.toFixed(2)} ns each record (target ≤ 5 ns), plus ${split.startUs.toFixed(1)} µs to start a burst`,
    `a burst past half the ring, which wakes the worker: ${waking.medianNs.toFixed(2)} ns median a record, ${fmt(waking.medianNs / ourInc.medianNs, 2)}× a burst below it`,
    `with no client: ${ourIdle.medianNs.toFixed(2)} ns median (target ≤ 2 ns)`,
    `overload (bufferSize 1024, a client, ${((overload.droppedShare ?? 0) * 100).toFixed(1)} % of the records dropped): ${overload.medianNs.toFixed(2)} ns median, ${fmt(overload.medianNs / ourIdle.medianNs, 2)}× the no-client early exit (target ≤ 2×)` +
      (overload.cpuMedianNs !== undefined && ourIdle.cpuMedianNs !== undefined
        ? `; the app thread's own CPU: ${overload.cpuMedianNs.toFixed(2)} ns median a call against ${ourIdle.cpuMedianNs.toFixed(2)} for the early exit, ${fmt(overload.cpuMedianNs / ourIdle.cpuMedianNs, 2)}× (the rest of the wall time, the worker and the reader had its core)`
        : ''),
    `the same overload in a process of its own, one exporter besides the early exit's (${(alone.droppedShare * 100).toFixed(1)} % dropped): ${alone.overload.wall.median.toFixed(2)} ns median, ${fmt(alone.overload.wall.median / alone.earlyExit.wall.median, 2)}× the early exit measured beside it` +
      (alone.overload.cpu !== undefined && alone.earlyExit.cpu !== undefined
        ? `; the app thread's own CPU: ${alone.overload.cpu.median.toFixed(2)} ns against ${alone.earlyExit.cpu.median.toFixed(2)}, ${fmt(alone.overload.cpu.median / alone.earlyExit.cpu.median, 2)}×`
        : ''),
    `overload with workerNice(10) (${((overloadNice.droppedShare ?? 0) * 100).toFixed(1)} % dropped): ${overloadNice.medianNs.toFixed(2)} ns median, ${fmt(overloadNice.medianNs / ourIdle.medianNs, 2)}× the early exit` +
      (overloadNice.cpuMedianNs !== undefined ? `; the app thread's own CPU ${overloadNice.cpuMedianNs.toFixed(2)} ns` : ''),
    `replayOnConnect(true): ${find('ours + replay, no client', 'counter.increment()').medianNs.toFixed(2)} ns with no client (target ≤ ${(ourIdle.medianNs + 1).toFixed(2)}), ${find('ours + replay, 1 client', 'counter.increment()').medianNs.toFixed(2)} ns with a client (target ≤ ${ourInc.medianNs.toFixed(2)})`,
    `key-based incrementCounter(key, 1) / handle: ${(ourKey.medianNs / ourInc.medianNs).toFixed(2)}× (target ≤ 4×)`,
    `prom-client cached labeled child is ${ratio(find('prom-client', 'labels(...).inc() cached child'))} slower (target ≥ 30×)`,
    `prom-client inc(labels) is ${ratio(find('prom-client', 'inc(labels)'))} slower`,
    `OpenTelemetry counter.add with attributes is ${ratio(find('OpenTelemetry', 'counter.add(1, attributes)'))} slower (target ≥ 100×)`,
    `through the OpenTelemetry API (metrics-exporter-tcp/otel), with a client: counter.add(1, attrs) ${otelReused.medianNs.toFixed(2)} ns median with a reused attributes object (target ≤ 30 ns; ${fmt(otelReused.medianNs / ourInc.medianNs, 2)}× our handle), ${otelNew.medianNs.toFixed(2)} ns with a new object of equal content (target ≤ 150 ns; ${fmt(otelNew.medianNs / ourInc.medianNs, 2)}× our handle); the OpenTelemetry SDK's counter.add(1, attributes) is ${fmt(otelSdk.medianNs / otelReused.medianNs)}× the first and ${fmt(otelSdk.medianNs / otelNew.medianNs)}× the second`,
    `allocation, ${otelGc.calls.toLocaleString('en')} calls of counter.add(1, attrs) with a client: reused object ${gcLine(otelGc.reused, otelGc.calls)}; new equal object ${gcLine(otelGc.newEqual, otelGc.calls)}`,
    `hot-shots increment over UDP is ${ratio(find('hot-shots', 'increment with tags (UDP)'))} slower`,
  ];
  return lines.join('\n');
}

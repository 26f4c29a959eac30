// End to end: a producer on the main thread, the exporter's worker, and real TCP clients in a
// sink thread. Measures what clients receive, what was dropped and why, latency from record
// to receipt, the exporter worker's CPU and the process RSS.
import { readdirSync, readFileSync } from 'node:fs';
import { TcpBuilder, type TcpRecorder } from '../src/index.js';
import { percentile, sleep, tick } from './measure.js';
import { Sink, type SinkReport } from './sink.js';

/** `flood`: as fast as the producer can; a number: that many records per second. */
export type Load = 'flood' | number;

export interface E2EOptions {
  readonly bufferSize: number;
  readonly load: Load;
  readonly seconds: number;
  readonly clients: number;
  /** Make the last client a slow reader (needs clients > 1). */
  readonly slowClient: boolean;
  /** Extra records written back to back every 100 ms, on top of the rate. */
  readonly burst?: number;
  /** Serve the stream over TLS with this key and certificate, which `ca` signed (the clients trust it). */
  readonly tls?: { readonly key: string; readonly cert: string; readonly ca: string };
}

export interface E2EResult {
  tls: boolean;
  bufferSize: number;
  load: Load;
  burst: number;
  clients: number;
  made: number;
  madePerSec: number;
  /** Frames received per client (the slow one last). */
  received: number[];
  /** Received per second by the first client, from start to the last frame. */
  receivedPerSec: number;
  ringFull: number;
  clientQueue: number;
  invalid: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** CPU time of the exporter's worker thread / wall time, in %. */
  workerCpuPct: number;
  /** CPU time of the producing (main) thread / wall time, in %. */
  producerCpuPct: number;
  rssMiB: number;
  /** The largest ring peak any client was told in-band (the exporter's fill levels). */
  ringPeak: number;
  /** The largest client-queue peak any client was told. */
  queuePeak: number;
}

/** The probe key is long so that its frames are longer than any other in the mix. */
const PROBE_NAME = `bench_latency_probe_${'x'.repeat(120)}`;
const PROBE_MIN_LENGTH = 150;
const PROBE_EVERY = 512;

function threadIds(): Set<string> {
  return new Set(readdirSync('/proc/self/task'));
}

/** utime + stime of a thread, in ms. */
function threadCpuMs(tid: string): number {
  try {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

const sumCpu = (tids: Iterable<string>) => [...tids].reduce((s, t) => s + threadCpuMs(t), 0);

/** One record of the mix: labeled counter, gauge and histogram, and now and then a probe. */
function makeMix(r: TcpRecorder) {
  const labels = { service: 'api', region: 'eu' };
  const c = r.counter({ name: 'requests', labels });
  const g = r.gauge({ name: 'queue_depth', labels });
  const h = r.histogram({ name: 'latency', labels });
  const probe = r.gauge(PROBE_NAME);
  const origin = performance.timeOrigin;
  return (i: number): void => {
    if (i % PROBE_EVERY === 0) probe.set(origin + performance.now());
    else if (i % 3 === 0) c.increment();
    else if (i % 3 === 1) g.set(i);
    else h.record(0.001);
  };
}

export async function runE2E(o: E2EOptions): Promise<E2EResult> {
  const before = threadIds();
  const builder = new TcpBuilder().listenAddress('127.0.0.1:0').bufferSize(o.bufferSize);
  if (o.tls !== undefined) builder.tls({ key: o.tls.key, cert: o.tls.cert });
  const recorder = await builder.build();
  const workerTids = [...threadIds()].filter((t) => !before.has(t));
  const sink = await Sink.start({
    port: (recorder.address as { port: number }).port,
    clients: o.clients,
    slow: o.slowClient && o.clients > 1 ? o.clients - 1 : -1,
    probeMinLength: PROBE_MIN_LENGTH,
    tlsCa: o.tls?.ca,
  });
  try {
    while (recorder.stats().clients !== o.clients) await tick();
    const record = makeMix(recorder);
    await sink.report(); // reset

    const cpu0 = sumCpu(workerTids);
    const main0 = threadCpuMs(String(process.pid));
    let rss = process.memoryUsage().rss;
    const rssTimer = setInterval(() => (rss = Math.max(rss, process.memoryUsage().rss)), 50);
    const t0 = performance.now();
    const end = t0 + o.seconds * 1000;
    let made = 0;
    let nextBurst = t0;
    if (o.load === 'flood') {
      while (performance.now() < end) {
        for (let k = 0; k < 4096; k++) record(made++);
        await tick();
      }
    } else {
      // Paced: records fall due continuously; when caught up the producer sleeps ~50 µs
      // (Atomics.wait), so it does not spin on a core the exporter needs.
      const perMs = o.load / 1000;
      const nap = new Int32Array(new SharedArrayBuffer(4));
      let extra = 0;
      for (let now = t0; now < end; now = performance.now()) {
        const due = Math.floor((now - t0) * perMs) + extra;
        while (made < due) record(made++);
        if (o.burst && now >= nextBurst) {
          for (let k = 0; k < o.burst; k++) record(made++);
          extra += o.burst;
          nextBurst += 100;
        }
        await tick(); // lets the microtask publish the last records of this slice
        Atomics.wait(nap, 0, 0, 0.05);
      }
    }
    const producedMs = performance.now() - t0;

    // Delivery is done when the first client's count stops moving.
    let report: SinkReport = await sink.report();
    const latencies = [...report.latencies];
    let last = report.frames[0]!;
    let lastChange = performance.now();
    for (;;) {
      await sleep(25);
      report = await sink.report();
      latencies.push(...report.latencies);
      if (report.frames[0]! !== last) {
        last = report.frames[0]!;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > 150) break;
    }
    clearInterval(rssTimer);
    const wallMs = lastChange - t0;
    const workerCpu = sumCpu(workerTids) - cpu0;
    const mainCpu = threadCpuMs(String(process.pid)) - main0;
    const s = recorder.stats();
    latencies.sort((a, b) => a - b);
    return {
      tls: o.tls !== undefined,
      bufferSize: o.bufferSize,
      load: o.load,
      burst: o.burst ?? 0,
      clients: o.clients,
      made,
      madePerSec: (made / producedMs) * 1000,
      received: report.frames,
      receivedPerSec: (report.frames[0]! / wallMs) * 1000,
      ringFull: s.dropped.ringFull,
      clientQueue: s.dropped.clientQueue,
      invalid: s.dropped.invalid,
      latencyP50Ms: percentile(latencies, 50),
      latencyP99Ms: percentile(latencies, 99),
      workerCpuPct: (workerCpu / wallMs) * 100,
      producerCpuPct: (mainCpu / wallMs) * 100,
      rssMiB: rss / 2 ** 20,
      ringPeak: Math.max(...report.ringPeak),
      queuePeak: Math.max(...report.queuePeak),
    };
  } finally {
    await sink.close();
    await recorder.close();
  }
}

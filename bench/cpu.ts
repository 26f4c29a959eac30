// What the whole exporter costs, per record rate: an app process (bench/cpu-app.ts) records at a
// paced rate with the exporter and, side by side below 1 M/s, without it (the baseline); one client in this process
// reads everything; the app measures the CPU of each of its threads from /proc. The exporter's
// cost behind the hot path is its worker thread plus what the process's other threads (V8's
// GC and compiler threads) spend beyond the baseline's. The app thread is shown beside its
// baseline, but not added: its share is the hot path (see `hotpath`), a few ns per record,
// far below the pacing loop's own noise.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { createInterface } from 'node:readline';
import { DEFAULT_FLUSH_INTERVAL_MS } from '../src/app/builder.js';
import { fmt, percentile, table, type ThreadCpu } from './measure.js';

/** The latency probe: a gauge whose value is the wall-clock time it was recorded at. */
export const PROBE_NAME = 'bench_probe';
/** One record in this many is a probe. */
export const PROBE_EVERY = 1000;
/** …and at least one every this many ms (so that low rates give enough samples). */
export const PROBE_MIN_MS = 10;

/** What bench/cpu-app.ts reports. */
export interface AppResult {
  /** CPU time over the measured interval, in ms, by thread. */
  cpuMs: ThreadCpu;
  measuredMs: number;
  made: number;
  ringFull: number;
  clientQueue: number;
  wakeups: number;
}

export interface CpuRow {
  label: string;
  rate: number;
  client: boolean;
  flushIntervalMs: number;
  /** % of one core over the measured interval. */
  mainPct: number;
  workerPct: number;
  otherPct: number;
  totalPct: number;
  /** The same app without the exporter, at the same rate: its app thread, and its other threads. */
  baselineMainPct: number;
  baselineOtherPct: number;
  /** workerPct + otherPct - baselineOtherPct: the worker and the helper threads it keeps busy. */
  exporterPct: number;
  /** The exporter's CPU per record, in µs. */
  usPerRecord: number;
  made: number;
  received: number;
  ringFull: number;
  clientQueue: number;
  wakeupsPerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

const APP = new URL('./cpu-app.js', import.meta.url).pathname;
const PROBE = Buffer.from(PROBE_NAME);

/** Counts whole frames and measures record → receipt latency on probe frames. */
class Reader {
  frames = 0;
  readonly latencies: number[] = [];
  private rest: Buffer = Buffer.alloc(0);

  take(chunk: Buffer): void {
    const buf = this.rest.length === 0 ? chunk : Buffer.concat([this.rest, chunk]);
    const now = performance.timeOrigin + performance.now();
    let p = 0;
    for (;;) {
      let len = 0;
      let shift = 0;
      let q = p;
      while (q < buf.length && buf[q]! >= 0x80) len += (buf[q++]! & 0x7f) * 2 ** (7 * shift++);
      if (q >= buf.length) break;
      len += buf[q++]! * 2 ** (7 * shift);
      if (q + len > buf.length) break;
      this.frames++;
      if (isProbe(buf, q)) this.latencies.push(now - buf.readDoubleLE(q + len - 8));
      p = q + len;
    }
    this.rest = buf.subarray(p);
  }
}

/** A metric frame (Event.metric, then Metric.name) whose name is the probe's. */
function isProbe(buf: Buffer, at: number): boolean {
  if (buf[at] !== 0x12) return false;
  let p = at + 1;
  while (buf[p]! >= 0x80) p++;
  p++;
  return buf[p] === 0x0a && buf[p + 1] === PROBE.length && buf.subarray(p + 2, p + 2 + PROBE.length).equals(PROBE);
}

/** GC events of the exporter's worker isolate, from `--trace-gc` lines (see `gcTrace`). */
export interface WorkerGc {
  rate: number;
  seconds: number;
  events: number;
  pauseMs: number;
  /** The trace lines, as V8 printed them. */
  lines: string[];
}

/** What bench/cpu-app.ts runs: the exporter (over plain TCP or TLS), a no-op, or one of the floor threads. */
export type Mode = 'ours' | 'tls' | 'none' | 'floor' | 'timer';

/**
 * Runs the app once; with `client`, reads what its exporter sends (over TLS for mode `tls`, with
 * the certificates in `certs`, see test/certs.ts). With `traceGc`, collects V8's GC trace.
 */
export async function runApp(mode: Mode, rate: number, client: boolean, warmS: number, seconds: number, flushMs: number, traceGc = false, certs = '') {
  const flags = traceGc ? ['--trace-gc', '--expose-gc'] : [];
  const child = spawn(process.execPath, [...flags, APP, mode, String(rate), String(warmS), String(seconds), String(flushMs), certs], {
    stdio: ['pipe', 'pipe', traceGc ? 'pipe' : 'inherit'],
  });
  const trace: string[] = [];
  if (traceGc) createInterface({ input: child.stderr! }).on('line', (l) => trace.push(l));
  const lines = createInterface({ input: child.stdout! });
  const next = (): Promise<string> => {
    // V8's GC trace goes to stdout too: keep it, pass on the app's own lines.
    return new Promise((resolve) => {
      const take = (l: string): void => {
        if (l.startsWith('{')) {
          lines.off('line', take);
          resolve(l);
        } else trace.push(l);
      };
      lines.on('line', take);
    });
  };
  const hello = JSON.parse(await next()) as { port: number };
  const reader = new Reader();
  const socket = !client
    ? undefined
    : mode === 'tls'
      ? tlsConnect({ port: hello.port, host: '127.0.0.1', ca: readFileSync(join(certs, 'ca.crt')), servername: 'localhost' })
      : connect(hello.port, '127.0.0.1');
  if (socket !== undefined) {
    await new Promise((r) => socket.once(mode === 'tls' ? 'secureConnect' : 'connect', r));
    socket.on('data', (d: Buffer) => reader.take(d));
    await new Promise((r) => setTimeout(r, 100)); // the worker has seen the client
  }
  const resultLine = next();
  child.stdin!.write('go\n');
  const result = JSON.parse(await resultLine) as AppResult;
  await new Promise((r) => child.once('exit', r));
  socket?.destroy();
  return { result, reader, trace };
}

/**
 * GC events of the worker isolate while the app records `rate` records/s for `seconds`: the
 * isolate is told apart by its address (the app forces one GC on the main isolate first), and
 * only events in the measured window count (V8 stamps them with the isolate's age, which the
 * app's window is given in, from the moment it started the exporter; off by the worker's start-up time).
 */
export async function gcTrace(rate: number, seconds: number, warmS: number): Promise<WorkerGc> {
  const { trace } = await runApp('ours', rate, true, warmS, seconds, DEFAULT_FLUSH_INTERVAL_MS, true);
  const main = /\[\d+:(0x[0-9a-f]+)\].*testing/.exec(trace.join('\n'))?.[1];
  const window = JSON.parse(trace.find((l) => l.startsWith('cpu-app: window '))!.slice('cpu-app: window '.length)) as { from: number; to: number };
  const lines = trace.filter((l) => {
    const m = /^\[\d+:(0x[0-9a-f]+)\]\s+(\d+) ms: /.exec(l);
    return m !== null && m[1] !== main && Number(m[2]) >= window.from && Number(m[2]) <= window.to;
  });
  const pauseMs = lines.reduce((sum, l) => sum + Number(/MB, ([\d.]+) \//.exec(l)?.[1] ?? 0), 0);
  return { rate, seconds, events: lines.length, pauseMs, lines };
}

const pct = (ms: number, of: number) => (ms / of) * 100;

export async function runCpu(quick: boolean, log: (s: string) => void): Promise<{ rows: CpuRow[]; sweep: CpuRow[]; gc: WorkerGc; text: string }> {
  // Before the measured window: 3 s for the sweep; 10 s for the main rows, past V8's memory
  // reducer (a one-time full GC of each isolate about 8 s after its start-up allocations). V8
  // is still compiling at 10 s, on its helper threads (at 10 rounds a second, the worker's round;
  // at 1 M/s, code a GC deoptimised): two rows measure 1 k and 1 M records/s again after a
  // minute, when it has finished.
  const warm = quick ? 0.2 : 3;
  const steady = quick ? 0.2 : 10;
  const settled = 60;
  const seconds = quick ? 0.3 : 5;
  const rates = quick ? [0, 1000] : [0, 1000, 10_000, 100_000, 1_000_000];
  const rows: CpuRow[] = [];
  /** The app recording into a no-op at 1 M/s, by warm-up: measured once, alone. */
  const alone = new Map<number, AppResult>();
  const measure = async (label: string, rate: number, client: boolean, flushMs: number, secs = seconds, mode: Exclude<Mode, 'none'> = 'ours', warmS = steady): Promise<CpuRow> => {
    log(`cpu: ${label} …`);
    // Below 1 M/s the baseline runs beside the app measured, over the same seconds: measured a
    // minute apart, the helper threads' share moved by 0.3 points, the exporter's whole cost at
    // 1 k/s. At 1 M/s it runs alone, before: beside, its recording would take CPU from the app.
    const sideBySide = rate < 1_000_000;
    const beside = sideBySide ? runApp('none', rate, false, warmS, secs, flushMs) : undefined;
    if (!sideBySide && !alone.has(warmS)) alone.set(warmS, (await runApp('none', rate, false, warmS, secs, flushMs)).result);
    const { result: r, reader } = await runApp(mode, rate, client, warmS, secs, flushMs);
    const b = beside !== undefined ? (await beside).result : alone.get(warmS)!;
    const base = { main: pct(b.cpuMs.main, b.measuredMs), other: pct(b.cpuMs.other, b.measuredMs) };
    const total = pct(r.cpuMs.main + r.cpuMs.worker + r.cpuMs.other, r.measuredMs);
    const exporterPct = pct(r.cpuMs.worker + r.cpuMs.other, r.measuredMs) - base.other;
    const lat = [...reader.latencies].sort((a, b) => a - b);
    return {
      label,
      rate,
      client,
      flushIntervalMs: flushMs,
      mainPct: pct(r.cpuMs.main, r.measuredMs),
      workerPct: pct(r.cpuMs.worker, r.measuredMs),
      otherPct: pct(r.cpuMs.other, r.measuredMs),
      totalPct: total,
      baselineMainPct: base.main,
      baselineOtherPct: base.other,
      exporterPct,
      usPerRecord: r.made > 0 && mode === 'ours' ? ((exporterPct / 100) * r.measuredMs * 1000) / r.made : Number.NaN,
      made: r.made,
      received: reader.frames,
      ringFull: r.ringFull,
      clientQueue: r.clientQueue,
      wakeupsPerSec: (r.wakeups / r.measuredMs) * 1000,
      latencyP50Ms: percentile(lat, 50),
      latencyP99Ms: percentile(lat, 99),
    };
  };
  const flush = DEFAULT_FLUSH_INTERVAL_MS;
  rows.push(await measure('no client, app idle', 0, false, flush));
  rows.push(await measure('no client, 1k records/s', 1000, false, flush));
  for (const rate of rates) rows.push(await measure(`1 client, ${fmt(rate, 0)} records/s`, rate, true, flush));
  if (!quick) for (const rate of [1000, 1_000_000]) rows.push(await measure(`1 client, ${fmt(rate, 0)} records/s, after ${settled} s`, rate, true, flush, seconds, 'ours', settled));
  // What this machine charges for the least any batching exporter does at 1 k records/s: a
  // thread that wakes once per flush interval and writes one batch (no exporter; bench/floor-thread.ts).
  rows.push(await measure(`floor: timer + one write per ${flush} ms`, 1000, true, flush, seconds, 'floor'));
  // …and what it charges a thread for waking at all: an empty timer callback, no write.
  rows.push(await measure(`floor: an empty timer every ${flush} ms`, 1000, true, flush, seconds, 'timer'));
  // …and for the bytes of 1 M records/s, in about as many writes as our worker makes there: what
  // sending them costs before any record is read or encoded.
  if (!quick) rows.push(await measure('floor: timer + one write per 20 ms, 1 M records/s of bytes', 1_000_000, true, 20, seconds, 'floor'));
  // The flush interval's trade-off: CPU against latency.
  const sweep: CpuRow[] = [];
  if (!quick) {
    for (const rate of [1000, 100_000]) {
      for (const flushMs of [10, 20, 50, 100, 200]) {
        sweep.push(await measure(`flushIntervalMs ${flushMs}, ${fmt(rate, 0)}/s`, rate, true, flushMs, 3, 'ours', warm));
        if (rate === 1000) sweep.push(await measure(`  floor: timer + write per ${flushMs} ms`, rate, true, flushMs, 3, 'floor', warm));
      }
    }
  }
  const head = ['', 'worker %', 'other threads %', 'baseline other %', 'exporter %', 'app thread %', 'baseline app %', 'µs/record', 'wake-ups/s', 'p50 ms', 'p99 ms', 'lost'];
  const line = (r: CpuRow) => [
    r.label,
    r.workerPct.toFixed(2),
    r.otherPct.toFixed(2),
    r.baselineOtherPct.toFixed(2),
    r.exporterPct.toFixed(2),
    r.mainPct.toFixed(2),
    r.baselineMainPct.toFixed(2),
    Number.isFinite(r.usPerRecord) ? r.usPerRecord.toFixed(3) : '-',
    r.wakeupsPerSec.toFixed(1),
    Number.isFinite(r.latencyP50Ms) ? r.latencyP50Ms.toFixed(1) : '-',
    Number.isFinite(r.latencyP99Ms) ? r.latencyP99Ms.toFixed(1) : '-',
    r.ringFull + r.clientQueue,
  ];
  let text = table([head, ...rows.map(line)]);
  if (sweep.length > 0) text += `\n\n${table([head, ...sweep.map(line)])}`;
  log('cpu: GC trace of the worker at 10k records/s …');
  const gc = await gcTrace(10_000, quick ? 1 : 10, steady);
  text += `\n\nThe worker isolate at 10k records/s for ${gc.seconds} s (one client): ${gc.events} GC events, ${gc.pauseMs.toFixed(1)} ms in all.`;
  if (gc.lines.length > 0) text += `\n${gc.lines.join('\n')}`;
  return { rows, sweep, gc, text };
}


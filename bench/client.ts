// Client: decode + aggregate, events/s on one thread, into the observer's model. The old path
// (protobuf-es fromBinary and an event object per frame) beside the new one (MetricReader, series
// updated in place), in interleaved rounds over the same bytes: real frames from the exporter's
// own encoder, cut into 64 KiB chunks as a socket delivers them. Then GC traces, each in a
// thread of its own: there the path runs alone, as in a tool (in one isolate shared with the
// other paths, call sites that see several histogram classes stop being inlined).
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { normalizeKey } from '../src/app/key.js';
import { FrameDecoder, MetricReader, SeriesModel, toClientEvent, type ClientEvent, type HistogramState } from 'metrics-exporter-tcp/client';
import { FrameEncoder, GaugeOp } from '../src/worker/encoder.js';
import { KeyTable } from '../src/worker/keys.js';
import { fmt, summary, table } from './measure.js';

export interface ClientBenchRow {
  name: string;
  /** Events per second over the rounds. */
  median: number;
  min: number;
  max: number;
}

export interface ClientGcTrace {
  path: string;
  frames: number;
  gcEvents: number;
  heapGrowthBytes: number;
  bytesPerFrame: number;
}

export interface ClientBenchResult {
  frames: number;
  bytesPerFrame: number;
  rows: ClientBenchRow[];
  gc: ClientGcTrace[];
}

/** What the bench uses of the observer's model. */
interface ObserverModelLike {
  apply(ev: ClientEvent): void;
  drain(reader: MetricReader): void;
}
// The observer package's own build of its model (`npm run build` builds it; the package emits
// no declarations, hence the shape above). Importing its source instead would compile a copy
// that `tsc -b` does not see change.
const observerModel = 'metrics-exporter-tcp-observer/dist/src/model.js';
const { ObserverModel } = (await import(observerModel)) as { ObserverModel: new () => ObserverModelLike };

const CHUNK = 64 * 1024;
/** Frames per encoder batch: one timestamp each, as the worker writes them. */
const BATCH = 500;

/**
 * `n` frames of the e2e mix over 30 series: a counter, a gauge and a histogram, each with
 * labels service and route (10 routes), in batches with their own timestamp.
 */
function stream(n: number): Uint8Array[] {
  const keys = new KeyTable();
  const entries = Array.from({ length: 30 }, (_, i) => {
    const k = normalizeKey({ name: ['requests', 'queue_depth', 'latency'][i % 3]!, labels: { service: 'api', route: `/route/${i % 10}` } });
    return keys.entry(k.canonical, k.name, k.labels);
  });
  const enc = new FrameEncoder('seed');
  const parts: Uint8Array[] = [];
  const t0 = Date.now();
  for (let i = 0; i < n; i++) {
    if (i % BATCH === 0) {
      if (i > 0) parts.push(enc.finish()!.bytes.slice());
      enc.begin(t0 + i / 1000);
    }
    const e = entries[i % 30]!;
    if (i % 3 === 0) enc.counter(e, 1 + (i % 5), 0);
    else if (i % 3 === 1) enc.gauge(e, GaugeOp.Set, i);
    else enc.histogram(e, ((i % 1000) + 1) / 1e5);
  }
  parts.push(enc.finish()!.bytes.slice());
  const all = Buffer.concat(parts);
  const chunks: Uint8Array[] = [];
  for (let pos = 0; pos < all.length; pos += CHUNK) chunks.push(all.subarray(pos, pos + CHUNK));
  return chunks;
}

/** A histogram aggregation that keeps a count and a sum, as a Prometheus summary without quantiles. */
class CountAndSum implements HistogramState {
  count = 0;
  sum = 0;
  record(v: number): void {
    this.count++;
    this.sum += v;
  }
  reset(): void {
    this.count = 0;
    this.sum = 0;
  }
}

/** One way to read the stream into a model; `pass` reads every chunk once (indexed loops: no iterator objects). */
interface Candidate {
  readonly name: string;
  readonly pass: (chunks: Uint8Array[]) => void;
}

function candidates(): Candidate[] {
  const oldModel = new ObserverModel();
  const typedModel = new ObserverModel();
  const typedReader = new MetricReader();
  const newModel = new ObserverModel();
  const newReader = new MetricReader();
  const bareReader = new MetricReader();
  const seriesReader = new MetricReader();
  const seriesFeed = new SeriesModel({ histogram: () => new CountAndSum() }).feed();
  const oldDecoder = new FrameDecoder();
  return [
    {
      name: 'old: fromBinary + an event per frame → ObserverModel.apply',
      pass(chunks) {
        for (let i = 0; i < chunks.length; i++) for (const f of oldDecoder.push(chunks[i]!)) oldModel.apply(toClientEvent(f, 'seed'));
      },
    },
    {
      name: 'new, typed events: MetricReader.event() → ObserverModel.apply',
      pass(chunks) {
        for (let i = 0; i < chunks.length; i++) {
          typedReader.push(chunks[i]!);
          while (typedReader.next() !== undefined) typedModel.apply(typedReader.event());
        }
      },
    },
    {
      name: 'new: MetricReader → ObserverModel.drain (in place)',
      pass(chunks) {
        for (let i = 0; i < chunks.length; i++) {
          newReader.push(chunks[i]!);
          newModel.drain(newReader);
        }
      },
    },
    {
      name: 'new: MetricReader → SeriesModel feed (count+sum histograms)',
      pass(chunks) {
        for (let i = 0; i < chunks.length; i++) {
          seriesReader.push(chunks[i]!);
          seriesFeed.drain(seriesReader);
        }
      },
    },
    {
      name: 'new, decode only: MetricReader.next()',
      pass(chunks) {
        for (let i = 0; i < chunks.length; i++) {
          bareReader.push(chunks[i]!);
          while (bareReader.next() !== undefined);
        }
      },
    },
  ];
}

/** Passes over `chunks` (of `frames` frames) for at least `ms`; events per second. */
function rate(c: Candidate, chunks: Uint8Array[], frames: number, ms: number): number {
  let passes = 0;
  const t0 = performance.now();
  let elapsed = 0;
  do {
    c.pass(chunks);
    passes++;
    elapsed = performance.now() - t0;
  } while (elapsed < ms);
  return (passes * frames) / (elapsed / 1000);
}

/** GC events and heap growth while `c` reads `passes` passes over `chunks`, after a warm-up. */
async function gcTrace(c: Candidate, chunks: Uint8Array[], frames: number, passes: number): Promise<ClientGcTrace> {
  c.pass(chunks);
  (globalThis as { gc?: () => void }).gc?.();
  let gcEvents = 0;
  const obs = new PerformanceObserver((list) => (gcEvents += list.getEntries().length));
  obs.observe({ entryTypes: ['gc'] });
  const heap0 = getHeapStatistics().used_heap_size;
  // No awaits inside: a GC, if any happened, is reported once we yield below.
  for (let i = 0; i < passes; i++) c.pass(chunks);
  const heap1 = getHeapStatistics().used_heap_size;
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  const n = passes * frames;
  return { path: c.name, frames: n, gcEvents, heapGrowthBytes: heap1 - heap0, bytesPerFrame: (heap1 - heap0) / n };
}

/** The GC trace of candidate `index`, in a thread of its own. */
function gcTraceInThread(index: number, frames: number, passes: number): Promise<ClientGcTrace> {
  const worker = new Worker(new URL(import.meta.url), { workerData: { clientGcTrace: { index, frames, passes } } });
  return new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

if (!isMainThread && workerData?.clientGcTrace !== undefined) {
  const { index, frames, passes } = workerData.clientGcTrace as { index: number; frames: number; passes: number };
  parentPort!.postMessage(await gcTrace(candidates()[index]!, stream(frames), frames, passes));
}

export async function runClientBench(quick: boolean): Promise<{ result: ClientBenchResult; text: string }> {
  const frames = quick ? 6000 : 60_000;
  const chunks = stream(frames);
  const bytes = chunks.reduce((s, c) => s + c.length, 0);
  const cs = candidates();
  const rounds = quick ? 2 : 7;
  const runMs = quick ? 20 : 300;
  for (const c of cs) rate(c, chunks, frames, runMs); // warm-up round
  const rates = cs.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) cs.forEach((c, i) => rates[i]!.push(rate(c, chunks, frames, runMs)));
  const rows = cs.map((c, i) => {
    const { min, median } = summary(rates[i]!);
    return { name: c.name, median, min, max: Math.max(...rates[i]!) };
  });
  const old = rows[0]!.median;
  const gc = [
    await gcTraceInThread(3, frames, quick ? 10 : 170),
    await gcTraceInThread(2, frames, quick ? 10 : 170),
    await gcTraceInThread(0, frames, quick ? 1 : 5),
  ];
  const text =
    table([
      ['path (60 000 frames, 30 series, 64 KiB chunks)', 'events/s median', 'min', 'max', '× old'],
      ...rows.map((r) => [r.name, fmt(r.median), fmt(r.min), fmt(r.max), (r.median / old).toFixed(1)]),
    ]) +
    '\n\n' +
    table([
      ['GC trace', 'frames', 'GC events', 'heap growth bytes', 'bytes/frame'],
      ...gc.map((g) => [g.path, g.frames, g.gcEvents, g.heapGrowthBytes, g.bytesPerFrame.toFixed(4)]),
    ]);
  return { result: { frames, bytesPerFrame: bytes / frames, rows, gc }, text };
}

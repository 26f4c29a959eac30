// Relay: events/s decoded and aggregated from 1, 4, 16 exporters, and memory per series.
// The exporters are stand-ins in a worker thread that replay a buffer of real frames (encoded
// by the exporter's own encoder) as fast as TCP takes them, so the relay is what is measured.
import { createServer, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { getHeapStatistics } from 'node:v8';
import { normalizeKey } from '../src/app/key.js';
import { DEFAULT_BUCKETS, startRelay } from 'metrics-exporter-tcp-relay';
import { FrameEncoder, GaugeOp } from '../src/worker/encoder.js';
import { KeyTable } from '../src/worker/keys.js';
import { sleep } from './measure.js';

export interface RelayBenchResult {
  exporters: number;
  eventsPerSec: number;
}

/** 3 000 frames: a labeled counter / gauge / histogram mix over 30 series. */
function frames(): Buffer {
  const table = new KeyTable();
  const enc = new FrameEncoder('seed');
  enc.begin();
  for (let i = 0; i < 3000; i++) {
    const k = normalizeKey({ name: ['requests', 'queue_depth', 'latency'][i % 3]!, labels: { route: `/r${i % 10}`, service: 'api' } });
    const e = table.entry(k.canonical, k.name, k.labels);
    if (i % 3 === 0) enc.counter(e, 1, 0);
    else if (i % 3 === 1) enc.gauge(e, GaugeOp.Set, i);
    else enc.histogram(e, (i % 100) / 1000);
  }
  return Buffer.from(enc.finish()!.bytes);
}

// The stand-in exporters: N listeners writing the buffer in a loop while the socket takes it.
if (!isMainThread && workerData?.relayBenchExporters !== undefined) {
  const buf = frames();
  const ports: number[] = [];
  const sockets: Socket[] = [];
  for (let i = 0; i < (workerData.relayBenchExporters as number); i++) {
    const server = createServer((s) => {
      sockets.push(s);
      s.on('error', () => {});
      const pump = () => {
        while (s.write(buf));
      };
      s.on('drain', pump);
      pump();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    ports.push((server.address() as { port: number }).port);
  }
  parentPort!.postMessage(ports);
  parentPort!.once('message', () => process.exit(0));
}

export async function runRelayBench(exporterCounts: number[], seconds: number): Promise<{ results: RelayBenchResult[]; bytesPerSeries: number }> {
  const results: RelayBenchResult[] = [];
  for (const n of exporterCounts) {
    const worker = new Worker(new URL(import.meta.url), { workerData: { relayBenchExporters: n } });
    const ports = await new Promise<number[]>((r) => worker.once('message', r));
    const relay = await startRelay({
      connect: ports.map((p) => `127.0.0.1:${p}`),
      protocol: 'seed',
      prometheus: '127.0.0.1:0',
      otlpIntervalMs: 10_000,
      buckets: DEFAULT_BUCKETS,
      maxSeries: 100_000,
      log: new PassThrough().resume(),
    });
    await sleep(300); // connected and warmed
    const e0 = relay.store.events;
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const eventsPerSec = ((relay.store.events - e0) / (performance.now() - t0)) * 1000;
    worker.postMessage('stop');
    await relay.close();
    await new Promise((r) => worker.once('exit', r));
    results.push({ exporters: n, eventsPerSec });
  }
  // Memory per series: 100 000 distinct series in a store.
  (globalThis as { gc?: () => void }).gc?.();
  const before = getHeapStatistics().used_heap_size;
  const store = createStore(DEFAULT_BUCKETS, 1_000_000, () => {});
  const count = 100_000;
  for (let i = 0; i < count; i++) {
    store.apply({ kind: 'metric', name: 'requests', labels: { route: `/r${i}`, service: 'api' }, op: { type: 'counterIncrement', value: 1n } }, '127.0.0.1:5000');
  }
  (globalThis as { gc?: () => void }).gc?.();
  const bytesPerSeries = (getHeapStatistics().used_heap_size - before) / store.series.size; // (keeps `store` alive)
  return { results, bytesPerSeries };
}

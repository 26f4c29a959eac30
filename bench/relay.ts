// Relay: events/s decoded and aggregated from 2 stand-in exporters, with 1 and 2 reading threads,
// the fast decoder beside the reference one (protobuf-es fromBinary + an event per frame), in
// interleaved rounds; and heap per series. The stand-ins run in a worker thread and replay a
// buffer of real frames (encoded by the exporter's own encoder) as fast as TCP takes them, so
// the relay is what is measured.
import { createServer, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { getHeapStatistics } from 'node:v8';
import { normalizeKey } from '../src/app/key.js';
import { DEFAULT_BUCKETS, startRelay, type Relay } from 'metrics-exporter-tcp-relay';
import { FrameEncoder, GaugeOp } from '../src/worker/encoder.js';
import { KeyTable } from '../src/worker/keys.js';
import { sleep, summary } from './measure.js';

/** One candidate: decoder × threads, over several rounds. */
export interface RelayBenchResult {
  decoder: 'fast' | 'events';
  threads: number;
  /** Threads the relay actually used (it never uses more than there are exporters). */
  threadsUsed: number;
  /** Events/s of each round. */
  rounds: number[];
  min: number;
  median: number;
}

const EXPORTERS = 2;

/** `count` frames: a labeled counter / gauge / histogram mix over `keys` keys. */
function frames(count: number, keys: number): Buffer {
  const table = new KeyTable();
  const enc = new FrameEncoder('seed');
  enc.begin();
  for (let i = 0; i < count; i++) {
    const k = normalizeKey({ name: ['requests', 'queue_depth', 'latency'][i % 3]!, labels: { route: `/r${i % keys}`, service: 'api' } });
    const e = table.entry(k.canonical, k.name, k.labels);
    if (i % 3 === 0) enc.counter(e, 1, 0);
    else if (i % 3 === 1) enc.gauge(e, GaugeOp.Set, i);
    else enc.histogram(e, (i % 100) / 1000);
  }
  return Buffer.from(enc.finish()!.bytes);
}

// The stand-in exporters: listeners writing their buffer in a loop while the socket takes it
// (`once`: write it once, for the memory figure).
if (!isMainThread && workerData?.relayBench !== undefined) {
  const { exporters, count, keys, once } = workerData.relayBench as { exporters: number; count: number; keys: number; once: boolean };
  const buf = frames(count, keys);
  const ports: number[] = [];
  const sockets: Socket[] = [];
  for (let i = 0; i < exporters; i++) {
    const server = createServer((s) => {
      sockets.push(s);
      s.on('error', () => {});
      if (once) {
        s.write(buf);
        return;
      }
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

async function standIns(exporters: number, count: number, keys: number, once: boolean): Promise<{ addresses: string[]; stop(): Promise<void> }> {
  const worker = new Worker(new URL(import.meta.url), { workerData: { relayBench: { exporters, count, keys, once } } });
  const ports = await new Promise<number[]>((r) => worker.once('message', r));
  return {
    addresses: ports.map((p) => `127.0.0.1:${p}`),
    async stop() {
      worker.postMessage('stop');
      await new Promise((r) => worker.once('exit', r));
    },
  };
}

const relayOf = (connect: string[], decoder: 'fast' | 'events', threads: number): Promise<Relay> =>
  startRelay({
    connect,
    protocol: 'seed',
    prometheus: '127.0.0.1:0',
    otlpIntervalMs: 10_000,
    buckets: DEFAULT_BUCKETS,
    maxSeries: 1_000_000,
    log: new PassThrough().resume(),
    decoder,
    threads,
  });

const eventsRead = async (relay: Relay) => (await relay.snapshot()).exporters.reduce((n, e) => n + e.events, 0);

/** Events/s of one relay over `seconds`, after a warm-up. */
async function measure(decoder: 'fast' | 'events', threads: number, seconds: number): Promise<{ rate: number; threadsUsed: number }> {
  const ex = await standIns(EXPORTERS, 3000, 10, false);
  const relay = await relayOf(ex.addresses, decoder, threads);
  await sleep(500); // connected and warmed
  const e0 = await eventsRead(relay);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const rate = ((await eventsRead(relay)) - e0) / ((performance.now() - t0) / 1000);
  const threadsUsed = relay.threads;
  await ex.stop();
  await relay.close();
  return { rate, threadsUsed };
}

/** Heap of the relay's thread per series: one exporter sends `count` distinct series once (a counter / gauge / histogram mix). */
async function bytesPerSeries(count: number): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const ex = await standIns(1, count, count, true);
  gc?.();
  const before = getHeapStatistics().used_heap_size;
  const relay = await relayOf(ex.addresses, 'fast', 1);
  const series = async () => (await relay.snapshot()).exporters.reduce((n, e) => n + e.series.length, 0);
  while ((await series()) < count) await sleep(50);
  gc?.();
  const bytes = (getHeapStatistics().used_heap_size - before) / count;
  await ex.stop();
  await relay.close();
  return bytes;
}

export async function runRelayBench(rounds: number, seconds: number): Promise<{ results: RelayBenchResult[]; bytesPerSeries: number }> {
  const candidates = (['fast', 'events'] as const).flatMap((decoder) => [1, 2].map((threads) => ({ decoder, threads, rounds: [] as number[], threadsUsed: 0 })));
  for (let r = 0; r < rounds; r++) {
    for (const c of candidates) {
      const m = await measure(c.decoder, c.threads, seconds);
      c.rounds.push(m.rate);
      c.threadsUsed = m.threadsUsed;
    }
  }
  const results = candidates.map((c) => ({ ...c, ...summary(c.rounds) }));
  return { results, bytesPerSeries: await bytesPerSeries(100_000) };
}

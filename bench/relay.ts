// Relay: events/s decoded and aggregated from 2 stand-in exporters, with 1 and 2 reading threads,
// the fast decoder beside the reference one (protobuf-es fromBinary + an event per frame), in
// interleaved rounds, and the relay process's CPU per million events; and heap per series. The
// stand-ins run in a child process and replay a buffer of real frames (encoded by the
// exporter's own encoder) as fast as TCP takes them, so this process is only the relay.
import { fork } from 'node:child_process';
import { createServer } from 'node:net';
import { PassThrough } from 'node:stream';
import { getHeapStatistics } from 'node:v8';
import { normalizeKey } from '../src/app/key.js';
import { DEFAULT_BUCKETS, startRelay, type Relay, type RelaySnapshot } from 'metrics-exporter-tcp-relay';
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
  /** CPU seconds of the relay's process (all its threads) per million events, median over rounds. */
  cpuSecondsPerM: number;
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

// The stand-in exporters (this file run as a child process): listeners writing their buffer in a
// loop while the socket takes it (`once`: write it once, for the memory figure).
if (process.argv[2] === 'relay-stand-ins') {
  const { exporters, count, keys, once } = JSON.parse(process.argv[3]!) as { exporters: number; count: number; keys: number; once: boolean };
  const buf = frames(count, keys);
  const ports: number[] = [];
  for (let i = 0; i < exporters; i++) {
    const server = createServer((s) => {
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
  process.send!(ports);
  process.once('disconnect', () => process.exit(0));
}

export async function standIns(exporters: number, count: number, keys: number, once: boolean): Promise<{ addresses: string[]; stop(): Promise<void> }> {
  const child = fork(new URL(import.meta.url).pathname, ['relay-stand-ins', JSON.stringify({ exporters, count, keys, once })], { stdio: 'inherit' });
  const ports = await new Promise<number[]>((r) => child.once('message', (m) => r(m as number[])));
  return {
    addresses: ports.map((p) => `127.0.0.1:${p}`),
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.disconnect();
      await exited;
    },
  };
}

export const relayOf = (connect: string[], decoder: 'fast' | 'events', threads: number): Promise<Relay> =>
  startRelay({
    connect,
    protocol: 'seed',
    prometheus: '127.0.0.1:0',
    otlpIntervalMs: 10_000,
    buckets: DEFAULT_BUCKETS,
    maxSeries: 1_000_000,
    maxSeriesPerExporter: 1_000_000,
    maxBytesPerExporter: 256 * 1024 * 1024,
    log: new PassThrough().resume(),
    decoder,
    threads,
  });

const eventsRead = async (relay: Relay) => (await relay.snapshot()).exporters.reduce((n, e) => n + e.events, 0);

/** Events/s of one relay over `seconds` after a warm-up, and its process's CPU seconds per million events. */
async function measure(decoder: 'fast' | 'events', threads: number, seconds: number): Promise<{ rate: number; cpuSecondsPerM: number; threadsUsed: number }> {
  const ex = await standIns(EXPORTERS, 3000, 10, false);
  const relay = await relayOf(ex.addresses, decoder, threads);
  await sleep(500); // connected and warmed
  const e0 = await eventsRead(relay);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const events = (await eventsRead(relay)) - e0;
  const cpu = process.cpuUsage(cpu0);
  const rate = events / ((performance.now() - t0) / 1000);
  const cpuSecondsPerM = (cpu.user + cpu.system) / 1e6 / (events / 1e6);
  const threadsUsed = relay.threads;
  await ex.stop();
  await relay.close();
  return { rate, cpuSecondsPerM, threadsUsed };
}

/** The relay's internals the in-memory figures drive (its compiled modules; the package exports only startRelay). */
export interface RelayInternals {
  applierFor(decoder: 'fast' | 'events'): (target: unknown, protocol: 'seed') => { push(chunk: Uint8Array, nowMs: number): number };
  RelayStore: new (limits: { buckets: readonly number[]; maxSeriesPerExporter: number; maxBytesPerExporter: number; peakHoldMs: number }, budget: unknown) => {
    of(exporter: string): unknown;
    changes(): { changes: object };
  };
  SeriesBudget: new (max: number, slots: number) => unknown;
  RelayMirror: new (buckets: readonly number[]) => { apply(slot: number, changes: object): void };
  Exposition: new (mirror: unknown, buckets: readonly number[], log: (line: string) => void) => { render(): Iterator<Buffer> };
  snapshotOf(mirror: unknown, bounds: readonly number[]): RelaySnapshot;
}

export async function relayInternals(): Promise<RelayInternals> {
  const at = (file: string) => import(new URL(`../../packages/relay/dist/src/${file}`, import.meta.url).href);
  const files = ['appliers.js', 'store.js', 'budget.js', 'mirror.js', 'exposition.js', 'snapshot.js'];
  return Object.assign({}, ...(await Promise.all(files.map(at)))) as RelayInternals;
}

/** Caps that take anything the bench sends. */
export const BENCH_LIMITS = { buckets: DEFAULT_BUCKETS, maxSeriesPerExporter: 1 << 30, maxBytesPerExporter: 1 << 30, peakHoldMs: 60_000 };

/**
 * A reader thread's store and the main thread's mirror of it (in this thread), holding `count`
 * series of one exporter: a third each counters, gauges, histograms, from real frames.
 */
export async function loadedRelay(count: number): Promise<{ internals: RelayInternals; mirror: unknown }> {
  const internals = await relayInternals();
  const { applierFor, RelayStore, SeriesBudget, RelayMirror } = internals;
  const store = new RelayStore(BENCH_LIMITS, new SeriesBudget(1 << 30, 1));
  applierFor('fast')(store.of('127.0.0.1:5000'), 'seed').push(frames(count, count), Date.now());
  const mirror = new RelayMirror(DEFAULT_BUCKETS);
  const status = { exporter: '127.0.0.1:5000', state: 'connected', events: count, connects: 1, decodeErrors: 0, invalidValues: 0 };
  mirror.apply(0, { ...store.changes().changes, exporters: [{ ...status, refused: { max_series: 0, exporter_series: 0, exporter_bytes: 0, too_large: 0 } }] });
  return { internals, mirror };
}

/**
 * Events/s decoded and aggregated into one relay store on this thread, from the stand-ins'
 * frames held in memory in 64 KiB chunks (what a socket read gives): the relay's own cost per
 * event, without the sockets.
 */
async function inMemory(decoder: 'fast' | 'events', seconds: number): Promise<number> {
  const { applierFor, RelayStore, SeriesBudget } = await relayInternals();
  const buf = frames(3000, 10);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < buf.length; i += 65536) chunks.push(buf.subarray(i, i + 65536));
  const store = new RelayStore(BENCH_LIMITS, new SeriesBudget(1000, 1));
  const applier = applierFor(decoder)(store.of('127.0.0.1:5000'), 'seed');
  const run = (ms: number) => {
    let events = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      for (const c of chunks) events += applier.push(c, Date.now());
      store.changes(); // what the main thread asks for at every scrape
    }
    return events / ((performance.now() - t0) / 1000);
  };
  run(200); // warm-up
  return run(seconds * 1000);
}

/**
 * Heap per series, over both sides of the relay: a reader thread's store and reader (its key
 * table), the main thread's mirror and its /metrics families (after one scrape). Measured here in
 * one thread, after a collection, for `count` series of one exporter.
 */
async function bytesPerSeries(count: number): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const encoded = frames(count, count);
  const { applierFor, RelayStore, SeriesBudget, RelayMirror, Exposition } = await relayInternals();
  gc?.();
  const before = getHeapStatistics().used_heap_size;
  const store = new RelayStore(BENCH_LIMITS, new SeriesBudget(1 << 30, 1));
  const applier = applierFor('fast')(store.of('127.0.0.1:5000'), 'seed');
  applier.push(encoded, Date.now());
  const mirror = new RelayMirror(DEFAULT_BUCKETS);
  mirror.apply(0, { ...store.changes().changes, exporters: [] });
  const exposition = new Exposition(mirror, DEFAULT_BUCKETS, () => {});
  for (const chunks = exposition.render(); !chunks.next().done; );
  const held = [store, applier, mirror, exposition]; // (all held while measured)
  gc?.();
  const bytes = (getHeapStatistics().used_heap_size - before) / count;
  held.length = 0;
  return bytes;
}

export async function runRelayBench(
  rounds: number,
  seconds: number,
): Promise<{ results: RelayBenchResult[]; inMemory: { decoder: 'fast' | 'events'; rounds: number[]; min: number; median: number }[]; bytesPerSeries: number }> {
  const candidates = (['fast', 'events'] as const).flatMap((decoder) => [1, 2].map((threads) => ({ decoder, threads, rounds: [] as number[], cpu: [] as number[], threadsUsed: 0 })));
  for (let r = 0; r < rounds; r++) {
    for (const c of candidates) {
      const m = await measure(c.decoder, c.threads, seconds);
      c.rounds.push(m.rate);
      c.cpu.push(m.cpuSecondsPerM);
      c.threadsUsed = m.threadsUsed;
    }
  }
  const results = candidates.map(({ cpu, ...c }) => ({ ...c, ...summary(c.rounds), cpuSecondsPerM: summary(cpu).median }));
  const memory = (['fast', 'events'] as const).map((decoder) => ({ decoder, rounds: [] as number[] }));
  for (let r = 0; r < rounds + 2; r++) for (const m of memory) m.rounds.push(await inMemory(m.decoder, seconds / 3));
  return { results, inMemory: memory.map((m) => ({ ...m, ...summary(m.rounds) })), bytesPerSeries: await bytesPerSeries(100_000) };
}

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

async function standIns(exporters: number, count: number, keys: number, once: boolean): Promise<{ addresses: string[]; stop(): Promise<void> }> {
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

/** The relay's internals the in-memory figure drives (its compiled modules; the package exports only startRelay). */
interface RelayInternals {
  applierFor(decoder: 'fast' | 'events'): (target: unknown, protocol: 'seed') => { push(chunk: Uint8Array, nowMs: number): number };
  RelayStore: new (buckets: readonly number[], budget: unknown) => { of(exporter: string): unknown };
  SeriesBudget: new (max: number, slots: number) => unknown;
}

async function relayInternals(): Promise<RelayInternals> {
  const at = (file: string) => import(new URL(`../../packages/relay/dist/src/${file}`, import.meta.url).href);
  return { ...(await at('appliers.js')), ...(await at('store.js')), ...(await at('budget.js')) } as RelayInternals;
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
  const applier = applierFor(decoder)(new RelayStore(DEFAULT_BUCKETS, new SeriesBudget(1000, 1)).of('127.0.0.1:5000'), 'seed');
  const run = (ms: number) => {
    let events = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) for (const c of chunks) events += applier.push(c, Date.now());
    return events / ((performance.now() - t0) / 1000);
  };
  run(200); // warm-up
  return run(seconds * 1000);
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

// The app measured by the memory section, in a process of its own: records one labeled counter,
// gauge and histogram at 1 000 records/s for a few seconds, into nothing (`none`, the baseline),
// prom-client's registry (`prom-client`), or our exporter (`ours`; `ours-client` prints its port
// and waits for a client before it starts), then prints its memory as one JSON line.
// A bare worker thread (`worker`, `worker-listening`) shows the floor under ours.
//   node --expose-gc dist/bench/memory-app.js <none|prom-client|worker|worker-listening|ours|ours-client> <seconds>
import { createInterface } from 'node:readline';

export interface MemoryResult {
  /** Resident set size, bytes, after a GC of the app's isolate. */
  rss: number;
  heapUsed: number;
  external: number;
}

const [mode = 'none', secondsArg = '5'] = process.argv.slice(2);
const labels = { route: '/users', status: '200' };
let record = (_i: number): void => {};
let close = async (): Promise<void> => {};
// Each library is imported only by its own mode: what it loads is part of what it costs.
if (mode === 'prom-client') {
  const { default: promClient } = await import('prom-client');
  const registry = new promClient.Registry();
  const c = new promClient.Counter({ name: 'requests', help: 'requests', labelNames: ['route', 'status'], registers: [registry] }).labels(labels);
  const g = new promClient.Gauge({ name: 'queue_depth', help: 'queue depth', labelNames: ['route', 'status'], registers: [registry] }).labels(labels);
  const h = new promClient.Histogram({ name: 'latency', help: 'latency', labelNames: ['route', 'status'], registers: [registry] }).labels(labels);
  record = (i) => (i % 3 === 0 ? c.inc() : i % 3 === 1 ? g.set(i) : h.observe(i / 1000));
} else if (mode === 'worker' || mode === 'worker-listening') {
  // The floor under any exporter that owns a thread: a worker that loads nothing of ours, idle
  // (`worker`), or listening on a loopback TCP port (`worker-listening`), as ours does.
  const { Worker } = await import('node:worker_threads');
  const body =
    mode === 'worker'
      ? "const { parentPort } = require('node:worker_threads'); parentPort.on('message', () => {}); parentPort.postMessage('up');"
      : "const { parentPort } = require('node:worker_threads'); require('node:net').createServer().listen(0, '127.0.0.1', () => parentPort.postMessage('up'));";
  const worker = new Worker(body, { eval: true });
  await new Promise((r) => worker.once('message', r));
  close = async () => void (await worker.terminate());
} else if (mode === 'ours' || mode === 'ours-client') {
  const { TcpBuilder } = await import('../src/index.js');
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  const c = recorder.counter({ name: 'requests', labels });
  const g = recorder.gauge({ name: 'queue_depth', labels });
  const h = recorder.histogram({ name: 'latency', labels });
  record = (i) => (i % 3 === 0 ? c.increment() : i % 3 === 1 ? g.set(i) : h.record(i / 1000));
  close = () => recorder.close();
  if (mode === 'ours-client') {
    console.log(JSON.stringify(recorder.address));
    for await (const _ of createInterface({ input: process.stdin })) break; // the client is connected
    process.stdin.destroy(); // it would keep this process alive
    while (recorder.stats().clients === 0) await new Promise((r) => setTimeout(r, 5));
  }
}
// 1 000 records a second, in jobs of 10 every 10 ms, as a server's requests would make them.
let i = 0;
const timer = setInterval(() => {
  for (let k = 0; k < 10; k++) record(i++);
}, 10);
await new Promise((r) => setTimeout(r, Number(secondsArg) * 1000));
clearInterval(timer);
(globalThis as { gc?: () => void }).gc?.();
await new Promise((r) => setTimeout(r, 200));
const m = process.memoryUsage();
const result: MemoryResult = { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
console.log(JSON.stringify(result));
await close();

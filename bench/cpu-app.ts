// The app measured by the cpu section, in a process of its own: records one labeled counter at
// a paced rate (plus a latency probe now and then) with the exporter (`ours`) or with a no-op
// (`none`, the baseline), and measures the CPU of each of its threads from /proc.
//   node dist/bench/cpu-app.js <ours|tls|none|floor|timer> <records/s> <warm-up s> <measured s> <flushIntervalMs> [certificates folder]
// (`tls`: ours, serving the stream over TLS with server.key and server.crt from the folder)
// Prints `{ "port": …, "workerTid": … }`, waits for a line on stdin (the client is connected),
// then prints the result as one JSON line and exits.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';
import { TcpBuilder, type Counter, type Gauge } from '../src/index.js';
import { Ctl } from '../src/shared/layout.js';
import { PROBE_EVERY, PROBE_MIN_MS, PROBE_NAME, type AppResult } from './cpu.js';
import { cpuByThread } from './measure.js';

/**
 * Bytes of one frame of the app's counter on the wire (seed format, length prefix included),
 * counted from what a client received at 1 k and 1 M records/s: 61–63.
 */
const FLOOR_FRAME_BYTES = 62;
const [mode = 'ours', rateArg = '0', warmArg = '1', secondsArg = '5', flushArg = '50', certs = ''] = process.argv.slice(2);
const rate = Number(rateArg);
// With --trace-gc: a GC here, whose trace line names the main isolate (the others are workers).
const buildAt = performance.now();
(globalThis as { gc?: () => void }).gc?.();
const noop = { increment() {}, set() {} };
let counter: Counter = noop as unknown as Counter;
let probe: Gauge = noop as unknown as Gauge;
const builder = new TcpBuilder().listenAddress('127.0.0.1:0').bufferSize(65_536).flushIntervalMs(Number(flushArg));
if (mode === 'tls') builder.tls({ key: readFileSync(join(certs, 'server.key')), cert: readFileSync(join(certs, 'server.crt')) });
const recorder = mode === 'ours' || mode === 'tls' ? await builder.build() : undefined;
if (recorder !== undefined) {
  counter = recorder.counter({ name: 'requests', labels: { route: '/users', status: '200' } });
  probe = recorder.gauge(PROBE_NAME);
}
// `floor`: no exporter; a thread that wakes once per flush interval and writes a batch of the
// size our worker writes at the app's rate to the client; `timer`: the same thread, waking and
// writing nothing.
const floor =
  mode === 'floor' || mode === 'timer'
    ? await new Promise<{ port: number; tid: number; thread: Worker }>((resolve) => {
        const thread = new Worker(new URL('./floor-thread.js', import.meta.url), { workerData: { flushMs: Number(flushArg), bytes: mode === 'timer' ? 0 : Math.round((FLOOR_FRAME_BYTES * rate * Number(flushArg)) / 1000) } });
        thread.once('message', (m: { port: number; tid: number }) => resolve({ ...m, thread }));
      })
    : undefined;
const workerTid = recorder !== undefined ? Atomics.load(new Int32Array(recorder.connector().ctl), Ctl.WorkerTid) : (floor?.tid ?? 0);
const port = recorder !== undefined ? (recorder.address as { port: number }).port : (floor?.port ?? 0);
console.log(JSON.stringify({ port, workerTid }));
const lines = createInterface({ input: process.stdin });
await new Promise((r) => lines.once('line', r));

// Pacing: every millisecond, the records that have fallen due. At rate 0 the app is idle.
let made = 0;
let lastProbe = 0;
const t0 = performance.now();
const origin = performance.timeOrigin;
const tick =
  rate > 0
    ? setInterval(() => {
        const now = performance.now();
        const due = Math.floor(((now - t0) * rate) / 1000);
        // At low rates one record in PROBE_EVERY would give a handful of latency samples: the
        // first record due after PROBE_MIN_MS without a probe is one too.
        if (made < due && now - lastProbe >= PROBE_MIN_MS) {
          made++;
          lastProbe = now;
          probe.set(origin + now);
        }
        while (made < due) {
          if (++made % PROBE_EVERY === 0) probe.set(origin + performance.now());
          else counter.increment();
        }
      }, 1)
    : undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
await sleep(Number(warmArg) * 1000);
const made0 = made;
const stats0 = recorder?.stats();
const before = cpuByThread(workerTid);
const m0 = performance.now();
process.stderr.write(`cpu-app: window ${JSON.stringify({ from: m0 - buildAt, to: m0 - buildAt + Number(secondsArg) * 1000 })}\n`);
await sleep(Number(secondsArg) * 1000);
const after = cpuByThread(workerTid);
const measuredMs = performance.now() - m0;
const cpuMs = { main: after.main - before.main, worker: after.worker - before.worker, other: after.other - before.other };
clearInterval(tick);
const stats = recorder?.stats();
const result: AppResult = {
  cpuMs,
  measuredMs,
  made: made - made0,
  ringFull: (stats?.dropped.ringFull ?? 0) - (stats0?.dropped.ringFull ?? 0),
  clientQueue: (stats?.dropped.clientQueue ?? 0) - (stats0?.dropped.clientQueue ?? 0),
  wakeups: floor !== undefined ? Math.round(measuredMs / Number(flushArg)) : (stats?.wakeups ?? 0) - (stats0?.wakeups ?? 0),
};
console.log(JSON.stringify(result));
await recorder?.close();
if (floor !== undefined) {
  floor.thread.postMessage('stop');
  await floor.thread.terminate();
}
lines.close();

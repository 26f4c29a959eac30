// A real node:http server, with no metrics and with each library, loaded by autocannon in
// slices, each in a fresh server process, in an order rotated every round (so that the
// machine's drift hits every variant alike): requests per second and CPU per request of the
// server process by thread.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { createInterface, type Interface } from 'node:readline';
import autocannon from 'autocannon';
import { summary, table, type ThreadCpu } from './measure.js';

const SERVER = new URL('./app-server.js', import.meta.url).pathname;

/**
 * Where processes run, with `taskset` (Linux, 2 cores or more): the server on core 0, and
 * autocannon (this process) and the exporter's reader on the others. The server's threads
 * (its worker included) then share one core, as in an app sized to its load, and the
 * scheduler cannot move load between the server and its load generator from slice to slice.
 */
const CORES = cpus().length;
const PINNED = CORES >= 2 && process.platform === 'linux' && spawnSync('taskset', ['-V']).status === 0;
const OTHER_CORES = `1-${CORES - 1}`;

/** Spawns `node args…`, on `cores` when pinning. */
function node(cores: string, args: string[], stdio: 'ignore' | ['pipe', 'pipe', 'inherit']): ChildProcess {
  return PINNED ? spawn('taskset', ['-c', cores, process.execPath, ...args], { stdio }) : spawn(process.execPath, args, { stdio });
}

interface Variant {
  readonly label: string;
  readonly lib: 'none' | 'prom-client' | 'otel' | 'ours' | 'paired';
  /** For ours: whether a client reads the exporter's stream (in its own process). */
  readonly client?: boolean;
}

const VARIANTS: Variant[] = [
  { label: 'no metrics', lib: 'none' },
  { label: 'prom-client', lib: 'prom-client' },
  { label: 'OpenTelemetry SDK', lib: 'otel' },
  { label: 'ours, no client', lib: 'ours', client: false },
  { label: 'ours, 1 client reading', lib: 'ours', client: true },
];

/**
 * Ours with a client reading against no metrics, in one server process that builds and closes
 * the exporter between slices (`paired`): the difference between two processes of one program
 * (several points of req/s here) no longer enters it.
 */
export interface PairedResult {
  /** Per block of four slices (off, on, on, off or on, off, off, on): req/s on over off, in %. */
  blocks: number[];
  /** Median, min and max of `blocks`. */
  median: number;
  min: number;
  max: number;
  /** Our worker's CPU per request in the `on` slices, µs (median). */
  workerUsPerRequest: number;
}

export interface AppRow {
  label: string;
  reqPerSec: { min: number; median: number };
  /** CPU of the server process per request, µs (median over slices). */
  cpuUsPerRequest: number;
  /** …of which its main thread, the exporter's worker thread, and the other threads (medians). */
  mainUsPerRequest: number;
  workerUsPerRequest: number;
  otherUsPerRequest: number;
  /** Median req/s relative to no metrics, in %. */
  vsNone: number;
}

interface Running {
  readonly v: Variant;
  readonly child: ChildProcess;
  readonly lines: Interface;
  readonly port: number;
  readonly reader?: ChildProcess;
}

/** One slice's requests/s and CPU per request (µs) by thread. */
interface Slice {
  rps: number;
  main: number;
  worker: number;
  other: number;
}

const line = (lines: Interface): Promise<string> => new Promise((r) => lines.once('line', r));

/** A client of the exporter in a process of its own, reading and discarding everything. */
function reader(port: number): ChildProcess {
  const code = `const s=require('net').connect(${port},'127.0.0.1');s.on('data',()=>{});s.on('error',()=>process.exit(0))`;
  return node(OTHER_CORES, ['-e', code], 'ignore');
}

async function start(v: Variant): Promise<Running> {
  const child = node('0', [SERVER, v.lib], ['pipe', 'pipe', 'inherit']);
  const lines = createInterface({ input: child.stdout! });
  const hello = JSON.parse(await line(lines)) as { port: number; exporterPort: number };
  const r = v.client ? reader(hello.exporterPort) : undefined;
  return { v, child, lines, port: hello.port, reader: r };
}

async function stop(r: Running): Promise<void> {
  r.reader?.kill();
  const exited = new Promise((res) => (r.child.exitCode !== null ? res(0) : r.child.once('exit', res)));
  r.child.stdin!.end();
  await exited;
}

async function cpuMs(r: Running): Promise<ThreadCpu> {
  const next = line(r.lines);
  r.child.stdin!.write('cpu\n');
  return JSON.parse(await next) as ThreadCpu;
}

async function slice(r: Running, seconds: number): Promise<Slice> {
  const before = await cpuMs(r);
  const result = await autocannon({ url: `http://127.0.0.1:${r.port}/`, connections: 16, duration: seconds });
  const after = await cpuMs(r);
  const n = result.requests.total;
  const us = (k: keyof ThreadCpu) => ((after[k] - before[k]) * 1000) / n;
  return { rps: result.requests.average, main: us('main'), worker: us('worker'), other: us('other') };
}

export async function runApp(
  quick: boolean,
  log: (s: string) => void,
): Promise<{ rows: AppRow[]; text: string; pinned: boolean; paired: PairedResult }> {
  if (PINNED) execFileSync('taskset', ['-a', '-p', '-c', OTHER_CORES, String(process.pid)], { stdio: 'ignore' });
  try {
    const app = await measureApp(quick, log);
    return { ...app, paired: await measurePaired(quick, log) };
  } finally {
    if (PINNED) execFileSync('taskset', ['-a', '-p', '-c', `0-${CORES - 1}`, String(process.pid)], { stdio: 'ignore' });
  }
}

async function measureApp(quick: boolean, log: (s: string) => void): Promise<{ rows: AppRow[]; text: string; pinned: boolean }> {
  const rounds = quick ? 1 : 6;
  const seconds = quick ? 0.5 : 2;
  const slices = new Map<Variant, Slice[]>(VARIANTS.map((v) => [v, []]));
  // Each slice runs in a fresh server process, in an order rotated every round: what differs
  // between two processes of one program (where the JIT and the scheduler put things) then
  // shows as spread, instead of favouring one variant for the whole run.
  for (let round = 0; round < rounds; round++) {
    log(`app: round ${round + 1} of ${rounds} …`);
    for (let k = 0; k < VARIANTS.length; k++) {
      const v = VARIANTS[(k + round) % VARIANTS.length]!;
      const r = await start(v);
      try {
        await new Promise((res) => setTimeout(res, 200)); // the reader has connected
        await slice(r, quick ? 0.3 : 1); // warm-up: JIT, connections
        slices.get(v)!.push(await slice(r, seconds));
      } finally {
        await stop(r);
      }
    }
  }
  const none = summary(slices.get(VARIANTS[0]!)!.map((s) => s.rps)).median;
  const rows: AppRow[] = VARIANTS.map((v) => {
    const mine = slices.get(v)!;
    const rps = summary(mine.map((s) => s.rps));
    const median = (f: (s: Slice) => number) => summary(mine.map(f)).median;
    return {
      label: v.label,
      reqPerSec: rps,
      cpuUsPerRequest: median((s) => s.main + s.worker + s.other),
      mainUsPerRequest: median((s) => s.main),
      workerUsPerRequest: median((s) => s.worker),
      otherUsPerRequest: median((s) => s.other),
      vsNone: (rps.median / none - 1) * 100,
    };
  });
  const text = table([
    ['server', 'req/s median', 'req/s min', 'vs no metrics', 'CPU µs per request', 'main thread', 'exporter worker', 'other threads'],
    ...rows.map((r) => [
      r.label,
      r.reqPerSec.median.toFixed(0),
      r.reqPerSec.min.toFixed(0),
      `${r.vsNone >= 0 ? '+' : ''}${r.vsNone.toFixed(1)} %`,
      r.cpuUsPerRequest.toFixed(2),
      r.mainUsPerRequest.toFixed(2),
      r.workerUsPerRequest.toFixed(2),
      r.otherUsPerRequest.toFixed(2),
    ]),
  ]);
  return { rows, text, pinned: PINNED };
}

/**
 * Runs server processes in `paired` mode, each through blocks of four slices in the order off,
 * on, on, off (the next block on, off, off, on), so that a drift in the machine's speed during a
 * block weighs on both sides alike. Each switch is followed by a warm-up slice; the exporter is built afresh at
 * every `on` and a reader connects to it.
 */
async function measurePaired(quick: boolean, log: (s: string) => void): Promise<PairedResult> {
  const processes = quick ? 1 : 4;
  const blocksPerProcess = quick ? 1 : 2;
  const seconds = quick ? 0.5 : 1.5;
  const blocks: number[] = [];
  const workerUs: number[] = [];
  for (let p = 0; p < processes; p++) {
    log(`app: paired, process ${p + 1} of ${processes} …`);
    const r = await start({ label: 'paired', lib: 'paired' });
    let client: ChildProcess | undefined;
    const set = async (on: boolean): Promise<void> => {
      if (on === (client !== undefined)) return;
      const next = line(r.lines);
      r.child.stdin!.write(on ? 'on\n' : 'off\n');
      if (on) {
        const { exporterPort } = JSON.parse(await next) as { exporterPort: number };
        client = reader(exporterPort);
        await new Promise((res) => setTimeout(res, 200)); // the reader has connected
      } else {
        client!.kill();
        client = undefined;
        await next;
      }
      await slice(r, quick ? 0.3 : 0.5); // warm-up after the switch
    };
    try {
      await slice(r, quick ? 0.3 : 1); // warm-up: JIT, connections
      for (let b = 0; b < blocksPerProcess; b++) {
        const first = (p + b) % 2 === 1; // every other block starts with the exporter on
        const rps = { on: 0, off: 0 };
        for (const on of [first, !first, !first, first]) {
          await set(on);
          const s = await slice(r, seconds);
          rps[on ? 'on' : 'off'] += s.rps;
          if (on) workerUs.push(s.worker);
        }
        blocks.push((rps.on / rps.off - 1) * 100);
      }
    } finally {
      client?.kill();
      await stop(r);
    }
  }
  const { min, median } = summary(blocks);
  return { blocks, median, min, max: Math.max(...blocks), workerUsPerRequest: summary(workerUs).median };
}

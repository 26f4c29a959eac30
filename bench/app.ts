// A real node:http server, with no metrics and with each library, loaded by autocannon in
// interleaved slices (so that the machine's drift hits every variant alike): requests per second
// and CPU per request of the server process (all its threads).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import autocannon from 'autocannon';
import { summary, table } from './measure.js';

const SERVER = new URL('./app-server.js', import.meta.url).pathname;

interface Variant {
  readonly label: string;
  readonly lib: 'none' | 'prom-client' | 'otel' | 'ours';
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

export interface AppRow {
  label: string;
  reqPerSec: { min: number; median: number };
  /** CPU of the server process per request, µs (median over slices). */
  cpuUsPerRequest: number;
  /** Median req/s relative to no metrics, in %. */
  vsNone: number;
}

interface Running {
  readonly v: Variant;
  readonly child: ChildProcess;
  readonly lines: Interface;
  readonly port: number;
  readonly reader?: ChildProcess;
  readonly slices: { rps: number; cpuUsPerReq: number }[];
}

const line = (lines: Interface): Promise<string> => new Promise((r) => lines.once('line', r));

/** A client of the exporter in a process of its own, reading and discarding everything. */
function reader(port: number): ChildProcess {
  const code = `const s=require('net').connect(${port},'127.0.0.1');s.on('data',()=>{});s.on('error',()=>process.exit(0))`;
  return spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
}

async function start(v: Variant): Promise<Running> {
  const child = spawn(process.execPath, [SERVER, v.lib], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const hello = JSON.parse(await line(lines)) as { port: number; exporterPort: number };
  const r = v.client ? reader(hello.exporterPort) : undefined;
  return { v, child, lines, port: hello.port, reader: r, slices: [] };
}

async function cpuMs(r: Running): Promise<number> {
  const next = line(r.lines);
  r.child.stdin!.write('cpu\n');
  return (JSON.parse(await next) as { cpuMs: number }).cpuMs;
}

async function slice(r: Running, seconds: number): Promise<{ rps: number; requests: number; cpu: number }> {
  const before = await cpuMs(r);
  const result = await autocannon({ url: `http://127.0.0.1:${r.port}/`, connections: 16, duration: seconds });
  const cpu = (await cpuMs(r)) - before;
  return { rps: result.requests.average, requests: result.requests.total, cpu };
}

export async function runApp(quick: boolean, log: (s: string) => void): Promise<{ rows: AppRow[]; text: string }> {
  const rounds = quick ? 1 : 6;
  const seconds = quick ? 0.5 : 2;
  const running: Running[] = [];
  try {
    for (const v of VARIANTS) running.push(await start(v));
    await new Promise((r) => setTimeout(r, 300)); // readers connected
    for (const r of running) await slice(r, quick ? 0.3 : 1); // warm-up: JIT, connections
    for (let round = 0; round < rounds; round++) {
      log(`app: round ${round + 1} of ${rounds} …`);
      for (const r of running) {
        const s = await slice(r, seconds);
        r.slices.push({ rps: s.rps, cpuUsPerReq: (s.cpu * 1000) / s.requests });
      }
    }
  } finally {
    for (const r of running) {
      r.reader?.kill();
      r.child.stdin!.end();
    }
    await Promise.all(running.map((r) => new Promise((res) => (r.child.exitCode !== null ? res(0) : r.child.once('exit', res)))));
  }
  const none = summary(running[0]!.slices.map((s) => s.rps)).median;
  const rows: AppRow[] = running.map((r) => {
    const rps = summary(r.slices.map((s) => s.rps));
    return {
      label: r.v.label,
      reqPerSec: rps,
      cpuUsPerRequest: summary(r.slices.map((s) => s.cpuUsPerReq)).median,
      vsNone: (rps.median / none - 1) * 100,
    };
  });
  const text = table([
    ['server', 'req/s median', 'req/s min', 'vs no metrics', 'CPU µs per request'],
    ...rows.map((r) => [r.label, r.reqPerSec.median.toFixed(0), r.reqPerSec.min.toFixed(0), `${r.vsNone >= 0 ? '+' : ''}${r.vsNone.toFixed(1)} %`, r.cpuUsPerRequest.toFixed(1)]),
  ]);
  return { rows, text };
}

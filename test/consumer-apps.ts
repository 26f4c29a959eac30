// What the consumer tests (consumers.test.ts, otel-consumers.test.ts) do in the apps they
// install the packed packages into: programs that load the entry points as ES modules and as
// CommonJS and check what a client read back, and TypeScript checked the ways users compile it.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, runOk } from '../scripts/packaging.js';

const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** How a program records `jobs{q="a"}` 3 with unit count and a description: the recorder's own API. */
export const RECORD = `recorder.registerCounter('jobs', 'count', 'jobs done');
  recorder.counter({ name: 'jobs', labels: { q: 'a' } }).increment(3);`;

/** A program using the entry points: it records, reads it back with a client and with a capture, and prints what it saw. */
function program(load: string, record: string): string {
  return `${load}
async function main() {
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  const { host, port } = recorder.address;
  const client = new TcpClient(host + ':' + port);
  while (recorder.stats().clients === 0) await new Promise((r) => setTimeout(r, 5));
  ${record}
  const model = new SeriesModel({ histogram: () => ({ record() {}, reset() {} }) });
  for await (const ev of client) if (model.apply(ev)) break;
  const [series] = model.series.values();
  const data = withMetrics(recorder, {}).workerData;
  await recorder.close();
  const cap = await captureMetrics();
  cap.recorder.counter('tested').increment(2);
  const captured = cap.value('tested');
  await cap.close();
  console.log(JSON.stringify({ name: series.name, labels: series.labels, total: String(series.total), unit: model.describe('jobs').unit, workerData: Object.keys(data), captured }));
}
main().catch((err) => { console.error(err); process.exit(1); });
`;
}

const EXPECTED = { name: 'jobs', labels: { q: 'a' }, total: '3', unit: 'count', workerData: ['metricsExporterTcp'], captured: 2 };

/** The entry points a program loads: `[names, module]` pairs, written as imports or require() calls. */
export const LOAD = [
  ['TcpBuilder', 'metrics-exporter-tcp'],
  ['SeriesModel, TcpClient', 'metrics-exporter-tcp/client'],
  ['withMetrics', 'metrics-exporter-tcp/piscina'],
  ['captureMetrics', 'metrics-exporter-tcp/testing'],
];

/**
 * Writes the program (loading `load`, recording with `record`) into `dir` as an ES module and
 * as CommonJS, runs both, and checks that each read back `jobs{q="a"}` 3 with unit count.
 */
export async function runBoth(dir: string, name: string, load: string[][], record = RECORD): Promise<void> {
  const esm = load.map(([names, from]) => `import { ${names} } from '${from}';`).join('\n');
  const cjs = load.map(([names, from]) => `const { ${names} } = require('${from}');`).join('\n');
  writeFileSync(join(dir, `${name}.mjs`), program(esm, record));
  writeFileSync(join(dir, `${name}.cjs`), program(cjs, record));
  for (const file of [`${name}.mjs`, `${name}.cjs`]) {
    const r = await runOk(process.execPath, [file], dir, 30_000);
    assert.deepEqual(JSON.parse(r.stdout), EXPECTED, file);
  }
}

const TS_CONFIGS: Record<string, { type: 'module' | 'commonjs'; compilerOptions: Record<string, unknown>; run: boolean }> = {
  'nodenext-esm': { type: 'module', compilerOptions: { module: 'nodenext' }, run: true },
  'nodenext-cjs': { type: 'commonjs', compilerOptions: { module: 'nodenext' }, run: true },
  bundler: { type: 'module', compilerOptions: { module: 'esnext', moduleResolution: 'bundler', noEmit: true }, run: false },
};

/**
 * Type-checks `source` (a program that prints `{ recorded: typeof … }`) in `app` as a nodenext
 * ES module app, a nodenext CommonJS app and with bundler resolution, all strict with
 * skipLibCheck off, in one `tsc -b` (the three projects share the parsed declarations), then
 * runs what the nodenext ones emitted.
 */
export async function typecheck(app: string, source: string): Promise<void> {
  const dirs = Object.entries(TS_CONFIGS).map(([name, c]) => {
    const dir = join(app, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: c.type }));
    writeFileSync(join(dir, 'index.ts'), source);
    const compilerOptions = { target: 'es2022', strict: true, skipLibCheck: false, types: ['node'], outDir: 'out', ...c.compilerOptions };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['index.ts'] }));
    return dir;
  });
  await runOk(process.execPath, [TSC, '-b', ...dirs], app, 90_000);
  for (const [name, c] of Object.entries(TS_CONFIGS)) {
    if (!c.run) continue;
    const dir = join(app, name);
    const emitted = readFileSync(join(dir, 'out', 'index.js'), 'utf8');
    if (c.type === 'commonjs') assert.match(emitted, /require\("metrics-exporter-tcp"\)/, 'a CommonJS app require()s the package');
    const r = await runOk(process.execPath, [join(dir, 'out', 'index.js')], dir, 30_000);
    assert.deepEqual(JSON.parse(r.stdout), { recorded: 'number' }, name);
  }
}

/**
 * An app for each JavaScript runtime: an exporter on 127.0.0.1:0, a client of the package
 * (`/client`) connected to it, 5 000 records from the main thread and 5 000 from a worker thread
 * that attaches; then `captureMetrics()` (`/testing`) read after the same from both threads and a
 * handle made before it. Prints what it counted.
 */
export const RUNTIME_APP: Readonly<Record<string, string>> = {
  'runtime.mjs': `import { Worker } from 'node:worker_threads';
import { TcpBuilder, counter } from 'metrics-exporter-tcp';
import { TcpClient } from 'metrics-exporter-tcp/client';
import { captureMetrics } from 'metrics-exporter-tcp/testing';

const HALF = 5000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** A worker thread that attaches with \`connector\` and records \`jobs{from="thread"}\` HALF times. */
function thread(connector) {
  const w = new Worker(new URL('./runtime-thread.mjs', import.meta.url), { workerData: { connector, n: HALF } });
  return new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
}

const jobs = counter({ name: 'jobs', labels: { from: 'main' } }); // made before any recorder
const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').bufferSize(65536).build();
const { host, port } = recorder.address;
const client = new TcpClient(host + ':' + port);
const received = {};
let frames = 0;
const reading = (async () => {
  for await (const ev of client) {
    if (ev.kind !== 'metric' || ev.name !== 'jobs') continue;
    received[ev.labels.from] = (received[ev.labels.from] ?? 0) + Number(ev.op.value);
    if (++frames === 2 * HALF) break;
  }
})();
while (recorder.stats().clients === 0) await sleep(5);
const own = recorder.counter({ name: 'jobs', labels: { from: 'main' } });
for (let i = 0; i < HALF; i++) own.increment();
await thread(recorder.connector());
await reading;
await client.close();
await recorder.close();
const { recorded, dropped } = recorder.stats();

const cap = await captureMetrics();
for (let i = 0; i < HALF; i++) jobs.increment();
await thread(cap.recorder.connector());
const captured = { main: cap.value({ name: 'jobs', labels: { from: 'main' } }), thread: cap.value({ name: 'jobs', labels: { from: 'thread' } }) };
await cap.close();
console.log(JSON.stringify({ received, recorded, dropped, captured }));
`,
  'runtime-thread.mjs': `import { parentPort, workerData } from 'node:worker_threads';
import { attach } from 'metrics-exporter-tcp';
const m = attach(workerData.connector);
const c = m.counter({ name: 'jobs', labels: { from: 'thread' } });
for (let i = 0; i < workerData.n; i++) c.increment();
m.flush();
parentPort.postMessage('done');
`,
};

/** What {@link RUNTIME_APP} prints when every record arrived. */
export const RUNTIME_EXPECTED = {
  received: { main: 5000, thread: 5000 },
  recorded: 10_000,
  dropped: { ringFull: 0, clientQueue: 0, invalid: 0, metadata: 0 },
  captured: { main: 5000, thread: 5000 },
};

/**
 * How to run a script under Bun or Deno, from the binaries their npm packages ship (the root's
 * optional development dependencies, through the `test/runtimes` workspace): the command and its
 * arguments before the script, or why it cannot run here (no binary is published for this
 * platform, so npm installed none). Deno as a new user runs an npm app: `node_modules` is used
 * since there is a package.json; the exporter listens on and connects to 127.0.0.1, and reads
 * /proc (a thread's liveness).
 */
export function runtime(name: 'bun' | 'deno'): { command: string; args: string[] } | { skip: string } {
  const command = name === 'bun' ? join(ROOT, 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun') : join(ROOT, 'node_modules', '@deno', 'linux-x64-glibc', 'deno');
  if (!existsSync(command)) return { skip: `no ${name} binary for ${process.platform}-${process.arch} (npm installs the linux-x64 one only)` };
  return { command, args: name === 'bun' ? [] : ['run', '--allow-net=127.0.0.1', '--allow-read'] };
}

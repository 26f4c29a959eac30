// The packages as users get them: packed tarballs installed into fresh temporary apps (npm's
// cache first, so a cache warmed by `npm ci` needs no network), then used the ways users use
// them: ESM import, CommonJS require(), TypeScript (nodenext ESM and CommonJS, bundler
// resolution, skipLibCheck off), npx of each tool's bin, and one app run under Node, Bun and Deno. (`/otel`, with and without
// @opentelemetry/api: otel-consumers.test.ts.) Nothing here reads the source tree.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, test } from 'node:test';
import { cleanEnv, emptyApp, install, measure, packAll, pinnedSpec, ROOT, run, type InstallFigures, type PackageName } from '../scripts/packaging.js';
import { LOAD, RUNTIME_APP, RUNTIME_EXPECTED, runBoth, runtime, typecheck } from './consumer-apps.js';
import { startExporter, waitFor } from './helpers.js';

let packs: string;
let tarballs: Record<PackageName, string>;
/** An app that installed the root package only (and then @types/node for TypeScript). */
let app: string;
let figures: InstallFigures;
const dirs: string[] = [];

before(async () => {
  packs = emptyApp('mtcp-packs-');
  app = emptyApp('mtcp-consumer-');
  dirs.push(packs, app);
  tarballs = await packAll(packs);
  await install(app, [tarballs['metrics-exporter-tcp']]);
  figures = measure(app);
  await install(app, [pinnedSpec('@types/node')]);
}, { timeout: 180_000 });

after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

test('the packed package installs light: at most 3 packages and 5 MB, and no install script', () => {
  assert.ok(figures.packages <= 3, `${figures.packages} packages`);
  assert.ok(figures.bytes <= 5e6, `${figures.bytes} bytes`);
  assert.deepEqual(figures.installScripts, []);
  const manifest = JSON.parse(readFileSync(join(app, 'node_modules', 'metrics-exporter-tcp', 'package.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(manifest.dependencies as object), ['@bufbuild/protobuf']);
  assert.equal(manifest.bin, undefined);
});

/** Every file under `dir` whose name ends with `suffix`. */
function filesUnder(dir: string, suffix: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith(suffix))
    .map((f) => join(dir, f));
}

/**
 * The names the sources mark `@internal`, per source file (`constructor` for a constructor),
 * read from the TSDoc comment right before each declaration.
 */
function internalDeclarations(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const src = join(ROOT, 'src');
  const pattern = /\/\*\*(?:(?!\*\/)[^])*@internal(?:(?!\*\/)[^])*\*\/\s*(?:export\s+)?(?:(?:public|private|protected|static|readonly|async|declare|get|set)\s+)*(?:function\s+|class\s+|const\s+|let\s+)?([A-Za-z_$][\w$]*)/g;
  for (const file of filesUnder(src, '.ts')) {
    const names = [...readFileSync(file, 'utf8').matchAll(pattern)].map((m) => m[1]!);
    if (names.length > 0) out.set(relative(src, file).replace(/\.ts$/, '.d.ts'), names);
  }
  return out;
}

test('the shipped declarations carry the public API only: nothing @internal', () => {
  const lib = join(app, 'node_modules', 'metrics-exporter-tcp', 'lib');
  const dts = filesUnder(lib, '.d.ts');
  assert.ok(dts.length > 10, `${dts.length} declaration files`);
  const internal = internalDeclarations();
  assert.ok(internal.size > 0, 'the sources mark some declarations @internal');
  for (const file of dts) {
    const text = readFileSync(file, 'utf8');
    assert.doesNotMatch(text, /@internal|\bhostOf\b|\bkHost\b|crashForTest/, relative(lib, file));
    const code = text.replace(/\/\*[^]*?\*\//g, '').replace(/\/\/.*$/gm, ''); // declarations, not prose
    for (const name of internal.get(relative(lib, file)) ?? []) {
      assert.doesNotMatch(code, new RegExp(`(^|[\\s.])${name.replace('$', '\\$')}\\s*[(<:?]`, 'm'), `${relative(lib, file)} declares @internal ${name}`);
    }
  }
  for (const file of filesUnder(lib, '.js')) assert.doesNotMatch(readFileSync(file, 'utf8'), /crashForTest|kHost/, relative(lib, file));
});

test('ESM import and CommonJS require() of the entry points work', async () => {
  await runBoth(app, 'recorder', LOAD);
});

/** TypeScript using the public types of all three entry points (strict, skipLibCheck off). */
const TS_SOURCE = `import { TcpBuilder, ExporterError, UNITS, type ExporterStats, type Key, type Unit } from 'metrics-exporter-tcp';
import { ClientError, SeriesModel, TcpClient, type ClientEvent, type HistogramState } from 'metrics-exporter-tcp/client';
import { withMetrics, metrics } from 'metrics-exporter-tcp/piscina';
import { CaptureError, captureMetrics, type CapturedMetric, type HistogramTotals, type MetricsCapture } from 'metrics-exporter-tcp/testing';

class Count implements HistogramState {
  n = 0;
  record(): void { this.n++; }
  reset(): void { this.n = 0; }
}

export async function main(): Promise<ExporterStats> {
  const key: Key = { name: 'jobs', labels: { q: 'a' } };
  const unit: Unit = UNITS[0]!;
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').bufferSize(1024).build();
  recorder.registerCounter(key, unit, 'jobs done');
  recorder.counter(key).increment(3n);
  recorder.updateGauge('depth', { absolute: 1 });
  const client = new TcpClient('127.0.0.1:1', { protocol: 'auto', reconnect: false });
  client.on('error', (err: ClientError) => void err.code);
  const model = new SeriesModel({ histogram: () => new Count() });
  const seen = (ev: ClientEvent): string => (ev.kind === 'metric' ? ev.op.type : ev.metricKind);
  void seen;
  void model;
  const options: { filename: string } = withMetrics(recorder, { filename: 'task.js' });
  void options;
  void metrics;
  const err: ExporterError | undefined = undefined;
  void err;
  await client.close();
  await recorder.close();
  const cap: MetricsCapture = await captureMetrics({ bufferSize: 1024 });
  cap.recorder.histogram('latency').record(0.5);
  const latency: HistogramTotals | undefined = cap.value('latency', 'histogram');
  const all: CapturedMetric[] = cap.snapshot();
  void latency;
  void all;
  cap.reset();
  await cap.close();
  const capErr: CaptureError | undefined = undefined;
  void capErr;
  return recorder.stats();
}
main().then((s) => console.log(JSON.stringify({ recorded: typeof s.recorded })));
`;

test('TypeScript: nodenext (ESM and CommonJS apps) and bundler resolution type-check with skipLibCheck off', async () => {
  await typecheck(app, TS_SOURCE); // without @opentelemetry/api: the root's types never need it
});

/** Writes {@link RUNTIME_APP} into the app and runs it with `command args`: exact counts, exit 0, nothing on stderr. */
async function runRuntimeApp(command: string, args: readonly string[]): Promise<void> {
  for (const [file, text] of Object.entries(RUNTIME_APP)) writeFileSync(join(app, file), text);
  const r = await run(command, [...args, 'runtime.mjs'], app, 60_000);
  assert.equal(r.code, 0, `${command} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  assert.equal(r.stderr, '');
  assert.deepEqual(JSON.parse(r.stdout), RUNTIME_EXPECTED);
}

test('Node runs the runtime app: exporter, attached thread, client, captureMetrics, close()', async () => {
  await runRuntimeApp(process.execPath, []);
});

for (const name of ['bun', 'deno'] as const) {
  test(`${name} runs the runtime app: exporter, attached thread, client, captureMetrics, close()`, async (t) => {
    const how = runtime(name);
    if ('skip' in how) return t.skip(how.skip);
    await runRuntimeApp(how.command, how.args);
  });
}

/**
 * Runs `npx --no -- <bin> args` in `cwd` (the bin must be installed there: nothing is fetched),
 * in a process group of its own: npm runs the bin through `sh -c`, which does not pass signals
 * on, so a signal for the tool goes to the group.
 */
function npx(cwd: string, args: string[]) {
  const child = spawn('npx', ['--no', '--', ...args], { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, s);
    } catch {
      // already gone
    }
  };
  return { child, closed, signal };
}

test('npx runs each tool from its tarball: the observer prints a snapshot, the relay serves /metrics', { timeout: 180_000 }, async (t) => {
  const tools = emptyApp('mtcp-tools-');
  dirs.push(tools);
  await install(tools, [tarballs['metrics-exporter-tcp'], tarballs['metrics-exporter-tcp-observer'], tarballs['metrics-exporter-tcp-relay']]);
  assert.deepEqual(measure(tools).installScripts, []);

  const recorder = await startExporter();
  t.after(() => recorder.close());
  const { host, port } = recorder.address as { host: string; port: number };
  const address = `${host}:${port}`;

  // The observer: one JSON snapshot.
  const observer = npx(tools, ['metrics-exporter-tcp-observer', address, '--json', '--once', '--duration', '1500']);
  t.after(() => observer.signal('SIGKILL'));
  let out = '';
  let errors = '';
  observer.child.stdout.on('data', (d) => (out += d));
  observer.child.stderr.on('data', (d) => (errors += d));
  await waitFor('the observer to connect', () => recorder.stats().clients === 1, 30_000);
  recorder.counter({ name: 'jobs', labels: { q: 'a' } }).increment(3);
  assert.equal(await observer.closed, 0, errors);
  assert.deepEqual(JSON.parse(out).metrics, [{ name: 'jobs', labels: { q: 'a' }, kind: 'counter', value: 3 }]);
  await waitFor('the observer to leave', () => recorder.stats().clients === 0, 10_000);

  // The relay: it serves GET /metrics until SIGTERM, then exits 0.
  const relay = npx(tools, ['metrics-exporter-tcp-relay', '--connect', address, '--prometheus', '127.0.0.1:0']);
  t.after(() => relay.signal('SIGKILL'));
  let log = '';
  relay.child.stderr.on('data', (d) => (log += d));
  relay.child.stdout.resume();
  await waitFor('the relay to serve', () => /serving \{.*\} \/metrics/.test(log), 30_000);
  const served = JSON.parse(/serving (\{.*\}) \/metrics/.exec(log)![1]!) as { host: string; port: number };
  await waitFor('the relay to connect', () => recorder.stats().clients === 1, 30_000);
  recorder.counter({ name: 'jobs', labels: { q: 'a' } }).increment(4);
  let text = '';
  const end = Date.now() + 20_000;
  while (Date.now() < end && !/^jobs_total\{q="a",exporter="[^"]+"\} 4$/m.test(text)) {
    text = await (await fetch(`http://${served.host}:${served.port}/metrics`)).text();
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(text, /^jobs_total\{q="a",exporter="[^"]+"\} 4$/m);
  // The relay's own exit is what closes the pipes it shares with npx.
  relay.signal('SIGTERM');
  await relay.closed;
  await waitFor('the relay to let go of the exporter', () => recorder.stats().clients === 0, 10_000);
});

// What the consumer tests (consumers.test.ts, otel-consumers.test.ts) do in the apps they
// install the packed packages into: programs that load the entry points as ES modules and as
// CommonJS and check what a client read back, and TypeScript checked the ways users compile it.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, runOk } from '../scripts/packaging.js';

const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** How a program records `jobs{q="a"}` 3 with unit count and a description: the recorder's own API. */
export const RECORD = `recorder.registerCounter('jobs', 'count', 'jobs done');
  recorder.counter({ name: 'jobs', labels: { q: 'a' } }).increment(3);`;

/** A program using the entry points: it records, reads it back with a client, and prints what it saw. */
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
  console.log(JSON.stringify({ name: series.name, labels: series.labels, total: String(series.total), unit: model.describe('jobs').unit, workerData: Object.keys(data) }));
}
main().catch((err) => { console.error(err); process.exit(1); });
`;
}

const EXPECTED = { name: 'jobs', labels: { q: 'a' }, total: '3', unit: 'count', workerData: ['metricsExporterTcp'] };

/** The entry points a program loads: `[names, module]` pairs, written as imports or require() calls. */
export const LOAD = [
  ['TcpBuilder', 'metrics-exporter-tcp'],
  ['SeriesModel, TcpClient', 'metrics-exporter-tcp/client'],
  ['withMetrics', 'metrics-exporter-tcp/piscina'],
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

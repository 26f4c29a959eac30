// metrics-exporter-tcp/otel as users get it: the packed root package installed into fresh apps,
// one without @opentelemetry/api (the root never needs it, and /otel uses only the API's types)
// and one with it (a library records through the API's global provider). ESM import, CommonJS
// require(), and TypeScript (nodenext ESM and CommonJS, bundler resolution, skipLibCheck off).
// Nothing here reads the source tree.
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { emptyApp, install, packAll, pinnedSpec } from '../scripts/packaging.js';
import { LOAD, runBoth, typecheck } from './consumer-apps.js';

/** An app with the root package only. */
let bare: string;
/** An app with the root package, @opentelemetry/api and @types/node. */
let withApi: string;
const dirs: string[] = [];

before(async () => {
  const packs = emptyApp('mtcp-otel-packs-');
  bare = emptyApp('mtcp-otel-bare-');
  withApi = emptyApp('mtcp-otel-api-');
  dirs.push(packs, bare, withApi);
  const root = (await packAll(packs))['metrics-exporter-tcp'];
  await install(bare, [root]);
  await install(withApi, [root, pinnedSpec('@opentelemetry/api'), pinnedSpec('@types/node')]);
}, { timeout: 180_000 });

after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const LOAD_OTEL = [...LOAD, ['TcpMeterProvider', 'metrics-exporter-tcp/otel']];

test('/otel loads and records without @opentelemetry/api installed', async () => {
  assert.equal(existsSync(join(bare, 'node_modules', '@opentelemetry', 'api')), false);
  // The provider's meter, called directly: what the API would hand a library.
  const record = `new TcpMeterProvider(recorder).getMeter('lib').createCounter('jobs', { unit: '1', description: 'jobs done' }).add(3, { q: 'a' });`;
  await runBoth(bare, 'otel-no-api', LOAD_OTEL, record);
});

test('/otel with @opentelemetry/api: a library using the global provider records through the exporter (ESM and CommonJS)', async () => {
  const record = `metrics.setGlobalMeterProvider(new TcpMeterProvider(recorder));
  metrics.getMeter('lib').createCounter('jobs', { unit: '{job}', description: 'jobs done' }).add(3, { q: 'a' });`;
  await runBoth(withApi, 'otel-api', [...LOAD_OTEL, ['metrics', '@opentelemetry/api']], record);
  await runBoth(withApi, 'recorder', LOAD); // the root alone, with the API installed
});

/** TypeScript using /otel through @opentelemetry/api's types. */
const TS_OTEL_SOURCE = `import { metrics, type Meter, type MeterProvider, type ObservableResult } from '@opentelemetry/api';
import { TcpBuilder, attach, type Recording } from 'metrics-exporter-tcp';
import { TcpMeterProvider, type TcpMeterProviderOptions } from 'metrics-exporter-tcp/otel';

export async function main(): Promise<number> {
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  const options: TcpMeterProviderOptions = { collectIntervalMs: 1000 };
  const provider = new TcpMeterProvider(recorder, options);
  const asApi: MeterProvider = provider;
  metrics.setGlobalMeterProvider(asApi);
  const meter: Meter = metrics.getMeter('lib', '1.0.0');
  meter.createCounter<{ route: string }>('requests', { unit: '{request}' }).add(1, { route: '/users' });
  meter.createObservableGauge('ready').addCallback((result: ObservableResult) => result.observe(1));
  const inThread: (r: Recording) => TcpMeterProvider = (r) => new TcpMeterProvider(r);
  void inThread;
  void attach;
  await provider.forceFlush();
  await provider.shutdown();
  await recorder.close();
  return recorder.stats().recorded;
}
main().then((n) => console.log(JSON.stringify({ recorded: typeof n })));
`;

test('TypeScript: /otel with @opentelemetry/api type-checks as nodenext (ESM and CommonJS apps) and with bundler resolution, skipLibCheck off', async () => {
  await typecheck(withApi, TS_OTEL_SOURCE);
});

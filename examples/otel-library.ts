// An OpenTelemetry-instrumented library recording through the exporter: the library knows only
// @opentelemetry/api; the app chooses the exporter by setting the global MeterProvider.
// Run: npm run build && node dist/examples/otel-library.js
import { metrics, type Attributes } from '@opentelemetry/api';
import { TcpBuilder } from '../src/index.js';
import { SeriesModel, TcpClient } from '../src/client/index.js';
import { TcpMeterProvider } from '../src/otel/index.js';

// ── The library: any package instrumented with the API, unchanged. ──────────────────────────
// A library usually gets its meter and instruments when it is loaded. The API's metrics have no
// proxy: instruments made before a provider is set stay no-ops, so the app sets the provider
// first (below), then loads the library. Here "loading" is calling this function.
function loadLibrary(): { handle(path: string): Promise<void> } {
  const meter = metrics.getMeter('example-http-lib', '1.0.0');
  const requests = meter.createCounter('http_requests', { unit: '{request}', description: 'Requests served' });
  const duration = meter.createHistogram('http_request_duration', { unit: 's', description: 'Time to serve a request' });
  const active = meter.createUpDownCounter('http_active_requests', { unit: '{request}' });
  const cache = new Map<string, string>();
  meter
    .createObservableGauge('http_cache_entries', { description: 'Entries in the response cache' })
    .addCallback((result) => result.observe(cache.size, { cache: 'responses' }));
  // Attributes made once per route are reused on every call: the provider finds their series
  // by object identity, with no allocation.
  const routes: Record<string, Attributes> = { '/users': { route: '/users', method: 'GET' }, '/orders': { route: '/orders', method: 'GET' } };

  return {
    async handle(path: string): Promise<void> {
      const attributes = routes[path]!;
      active.add(1, attributes);
      const start = performance.now();
      await new Promise((r) => setImmediate(r)); // the work
      cache.set(path, 'response');
      duration.record((performance.now() - start) / 1000, attributes);
      // A new object of equal content each call works too (found by content, a little slower).
      requests.add(1, { method: 'GET', route: path, status: 200 });
      active.add(-1, attributes);
    },
  };
}

// ── The app: one exporter, the provider set globally before the library records. ─────────────
const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
const provider = new TcpMeterProvider(recorder, { collectIntervalMs: 1000 });
metrics.setGlobalMeterProvider(provider);
const library = loadLibrary();

// A client that watches, as the observer or the relay would.
const { host, port } = recorder.address as { host: string; port: number };
const client = new TcpClient(`${host}:${port}`);
const model = new SeriesModel({ histogram: () => ({ n: 0, record() { this.n++; }, reset() { this.n = 0; } }) });
const watching = (async () => {
  for await (const ev of client) model.apply(ev);
})();
while (recorder.stats().clients === 0) await new Promise((r) => setTimeout(r, 5));

for (let i = 0; i < 100; i++) await library.handle(i % 3 === 0 ? '/orders' : '/users');
await provider.shutdown(); // runs the observable callback a last time, stops its timer, publishes
await recorder.close(); // delivers everything to the client, then closes its connection
await watching; // the client has read it all

for (const s of model.series.values()) {
  const value = s.kind === 'counter' ? String(s.total) : s.kind === 'gauge' ? String(s.value) : `${s.histogram?.n} values`;
  console.log(`${s.kind.padEnd(9)} ${s.name}${JSON.stringify(s.labels)} ${value}`);
}
console.log('metadata of http_requests:', model.describe('http_requests'));
console.log('stats:', recorder.stats());

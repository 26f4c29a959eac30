// The HTTP server of the app section, in a process of its own: a node:http server that records
// 4 metrics per request (a labeled counter, a latency histogram, an in-flight gauge up and down)
// with one of the libraries, or none.
//   node dist/bench/app-server.js <none|prom-client|otel|ours|paired>
// Prints `{ "port": …, "exporterPort": … }`; then, for each line on stdin, one line with the
// process's CPU time so far (ms) by thread: the main thread, the exporter's worker, and the
// others (V8's GC and compiler threads, libuv's pool).
// `paired` starts with no metrics; the line `on` builds our exporter and answers
// `{ "exporterPort": …, "workerTid": … }`, the line `off` closes it and answers `{}`: one process serves both
// sides of a comparison.
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import promClient from 'prom-client';
import { TcpBuilder } from '../src/index.js';
import { Ctl } from '../src/shared/layout.js';
import { cpuByThread } from './measure.js';

/** Keeps the SDK aggregating, as an app with an exporter would, without exporting anywhere. */
class QuietReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

interface Instruments {
  request(route: string, status: string, seconds: number): void;
  inFlight(delta: 1 | -1): void;
}

const variant = process.argv[2] ?? 'none';
const none: Instruments = { request() {}, inFlight() {} };
let exporterPort = 0;
let workerTid = 0;
let m: Instruments = none;
let close: () => Promise<void> = async () => {};

/** Builds our exporter and its instruments. */
async function ours(): Promise<void> {
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  exporterPort = (recorder.address as { port: number }).port;
  workerTid = Atomics.load(new Int32Array(recorder.connector().ctl), Ctl.WorkerTid);
  const inFlight = recorder.gauge('http_in_flight');
  const latency = recorder.histogram('http_request_duration_seconds');
  // Handles resolved per request from a key object, as an app with a few routes would cache them.
  const keys = new Map<string, ReturnType<typeof recorder.counter>>();
  m = {
    request(route, status, seconds) {
      const id = `${route} ${status}`;
      let c = keys.get(id);
      if (c === undefined) keys.set(id, (c = recorder.counter({ name: 'http_requests', labels: { route, status } })));
      c.increment();
      latency.record(seconds);
    },
    inFlight: (d) => (d > 0 ? inFlight.increment(1) : inFlight.decrement(1)),
  };
  close = async () => {
    m = none;
    await recorder.close();
    exporterPort = workerTid = 0;
  };
}

if (variant === 'ours') {
  await ours();
} else if (variant === 'prom-client') {
  const registry = new promClient.Registry();
  const requests = new promClient.Counter({ name: 'http_requests_total', help: 'h', labelNames: ['route', 'status'], registers: [registry] });
  const latency = new promClient.Histogram({ name: 'http_request_duration_seconds', help: 'h', registers: [registry] });
  const inFlight = new promClient.Gauge({ name: 'http_in_flight', help: 'h', registers: [registry] });
  m = {
    request(route, status, seconds) {
      requests.inc({ route, status });
      latency.observe(seconds);
    },
    inFlight: (d) => inFlight.inc(d),
  };
} else if (variant === 'otel') {
  const provider = new MeterProvider({ readers: [new QuietReader()] });
  metrics.setGlobalMeterProvider(provider);
  const meter = metrics.getMeter('app');
  const requests = meter.createCounter('http_requests');
  const latency = meter.createHistogram('http_request_duration', { unit: 's' });
  const inFlight = meter.createUpDownCounter('http_in_flight');
  m = {
    request(route, status, seconds) {
      requests.add(1, { route, status });
      latency.record(seconds);
    },
    inFlight: (d) => inFlight.add(d),
  };
}

const routes = ['/users', '/orders', '/health'];
let n = 0;
const server = createServer((_req, res) => {
  const started = performance.now();
  m.inFlight(1);
  const route = routes[n++ % routes.length]!;
  res.end('ok');
  m.request(route, '200', (performance.now() - started) / 1000);
  m.inFlight(-1);
});
server.keepAliveTimeout = 60_000;
await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
console.log(JSON.stringify({ port: (server.address() as { port: number }).port, exporterPort }));
const lines = createInterface({ input: process.stdin });
lines.on('line', (l) => {
  if (variant === 'paired' && l === 'on') void ours().then(() => console.log(JSON.stringify({ exporterPort, workerTid })));
  else if (variant === 'paired' && l === 'off') void close().then(() => console.log('{}'));
  else console.log(JSON.stringify(cpuByThread(workerTid)));
});
lines.on('close', () => process.exit(0));

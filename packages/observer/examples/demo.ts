// `npm start`: a small app recording a realistic mix of metrics into an exporter, watched by
// the observer. In a terminal it shows the live view (q quits); otherwise (or with
// DEMO_SECONDS set) it collects for a few seconds and prints one JSON snapshot.
import { TcpBuilder } from 'metrics-exporter-tcp';
import { observe } from '../src/run.js';

// replayOnConnect: the observer gets each gauge's value when it connects (in-flight is only ever
// incremented and decremented: without it, its base would be unknown).
const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').replayOnConnect(true).build();
const { host, port } = recorder.address as { host: string; port: number };

// The "app": an HTTP-ish service. Describe once, take handles once, record per request.
recorder.registerCounter('http_requests', 'count', 'Requests served, by route and status');
recorder.registerHistogram('http_request_duration', 'seconds', 'Time to serve a request');
recorder.registerCounter('http_response_bytes', 'bytes', 'Bytes written to clients');
recorder.registerGauge('http_in_flight', 'count', 'Requests being served');
recorder.registerGauge('job_queue_depth', 'count', 'Background jobs waiting');
const routes = ['/users', '/orders', '/health'];
const duration = recorder.histogram('http_request_duration');
const bytes = recorder.counter('http_response_bytes');
const inFlight = recorder.gauge('http_in_flight');
const queue = recorder.gauge('job_queue_depth');
const app = setInterval(() => {
  const route = routes[Math.floor(Math.random() * routes.length)]!;
  const status = Math.random() < 0.97 ? '200' : '500';
  recorder.counter({ name: 'http_requests', labels: { route, status } }).increment(); // cached lookup
  inFlight.increment(1);
  const seconds = 0.002 + Math.random() ** 3 * (route === '/orders' ? 0.3 : 0.05);
  setTimeout(() => {
    duration.record(seconds);
    bytes.increment(200 + Math.floor(Math.random() * 4000));
    inFlight.decrement(1);
  }, seconds * 1000);
  queue.set(Math.max(0, Math.round(20 + 15 * Math.sin(Date.now() / 3000))));
}, 5);

const live = process.stdout.isTTY && process.env.DEMO_SECONDS === undefined;
if (!live) console.log(`demo app exporting on ${host}:${port}; collecting for ${process.env.DEMO_SECONDS ?? 3} s …`);
await observe({
  address: `${host}:${port}`,
  protocol: 'seed',
  json: !live,
  once: !live,
  durationMs: Number(process.env.DEMO_SECONDS ?? 3) * 1000,
  out: process.stdout,
  err: process.stderr,
});
clearInterval(app);
await recorder.close();
if (!live) console.log('exporter stats', recorder.stats());

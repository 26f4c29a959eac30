// A node:cluster app: the worker processes share one HTTP port, and each has an exporter of its
// own on a unix socket of its own (two exporters cannot bind one TCP port). One relay gathers
// them all, picking up workers as they come and go:
//
//   npm run build && node dist/examples/cluster.js
//   npx metrics-exporter-tcp-relay --connect '/tmp/app-metrics/metrics-*.sock' --prometheus 127.0.0.1:9464
//
// Environment: METRICS_DIR (default <tmpdir>/app-metrics), WORKERS (default 2), PORT (default
// 3000; 0 picks a free one, shared by every worker).
import cluster from 'node:cluster';
import { mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TcpBuilder } from '../src/index.js';

const dir = process.env.METRICS_DIR ?? join(tmpdir(), 'app-metrics');
const socketOf = (pid: number | undefined): string => join(dir, `metrics-${pid}.sock`);

if (cluster.isPrimary) {
  // Only this user may enter the folder: the stream is unauthenticated (see "Operating it safely").
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let stopping = false;
  for (let i = 0; i < Number(process.env.WORKERS ?? 2); i++) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    // A worker that crashed could not remove its socket: do it for it, so the relay's glob stops
    // matching it, then replace the worker (a new process, so a new pid and a new socket).
    rmSync(socketOf(worker.process.pid), { force: true });
    if (!stopping) {
      console.log(`worker ${worker.process.pid} ended (${signal ?? code}), starting another`);
      cluster.fork();
    }
  });
  const stop = (): void => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.send('stop');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} else {
  // replayOnConnect: a relay that connects late (or reconnects) gets each counter's total since
  // this worker started, so `sum(requests_total)` over the workers is the true figure.
  const recorder = await new TcpBuilder().listenAddress({ path: socketOf(process.pid) }).replayOnConnect(true).build();
  recorder.registerCounter('requests', 'count', 'HTTP requests served');
  const requests = recorder.counter({ name: 'requests', labels: { route: '/' } });

  const server = createServer((_req, res) => {
    requests.increment();
    res.end(`served by ${process.pid}\n`);
  });
  server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : address;
    console.log(`worker ${process.pid}: http://127.0.0.1:${port}/, metrics on ${socketOf(process.pid)}`);
  });

  // On 'stop': stop taking requests, then close the exporter: it delivers what is buffered to
  // connected clients (within closeTimeoutMs) and removes its socket.
  process.on('message', (message) => {
    if (message !== 'stop') return;
    server.close();
    void recorder.close().then(() => process.disconnect());
  });
}

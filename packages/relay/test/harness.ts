// What the relay's tests share: a real Prometheus scraping the relay, the paced app in a child
// process, and reading the relay's /metrics.
import { spawn } from 'node:child_process';
import { createServer as createHttpServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions } from 'node:https';
import { createConnection, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { createInterface } from 'node:readline';
import type { ExporterStats } from 'metrics-exporter-tcp';
import { startRelay, type Relay } from '../src/run.js';
import type { Command } from './fixtures/paced-app.js';

import { startPrometheus, type PrometheusOptions, type PrometheusServer } from 'metrics-exporter-tcp-test-support/prometheus';

export { NO_PROMETHEUS, PROMETHEUS } from 'metrics-exporter-tcp-test-support/prometheus';

export async function freePort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** startRelay's options for a test: quiet, seed protocol, unless `extra` says otherwise. */
export function relayOptions(connect: string[], extra: Partial<Parameters<typeof startRelay>[0]>): Parameters<typeof startRelay>[0] {
  return { connect, protocol: 'seed', otlpIntervalMs: 200, maxSeries: 100_000, log: new PassThrough().resume(), ...extra };
}

/** The value of the sample `series` (name{labels} as written) in an exposition, if present. */
export function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** A log stream for a relay, and everything written to it so far. */
export function logSink(): { log: PassThrough; readonly text: string } {
  const log = new PassThrough();
  let text = '';
  log.on('data', (d) => (text += d));
  return {
    log,
    get text() {
      return text;
    },
  };
}

/** The relay's /metrics text. */
export async function scrape(relay: Relay): Promise<string> {
  const a = relay.prometheus!.address as { host: string; port: number };
  return (await fetch(`http://${a.host}:${a.port}/metrics`)).text();
}

/**
 * A relay of `connect` serving /metrics, and a Prometheus scraping it; both closed after the
 * test `t`.
 */
export async function relayScrapedByPrometheus(
  t: { after(fn: () => unknown): void },
  connect: string[],
  extra: Partial<Parameters<typeof startRelay>[0]> = {},
  prometheus: PrometheusOptions = {},
): Promise<{ relay: Relay; prom: PrometheusServer }> {
  const relay = await startRelay(relayOptions(connect, { prometheus: '127.0.0.1:0', ...extra }));
  t.after(() => relay.close());
  const prom = await prometheusScraping(relay, prometheus);
  t.after(() => prom.close());
  return { relay, prom };
}

/** A Prometheus scraping `relay` every second (job `relay`). */
export function prometheusScraping(relay: Relay, options: PrometheusOptions = {}): Promise<PrometheusServer> {
  const target = relay.prometheus!.address as { host: string; port: number };
  return startPrometheus([`${target.host}:${target.port}`], { jobName: 'relay', ...options });
}

/** The paced app (fixtures/paced-app.ts) in a child process. */
export interface PacedApp {
  /** `host:port`, or the socket path. */
  readonly address: string;
  /** Runs a command; resolves with the exporter's stats once it is done. */
  send(c: Command): Promise<ExporterStats>;
  kill(): void;
}

export async function pacedApp(path?: string): Promise<PacedApp> {
  const child = spawn(process.execPath, [new URL('./fixtures/paced-app.js', import.meta.url).pathname, ...(path === undefined ? [] : [path])], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => {
    const r = await lines.next();
    if (r.done === true) throw new Error('the paced app exited');
    return JSON.parse(r.value) as unknown;
  };
  const a = (await next()) as { host: string; port: number } | { path: string };
  return {
    address: 'path' in a ? a.path : `${a.host}:${a.port}`,
    async send(c) {
      child.stdin!.write(`${JSON.stringify(c)}\n`);
      return (await next()) as ExporterStats;
    },
    kill: () => child.kill(),
  };
}

/** A data point as the OTLP/HTTP JSON encoding writes it. */
export type OtlpPoint = {
  attributes: { key: string; value: { stringValue?: string } }[];
  startTimeUnixNano: string;
  asDouble?: number;
  asInt?: string | number;
  count?: string | number;
  /** Exponential histograms: the scale, zero bucket, and dense buckets above and below zero. */
  scale?: number;
  zeroCount?: string | number;
  positive?: { offset?: number; bucketCounts?: (string | number)[] };
  negative?: { offset?: number; bucketCounts?: (string | number)[] };
};

/**
 * A loopback OTLP/HTTP receiver keeping every export (and its request's headers); over HTTPS
 * with `tls` (`node:https` server options).
 */
export async function otlpReceiver(tls?: ServerOptions): Promise<{ url: string; latest(name: string): OtlpPoint[]; headers: IncomingHttpHeaders[]; close(): Promise<void> }> {
  type Points = { dataPoints: OtlpPoint[] };
  type Metric = { name: string; sum?: Points; gauge?: Points; histogram?: Points; exponentialHistogram?: Points };
  const bodies: { resourceMetrics: { scopeMetrics: { metrics: Metric[] }[] }[] }[] = [];
  const headers: IncomingHttpHeaders[] = [];
  const receive = (req: IncomingMessage, res: ServerResponse) => {
    let data = '';
    req.on('data', (d) => (data += d));
    req.on('end', () => {
      if (req.url === '/v1/metrics') {
        bodies.push(JSON.parse(data));
        headers.push(req.headers);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  };
  const server = tls === undefined ? createHttpServer(receive) : createHttpsServer(tls, receive);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${(server.address() as { port: number }).port}/v1/metrics`,
    headers,
    /** The points of metric `name` in the last export that has it. */
    latest(name) {
      for (let i = bodies.length - 1; i >= 0; i--) {
        for (const rm of bodies[i]!.resourceMetrics) for (const sm of rm.scopeMetrics) for (const m of sm.metrics) {
          if (m.name === name) return (m.sum ?? m.gauge ?? m.histogram ?? m.exponentialHistogram)!.dataPoints;
        }
      }
      return [];
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A TCP proxy to `upstream` (`host:port`) whose connections the test can cut, and which can refuse new ones. */
export interface CuttableProxy {
  readonly address: string;
  /** While true, new connections are closed at once. */
  refuse: boolean;
  /** What each connection carried from upstream to its client, in the order the connections came. */
  readonly delivered: Buffer[][];
  /** Destroys every open connection (both sides). */
  cut(): void;
  close(): Promise<void>;
}

export async function cuttableProxy(upstream: string): Promise<CuttableProxy> {
  const at = upstream.lastIndexOf(':');
  const [host, port] = [upstream.slice(0, at), Number(upstream.slice(at + 1))];
  const open = new Set<Socket>();
  const server: Server = createTcpServer((down) => {
    if (proxy.refuse) return void down.destroy();
    const up = createConnection(port, host);
    const delivered: Buffer[] = [];
    proxy.delivered.push(delivered);
    for (const s of [down, up]) {
      open.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        open.delete(s);
        down.destroy();
        up.destroy();
      });
    }
    // Written to the client as it arrives, so `delivered` is exactly what the client was sent.
    up.on('data', (chunk: Buffer) => {
      delivered.push(chunk);
      down.write(chunk);
    });
    down.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const proxy: CuttableProxy = {
    address: `127.0.0.1:${(server.address() as { port: number }).port}`,
    refuse: false,
    delivered: [],
    cut() {
      for (const s of open) s.destroy();
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
  return proxy;
}

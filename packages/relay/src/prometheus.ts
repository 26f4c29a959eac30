// Serves the relay's series to Prometheus: GET /metrics in the text exposition format. Scrapes
// that arrive while one is being collected share its rendering; each is written chunk by chunk
// as its socket takes it; beyond `maxRequests` in flight the answer is 503 at once.
import { createServer, type ServerResponse } from 'node:http';
import type { BoundAddress, ListenAddress } from 'metrics-exporter-tcp';
import { TEXT_CONTENT_TYPE } from 'metrics-exporter-tcp/client';

/** The relay's GET /metrics server. */
export interface PrometheusEndpoint {
  /** What was bound (the real port when 0 was asked). */
  readonly address: BoundAddress;
  /**
   * Requests for /metrics so far, renderings made for them (one for every burst of requests
   * that arrive together), and requests answered 503 because `maxRequests` were in flight.
   */
  stats(): { requests: number; renders: number; rejected: number };
  /** Stops serving. */
  close(): Promise<void>;
}

/** What /metrics shows: collects what it needs, then renders it as chunks (pulled as they are written). */
export type Renderer = () => Promise<Iterator<Buffer>>;

/** A socket that takes nothing for this long is closed (a stalled scraper holds one frozen copy, not forever). */
const IDLE_MS = 60_000;

/**
 * Starts the /metrics endpoint.
 * @param maxRequests scrapes in flight at most (like node_exporter's `--web.max-requests`); 0: no limit.
 */
export async function servePrometheus(render: Renderer, listen: ListenAddress, maxRequests: number): Promise<PrometheusEndpoint> {
  const stats = { requests: 0, renders: 0, rejected: 0 };
  let inFlight = 0;
  /** The scrapes waiting for the rendering under way. */
  let waiting: ServerResponse[] | undefined;

  const scrape = (res: ServerResponse) => {
    if (waiting !== undefined) return void waiting.push(res);
    const group = (waiting = [res]);
    render().then(
      (chunks) => {
        waiting = undefined;
        stats.renders++;
        void stream(group, chunks);
      },
      (err: Error) => {
        waiting = undefined;
        for (const r of group) r.writeHead(500).end(`${err.message}\n`);
      },
    );
  };

  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found: GET /metrics\n');
      return;
    }
    stats.requests++;
    if (maxRequests > 0 && inFlight >= maxRequests) {
      stats.rejected++;
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' }).end(`more than ${maxRequests} scrapes in flight\n`);
      return;
    }
    inFlight++;
    res.once('close', () => inFlight--);
    scrape(res);
  });
  server.timeout = IDLE_MS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if ('path' in listen) server.listen(listen.path, resolve);
    else server.listen(listen.port, listen.host, resolve);
  });
  const a = server.address();
  const address: BoundAddress = 'path' in listen ? listen : { host: listen.host, port: typeof a === 'object' && a ? a.port : listen.port };
  return {
    address,
    stats: () => ({ ...stats }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

/**
 * Writes `chunks` to every response of `group`, the next chunk once every response still open
 * has taken the last (a response whose socket closes leaves the group).
 */
async function stream(group: ServerResponse[], chunks: Iterator<Buffer>): Promise<void> {
  for (const res of group) res.writeHead(200, { 'content-type': TEXT_CONTENT_TYPE });
  for (let next = chunks.next(); !next.done; next = chunks.next()) {
    const chunk = next.value;
    const full: Promise<void>[] = [];
    for (const res of group) {
      if (res.destroyed || res.write(chunk)) continue;
      full.push(new Promise((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      }));
    }
    if (full.length > 0) await Promise.all(full);
  }
  for (const res of group) if (!res.destroyed) res.end();
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { BoundAddress } from '../../shared/address.js';
import { CONTENT_TYPES, negotiate, type Format } from '../../client/exposition-format.js';

/** Scrapes served at once; past them, 503 (a Prometheus scrapes one at a time). */
const MAX_SCRAPES = 4;
/** How long a request may take to send its headers, and in all (a scrape's own is far shorter). */
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 60_000;

/** What a scrape is served: the exposition as chunks, made as they are pulled. */
export type Render = (format: Format) => Iterator<Buffer>;

/**
 * `GET /metrics` of the exporter's own Prometheus endpoint, served by the transport worker:
 * rendering costs the app's threads nothing. The exposition is written in chunks, with
 * backpressure, yielding to the worker's event loop between them, so that a large scrape never
 * stops the worker draining the rings for long.
 */
export class ScrapeEndpoint {
  private scrapes = 0;

  private constructor(private readonly server: Server) {}

  /** Binds `host:port`; rejects with the OS error. */
  static listen(host: string, port: number, render: Render): Promise<{ endpoint: ScrapeEndpoint; address: BoundAddress }> {
    const server = createServer();
    server.headersTimeout = HEADERS_TIMEOUT_MS;
    server.requestTimeout = REQUEST_TIMEOUT_MS;
    const endpoint = new ScrapeEndpoint(server);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => void endpoint.serve(req, res, render));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, () => {
        server.off('error', reject);
        const a = server.address();
        resolve({ endpoint, address: { host, port: typeof a === 'object' && a !== null ? a.port : port } });
      });
    });
  }

  private async serve(req: IncomingMessage, res: ServerResponse, render: Render): Promise<void> {
    const path = req.url?.split('?')[0];
    if (path !== '/metrics') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { allow: 'GET, HEAD' }).end();
    if (this.scrapes >= MAX_SCRAPES) return void res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' }).end('too many scrapes at once\n');
    this.scrapes++;
    try {
      const format = negotiate(req.headers.accept);
      res.writeHead(200, { 'content-type': CONTENT_TYPES[format] });
      if (req.method === 'HEAD') return void res.end();
      const chunks = render(format);
      for (let c = chunks.next(); c.done !== true && !res.destroyed; c = chunks.next()) {
        if (!res.write(c.value)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
        else await yieldToLoop(); // the rings are drained between chunks
      }
      res.end();
    } catch {
      res.destroy(); // the scraper went away, or rendering failed: the response ends cut, never half-true
    } finally {
      this.scrapes--;
    }
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

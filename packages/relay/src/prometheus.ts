// Serves the relay's series to Prometheus: GET /metrics in the text exposition format, over HTTP
// or, with a web config, HTTPS with client certificates and basic auth as exporter-toolkit does.
// Scrapes that arrive while one is being collected or written (up to a second after it began)
// share its rendering; each is written chunk by chunk as its socket takes it; beyond
// `maxRequests` in flight the answer is 503 at once.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { BoundAddress, ListenAddress } from 'metrics-exporter-tcp';
import { CONTENT_TYPES, formatAddress, negotiate } from 'metrics-exporter-tcp/client';
import { BasicAuth, type AuthResult } from './basic-auth.js';
import { clientsAuthenticate, type WebConfig } from './web-config.js';

/** The relay's GET /metrics server. */
export interface PrometheusEndpoint {
  /** What was bound (the real port when 0 was asked). */
  readonly address: BoundAddress;
  /**
   * Requests for /metrics so far, renderings made for them (one for every burst of concurrent
   * requests), and requests answered 503 because `maxRequests` were in flight.
   */
  stats(): { requests: number; renders: number; rejected: number };
  /**
   * Serves new connections with `config` from now on (users, headers, certificates and client
   * certificate policy; connections open keep theirs).
   * @throws TypeError when it would switch between HTTP and HTTPS (that needs a restart).
   */
  reconfigure(config: WebConfig): void;
  /** Stops serving. */
  close(): Promise<void>;
}

/** The formats /metrics serves: text 0.0.4, and protobuf for a scraper that asks for it (the only one with native histograms). */
export type RelayFormat = 'text' | 'protobuf';
const FORMATS: readonly RelayFormat[] = ['text', 'protobuf'];

/** What /metrics shows: collects what it needs, then renders it in `format` as chunks (pulled as they are written). */
export type Renderer = (format: RelayFormat) => Promise<Iterator<Buffer>>;

/** A socket that takes nothing for this long is closed (a stalled scraper holds up no one, and not forever). */
const IDLE_MS = 60_000;
/** A scrape that arrives while a rendering is being written, at most this long after it began, is answered with it. */
const JOIN_MS = 1000;
/** Bytes a response buffers before waiting for its socket to take them (backpressure, not one wait per chunk). */
const BUFFERED = 1024 * 1024;

/**
 * One rendering, written to every scrape that joins it (while it is being written, for up to a
 * second): chunks are made as the fastest of them needs them and kept for the others; once no
 * more may join, those every one has written go.
 */
class Rendering {
  private readonly chunks: (Buffer | undefined)[] = [];
  private done = false;
  private readonly members = new Set<{ at: number }>();
  private open = true;

  constructor(
    private readonly source: Iterator<Buffer>,
    private readonly format: RelayFormat,
  ) {
    setTimeout(() => {
      this.open = false;
      this.release();
    }, JOIN_MS).unref();
  }

  /** Whether a scrape arriving now may be answered with it: it is being written, and began less than a second ago. */
  get joinable(): boolean {
    return this.open && this.members.size > 0;
  }

  /** Writes the whole rendering to `res`, chunk by chunk as its socket takes them. */
  async write(res: ServerResponse): Promise<void> {
    const me = { at: 0 };
    this.members.add(me);
    res.writeHead(200, { 'content-type': CONTENT_TYPES[this.format] });
    try {
      for (let chunk = this.chunk(0); chunk !== undefined; chunk = this.chunk(++me.at)) {
        if (res.destroyed) return;
        res.write(chunk);
        if (res.writableLength > BUFFERED) await drained(res);
        this.release();
      }
      if (!res.destroyed) res.end();
    } finally {
      this.members.delete(me);
      this.release();
    }
  }

  /** Chunk `i`, made if it is the next; `undefined` past the end. */
  private chunk(i: number): Buffer | undefined {
    while (i >= this.chunks.length && !this.done) {
      const next = this.source.next();
      if (next.done) this.done = true;
      else this.chunks.push(next.value);
    }
    return this.chunks[i];
  }

  /** Forgets the chunks every member has written, once no one else may join. */
  private release(): void {
    if (this.joinable) return;
    let min = this.chunks.length;
    for (const m of this.members) min = Math.min(min, m.at);
    for (let i = min - 1; i >= 0 && this.chunks[i] !== undefined; i--) this.chunks[i] = undefined;
  }
}

/** Resolves when `res` can take more, or is closed. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** How /metrics is served, besides where. */
export interface WebOptions {
  /** Scrapes in flight at most (like node_exporter's `--web.max-requests`); 0: no limit. */
  readonly maxRequests: number;
  /** TLS, client certificates, basic auth and headers (`--web-config-file`). */
  readonly config?: WebConfig;
}

/** A request's headers must all arrive within this (a client that trickles them holds a socket no longer). */
const HEADERS_MS = 10_000;
/** A request must have arrived whole within this. */
const REQUEST_MS = 30_000;
/** A TLS handshake must be done within this. */
const HANDSHAKE_MS = 10_000;

/**
 * Starts the /metrics endpoint: HTTPS when `web.config` has TLS, basic auth when it has users.
 * Binding a wildcard address warns (a process warning) unless clients must authenticate.
 */
export async function servePrometheus(render: Renderer, listen: ListenAddress, web: WebOptions): Promise<PrometheusEndpoint> {
  const { maxRequests } = web;
  let config = web.config;
  const stats = { requests: 0, renders: 0, rejected: 0 };
  let inFlight = 0;
  /** Per format, the rendering under way (being collected, or written), while scrapes may join it. */
  const renderings = new Map<RelayFormat, { current: Promise<Rendering> | undefined; latest: Rendering | undefined }>(FORMATS.map((f) => [f, { current: undefined, latest: undefined }]));

  const scrape = (req: IncomingMessage, res: ServerResponse) => {
    const format = negotiate(req.headers.accept, FORMATS) as RelayFormat;
    const r = renderings.get(format)!;
    if (r.current === undefined || (r.latest !== undefined && !r.latest.joinable)) {
      r.current = render(format).then((chunks) => {
        stats.renders++;
        return (r.latest = new Rendering(chunks, format));
      });
      r.latest = undefined;
    }
    r.current.then(
      (rendering) => rendering.write(res),
      (err: Error) => {
        r.current = undefined;
        if (!res.headersSent) res.writeHead(500).end(`${err.message}\n`);
      },
    );
  };

  const serve = (req: IncomingMessage, res: ServerResponse) => {
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
    scrape(req, res);
  };

  const basicAuth = (c: WebConfig | undefined) => (c !== undefined && c.users.size > 0 ? new BasicAuth(c.users) : undefined);
  let auth = basicAuth(config);
  const answer = (req: IncomingMessage, res: ServerResponse, r: AuthResult) => {
    if (r === 'ok') return serve(req, res);
    if (r === 'busy') return void res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '1' }).end('too many password checks waiting\n');
    res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Basic' }).end('Unauthorized\n');
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    for (const [name, value] of Object.entries(config?.headers ?? {})) res.setHeader(name, value);
    if (auth === undefined) return serve(req, res);
    const r = auth.check(req.headers.authorization, req.socket.remoteAddress ?? '');
    if (typeof r === 'string') answer(req, res, r);
    else void r.then((x) => !res.destroyed && answer(req, res, x));
  };
  const server = config?.tls === undefined ? createServer(handler) : secureServer(() => config!.tls!, handler);
  server.timeout = IDLE_MS;
  server.headersTimeout = HEADERS_MS;
  server.requestTimeout = REQUEST_MS;
  if ('host' in listen && WILDCARDS.has(listen.host) && !clientsAuthenticate(config)) {
    const how = config?.tls === undefined ? (auth === undefined ? 'unauthenticated and unencrypted' : 'with basic auth over plain HTTP (passwords readable on the network)') : 'by anyone who can connect (TLS without basic auth or verified client certificates)';
    process.emitWarning(`metrics-exporter-tcp-relay serves /metrics on ${formatAddress(listen)}: metrics become readable from the network, ${how}`, { code: 'MTCP_WILDCARD_LISTEN' });
  }
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
    reconfigure(next) {
      if ((next.tls === undefined) !== (config?.tls === undefined)) throw new TypeError(`switching /metrics between HTTP and HTTPS needs a restart`);
      if (next.tls !== undefined) {
        const s = server as HttpsServer;
        s.setSecureContext(secureContext(next.tls));
        Object.assign(s, clientPolicy(next.tls));
      }
      const old = auth;
      auth = basicAuth(next);
      void old?.close();
      config = next;
    },
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await auth?.close();
    },
  };
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/**
 * An HTTPS server with exporter-toolkit's client certificate policies: node:tls verifies
 * `RequireAndVerifyClientCert` in the handshake; the others (and `client_allowed_sans`) are
 * applied as soon as it is done, before a byte of HTTP is read.
 */
function secureServer(tls: () => WebTls, handler: (req: IncomingMessage, res: ServerResponse) => void): HttpsServer {
  const server = createHttpsServer({ ...secureContext(tls()), ...clientPolicy(tls()), handshakeTimeout: HANDSHAKE_MS }, handler);
  server.on('secureConnection', (socket: TLSSocket) => {
    const t = tls();
    if (t.clientAuth === 'NoClientCert') return;
    const peer = socket.getPeerCertificate();
    const given = peer !== null && Object.keys(peer).length > 0;
    const refuse =
      (t.clientAuth === 'RequireAnyClientCert' && !given) ||
      (t.clientAuth === 'VerifyClientCertIfGiven' && given && !socket.authorized) ||
      (t.allowedSans !== undefined && given && !sans(peer.subjectaltname).some((s) => t.allowedSans!.includes(s)));
    if (refuse) socket.destroy();
  });
  return server;
}

type WebTls = NonNullable<WebConfig['tls']>;

/** The server's certificate, key, client authorities and TLS versions. */
const secureContext = (t: WebTls) => ({ cert: t.cert, key: t.key, ca: t.ca, minVersion: t.minVersion, maxVersion: t.maxVersion });

/** Whether node:tls asks for client certificates, and refuses the handshake when one does not verify. */
const clientPolicy = (t: WebTls) => ({ requestCert: t.clientAuth !== 'NoClientCert', rejectUnauthorized: t.clientAuth === 'RequireAndVerifyClientCert' });

/** The values of a certificate's subjectAltName as node:tls spells it (`DNS:a, IP Address:1.2.3.4, email:…, URI:…`). */
function sans(subjectaltname: string | undefined): string[] {
  return (subjectaltname ?? '').split(', ').map((s) => s.slice(s.indexOf(':') + 1)).filter((s) => s !== '');
}

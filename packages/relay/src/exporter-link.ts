// One exporter, read by the relay: connects (and reconnects with back-off), and applies what
// each connection sends to the exporter's series as it arrives, in the socket's own callback.
import { lstat } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { parseListenAddress, type ClientProtocol } from 'metrics-exporter-tcp/client';
import { REFUSED_AFTER_HANDSHAKE, connectTls, handshakeFailure, type LinkTls } from './link-tls.js';
import { socketRefusal } from './socket-glob.js';
import type { ExporterSeries } from './store.js';

/**
 * Where an exporter link is. `malformed`: its last stream was malformed, and it is retried
 * after a long back-off; `removed`: no longer wanted (a socket path that went away).
 */
export type LinkState = 'connecting' | 'connected' | 'reconnecting' | 'malformed' | 'removed';

/** Decodes one connection's bytes into an exporter's series. */
export interface StreamApplier {
  /**
   * Applies every event `chunk` completes, stamped `nowMs`; returns how many. A frame may be
   * cut anywhere between chunks.
   * @throws ClientError when the stream is malformed (the events before the bad frame are applied).
   */
  push(chunk: Uint8Array, nowMs: number): number;
}

/** Makes the applier of one connection (a new one per connection: a restarted exporter may speak the other format). */
export type ApplierFactory = (target: ExporterSeries, protocol: ClientProtocol | 'auto') => StreamApplier;

/** What an {@link ExporterLink} needs besides its address. */
export interface LinkOptions {
  readonly protocol: ClientProtocol | 'auto';
  readonly applier: ApplierFactory;
  readonly log: (line: string) => void;
  /** The first delay before connecting again after a malformed stream, in ms; it doubles each time, up to 10 minutes. */
  readonly malformedRetryMs: number;
  /**
   * For a socket a glob found: the uids it may belong to. Before each connection the path is
   * checked again (`lstat`): a link, or another owner's socket, put there since it was found is
   * not connected to.
   */
  readonly owners?: ReadonlySet<number>;
  /** Connect over TLS. */
  readonly tls?: LinkTls;
}

/**
 * An exporter's address: a unix socket path (starting with `/` or `.`), `host:port` or `[v6]:port`.
 * @throws TypeError when it is none of these, or its port is 0.
 */
export function parseExporterAddress(address: string): { host: string; port: number } | { path: string } {
  if (address.startsWith('/') || address.startsWith('.')) return { path: address };
  const a = parseListenAddress(address) as { host: string; port: number };
  if (a.port === 0) throw new TypeError(`exporter address ${address}: port must be from 1 to 65535`);
  return a;
}

const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 5000;
const MAX_MALFORMED_DELAY_MS = 10 * 60_000;
/** Over TLS 1.3, a connection the exporter neither refused nor sent anything on for this long is taken as accepted. */
const TLS13_ACCEPT_MS = 2000;

/** Up to `max`, `first` doubled `attempts` times, randomized to 50–100 %. */
const backoff = (first: number, max: number, attempts: number) => Math.min(max, first * 2 ** Math.min(attempts, 30)) * (0.5 + Math.random() / 2);

/**
 * Reads one exporter into `target`. Every connection has a generation: a connection's bytes are
 * applied only while it is the current one, and a new connection resets the exporter's
 * counters and histograms before its first byte, so nothing of an old connection is ever
 * applied after the reset (a reconnect is exactly a counter reset). A malformed stream ends its
 * connection and forgets the exporter's series; the exporter is tried again after a long
 * back-off (whoever held its port for a moment must not disable it for good).
 */
export class ExporterLink {
  state: LinkState = 'connecting';
  /** Events applied, over every connection. */
  events = 0;
  /** Connections made. */
  connects = 0;
  /** Connections that ended on a malformed stream. */
  decodeErrors = 0;
  /** Since when (ms since the epoch) it has not been connected; undefined while connected. */
  downSince: number | undefined = Date.now();
  private generation = 0;
  private attempts = 0;
  /** Malformed streams in a row (the back-off after the next one doubles with each). */
  private malformedInARow = 0;
  private socket: Socket | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed: Promise<void> | undefined;
  private readonly target: { host: string; port: number } | { path: string };
  /** Why the last check of the path refused it (said once until it changes). */
  private refusal: string | undefined;
  /** Why the last TLS handshake failed (said once until it changes, or a connection is accepted). */
  private failure: string | undefined;

  /** @throws TypeError for a malformed address. */
  constructor(
    readonly address: string,
    readonly series: ExporterSeries,
    private readonly o: LinkOptions,
  ) {
    this.target = parseExporterAddress(address);
    this.open();
  }

  /** Disconnects and stops reconnecting; the series stay. Resolves once the socket is closed. */
  close(): Promise<void> {
    if (this.closed === undefined) {
      this.state = 'removed'; // (if its socket path comes back, it is read afresh)
      this.downSince ??= Date.now();
      clearTimeout(this.retryTimer);
      const socket = this.socket;
      this.closed = socket === undefined ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
      socket?.destroy();
    }
    return this.closed;
  }

  /** Connects, once the path (of a socket a glob found) is still a socket of an owner allowed. */
  private open(): void {
    const owners = this.o.owners;
    if (owners === undefined || !('path' in this.target)) return this.connect();
    const generation = this.generation;
    // (A path that is gone, or not a socket, fails to connect as it would have.)
    void lstat(this.target.path).then((st) => socketRefusal(st, owners), () => undefined).then((why) => {
      if (this.closed !== undefined || generation !== this.generation) return;
      if (why === undefined || why === null) return this.connect();
      if (why !== this.refusal) this.o.log(`relay: ${this.address}: not connecting, ${why}`);
      this.refusal = why;
      this.state = 'reconnecting';
      this.retryTimer = setTimeout(() => this.open(), backoff(FIRST_DELAY_MS, MAX_DELAY_MS, this.attempts++));
    });
  }

  private connect(): void {
    this.refusal = undefined;
    const generation = ++this.generation;
    const t = this.o.tls;
    const socket = t !== undefined ? connectTls(this.target, t) : 'path' in this.target ? connect(this.target.path) : connect(this.target.port, this.target.host);
    this.socket = socket;
    const applier = this.o.applier(this.series, this.o.protocol);
    let malformed: Error | undefined;
    let delivered = false;
    let socketError: Error | undefined;
    /** The exporter took the connection: its counters start again from here. */
    let accepted = false;
    const accept = () => {
      if (accepted || generation !== this.generation || this.socket !== socket) return;
      accepted = true;
      this.failure = undefined;
      this.series.reset(Date.now());
      this.state = 'connected';
      this.connects++;
      this.downSince = undefined;
      this.o.log(`relay: connected to ${this.address}${t === undefined ? '' : ' over TLS'}`);
    };
    // Over TLS: reached, but no accepted connection, means the handshake failed.
    let reached = false;
    let secured = false;
    let acceptTimer: NodeJS.Timeout | undefined;
    if (t === undefined) socket.on('connect', accept);
    else {
      socket.once('connect', () => (reached = true));
      socket.once('secureConnect', () => {
        secured = true;
        // TLS 1.2: the exporter checked the relay's certificate before finishing its side. TLS 1.3:
        // it checks it after the relay's side, then sends session tickets, or closes.
        if ((socket as TLSSocket).getProtocol() !== 'TLSv1.3') return accept();
        socket.once('session', accept);
        acceptTimer = setTimeout(accept, TLS13_ACCEPT_MS);
      });
    }
    socket.on('data', (chunk: Buffer) => {
      if (generation !== this.generation || malformed !== undefined) return;
      accept();
      this.attempts = 0;
      try {
        const n = applier.push(chunk, Date.now());
        this.events += n;
        delivered ||= n > 0;
      } catch (err) {
        malformed = err as Error;
        socket.destroy();
      }
    });
    socket.on('error', (err) => (socketError ??= err)); // 'close' follows and says what to do
    socket.on('close', () => {
      clearTimeout(acceptTimer);
      if (generation !== this.generation) return;
      this.socket = undefined;
      if (this.closed !== undefined) return;
      if (t !== undefined && reached && !accepted) {
        // Said once per reason, not at every attempt; up stays 0.
        const why = socketError !== undefined ? handshakeFailure(socketError) : secured ? REFUSED_AFTER_HANDSHAKE : 'the exporter closed the connection during the handshake';
        if (why !== this.failure) this.o.log(`relay: TLS handshake with ${this.address} failed: ${why}; trying again with back-off`);
        this.failure = why;
      }
      this.downSince ??= Date.now();
      if (malformed !== undefined) {
        const err = malformed as Error & { code?: string };
        this.state = 'malformed';
        this.decodeErrors++;
        this.series.clear(); // what a malformed stream said is not published
        const delay = backoff(this.o.malformedRetryMs, MAX_MALFORMED_DELAY_MS, this.malformedInARow++);
        this.o.log(`relay: ${this.address} sent a malformed stream (${err.code ?? err.name}): ${err.message}; trying again in ${Math.round(delay / 1000)} s`);
        this.retryTimer = setTimeout(() => this.open(), delay);
        return;
      }
      if (delivered) this.malformedInARow = 0;
      this.state = 'reconnecting';
      this.retryTimer = setTimeout(() => this.open(), backoff(FIRST_DELAY_MS, MAX_DELAY_MS, this.attempts++));
    });
  }
}

// TcpClient: connects to an exporter and yields what it sends, decoded.
import { EventEmitter } from 'node:events';
import { connect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { certificate, certificates, privateKey, type Pem } from '../shared/pem.js';
import { formatAddress, parseListenAddress, type ListenAddress } from '../shared/address.js';
import { ClientError } from './errors.js';
import type { ClientEvent } from './events.js';
import { MetricReader } from './metric-reader.js';
import type { ClientProtocol } from './protocol.js';

/** Where to connect: `'host:port'`, `'[v6]:port'`, a unix socket path starting with `/` or `.`, `{ host, port }` or `{ path }`. */
export type ClientAddress = string | { readonly host: string; readonly port: number } | { readonly path: string };

/** Back-off between reconnection attempts. */
export interface ReconnectOptions {
  /** The delay before the first attempt, in ms. Default 100. */
  initialDelayMs?: number;
  /** The longest delay, in ms. Default 5000 (or `initialDelayMs` if that is more). */
  maxDelayMs?: number;
}

export interface ClientOptions {
  /**
   * The wire format the exporter speaks. Default `'seed'`. `'auto'` tells from the first metric
   * frame of each connection (the formats differ in the value field's wire type; metadata
   * frames are the same in both).
   */
  protocol?: ClientProtocol | 'auto';
  /**
   * Whether to connect again when the connection cannot be made, fails or ends. Default
   * `false`: iteration then ends when the connection ends, and throws a `ClientError` code
   * `CONNECT` when it could not be made or failed. `true`, or `{ initialDelayMs, maxDelayMs }`:
   * the delay doubles after every attempt up to `maxDelayMs`, each one randomized to 50–100 %
   * of its value, and starts over once a connection delivers a frame. A malformed stream is
   * never retried.
   */
  reconnect?: boolean | ReconnectOptions;
  /**
   * The largest frame accepted, in bytes. Default 16 MiB. A larger length prefix is a
   * `ClientError` code `FRAME_TOO_LARGE`, and closes the client.
   */
  maxFrameBytes?: number;
  /**
   * Skip frames over `maxFrameBytes` (counted in `reader.tooLargeFrames`) instead of closing
   * the client with `FRAME_TOO_LARGE`. Default `false`.
   */
  skipOversized?: boolean;
  /**
   * The most distinct keys (name + labels) the client's {@link MetricReader} remembers; frames
   * of further keys are skipped and counted in `reader.refusedFrames`. Default 65 536.
   */
  maxKeys?: number;
  /** The most bytes of keys the client's {@link MetricReader} remembers, likewise. Default 16 MiB. */
  maxKeyBytes?: number;
  /** Connect over TLS (to an exporter built with `tls()`); see {@link ClientTlsOptions}. */
  tls?: ClientTlsOptions;
}

/**
 * TLS for a client (`node:tls`): the exporter's certificate is always verified. PEM as
 * `node:tls` takes it; each is checked when the client is made (a `TypeError` names the option).
 */
export interface ClientTlsOptions {
  /** Authorities the exporter's certificate must be signed by. Default: Node's bundled ones. */
  ca?: Pem | readonly Pem[];
  /** This client's certificate, for an exporter that requires one (with `key`). */
  cert?: Pem;
  /** This client's private key (with `cert`). */
  key?: Pem;
  /** The name the exporter's certificate must carry. Default: the address's host (an IP address is checked against the certificate's IP addresses). */
  servername?: string;
  /** How long a TLS handshake may take, in ms; then the attempt fails (code `TLS`). Default 10 000. */
  handshakeTimeoutMs?: number;
}

const DEFAULT_TLS_HANDSHAKE_MS = 10_000;
/**
 * Over TLS 1.3 an exporter that refuses a client's certificate does so after the client's side
 * of the handshake, and node:tls closes the connection without saying why: a connection that
 * ends this soon after its handshake with not a byte is taken for that.
 */
const REFUSED_AFTER_HANDSHAKE_MS = 2000;

/** The events a {@link TcpClient} emits. */
export type ClientEmitterEvents = {
  /** A connection was made. */
  connect: [];
  /**
   * A connection ended, or an attempt to connect failed: `err` is why (undefined for a clean
   * end, or `close()`).
   */
  disconnect: [err: ClientError | undefined];
  /**
   * The client stopped on an error: a malformed stream, or (without `reconnect`) a connection
   * that could not be made or failed. The same error that iteration throws. Emitted only
   * when there is a listener, so an unheard error never crashes the process.
   */
  error: [err: ClientError];
};

/** Decoded events waiting beyond this pause the socket… */
const PAUSE_ABOVE = 10_000;
/** …until the consumer brings them down to this. */
const RESUME_AT = PAUSE_ABOVE / 2;

/**
 * Connects to an exporter and yields what it sends, decoded:
 *
 * ```ts
 * const client = new TcpClient('127.0.0.1:5000', { reconnect: true });
 * for await (const e of client) if (e.kind === 'metric') console.log(e.name, e.op);
 * ```
 *
 * It connects at once. Events are queued until they are read; when more than 10 000 wait, the
 * socket is paused (the exporter then drops frames for this client, not the app's records).
 * Iterate it once: leaving the loop early (`break`, `return`, a throw) closes the client.
 *
 * To keep up with an exporter's millions of events per second, read frames in place with
 * {@link consume} instead (no event object per frame):
 *
 * ```ts
 * const model = new SeriesModel({ histogram: () => new MyBuckets() });
 * const feed = model.feed();
 * await client.consume((reader) => feed.drain(reader));
 * ```
 */
export class TcpClient extends EventEmitter<ClientEmitterEvents> implements AsyncIterable<ClientEvent>, AsyncDisposable {
  private readonly address: { host: string; port: number } | { path: string };
  /** Decodes every connection's stream; its interned keys outlive reconnections. */
  readonly reader: MetricReader;
  /** Set by the first of iteration, {@link consume}, or data arriving (then iteration). */
  private mode: 'iterate' | 'consume' | undefined;
  private sink: ((reader: MetricReader) => void) | undefined;
  private readonly backoff: Required<ReconnectOptions> | undefined;
  private attempts = 0;
  private socket: Socket | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private queue: ClientEvent[] = [];
  private head = 0;
  /** Set once no more events will come; `failure` is then what iteration throws, if anything. */
  private ended = false;
  private failure: Error | undefined;
  private closed: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private iterated = false;
  private readonly tls: ReturnType<typeof checkClientTls> | undefined;

  /**
   * @throws TypeError for a malformed address or protocol; RangeError for out-of-range
   *   delays or `maxFrameBytes`.
   */
  constructor(address: ClientAddress, options: ClientOptions = {}) {
    super();
    this.address = parseAddress(address);
    const { protocol = 'seed', maxFrameBytes, skipOversized, maxKeys, maxKeyBytes } = options;
    this.reader = new MetricReader({ protocol, maxFrameBytes, skipOversized, maxKeys, maxKeyBytes });
    this.backoff = parseReconnect(options.reconnect ?? false);
    this.tls = options.tls === undefined ? undefined : checkClientTls(options.tls);
    this.open();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ClientEvent, void, undefined> {
    if (this.iterated || this.mode === 'consume') throw new TypeError('a TcpClient can be iterated only once, and not after consume()');
    this.iterated = true;
    this.mode = 'iterate';
    try {
      for (;;) {
        if (this.head < this.queue.length) {
          yield this.take();
        } else if (this.ended) {
          if (this.failure !== undefined) throw this.failure;
          return;
        } else {
          await new Promise<void>((resolve) => (this.wake = resolve));
        }
      }
    } finally {
      await this.close();
    }
  }

  /**
   * Reads the stream in place: `sink` is called, synchronously, for every chunk that arrives,
   * with the client's {@link MetricReader} holding it, and must read every frame
   * (`reader.next()` until `undefined`; `SeriesFeed.drain` does). Nothing is queued, so a
   * `'connect'` listener runs after every frame of the previous connection was read and before
   * any of the new one. Resolves when the client ends (`close()`, or the connection ends
   * without `reconnect`); rejects with the `ClientError` that stopped it, or the error `sink`
   * threw (which closes the client).
   * @throws TypeError unless called before iteration and before any data arrived (call it
   *   right after the constructor).
   */
  consume(sink: (reader: MetricReader) => void): Promise<void> {
    if (this.mode !== undefined) throw new TypeError('consume() must be called once, right after the constructor, and not with iteration');
    this.mode = 'consume';
    this.sink = sink;
    return this.ending();
  }

  private async ending(): Promise<void> {
    while (!this.ended) await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * Closes the connection and stops reconnecting; iteration finishes (events not yet read are
   * dropped). Resolves once the socket is closed. Safe to call twice.
   */
  close(): Promise<void> {
    if (this.closed === undefined) {
      this.finish(undefined);
      this.failure = undefined;
      this.queue = [];
      this.head = 0;
      clearTimeout(this.retryTimer);
      const socket = this.socket;
      this.closed = socket === undefined ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
      socket?.destroy();
    }
    return this.closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private open(): void {
    const reader = this.reader;
    reader.restart();
    const socket = this.connect();
    this.socket = socket;
    let connected = false;
    let socketError: Error | undefined;
    let malformed: ClientError | undefined;
    let sinkError: Error | undefined;
    // Over TLS: the TCP connection was made, so what failed before the handshake ended was the
    // handshake. (With TLS 1.3 the exporter refuses a client's certificate after the client's
    // side of the handshake is done: that comes as an ERR_SSL_ alert.)
    let reached = false;
    socket.once('connect', () => (reached = true));
    let connectedAt = 0;
    let gotBytes = false;
    socket.on(this.tls === undefined ? 'connect' : 'secureConnect', () => {
      connected = true;
      connectedAt = performance.now();
      socket.setTimeout(0);
      this.emit('connect');
    });
    socket.on('data', (chunk: Buffer) => {
      gotBytes = true;
      if (this.closed !== undefined || malformed !== undefined || sinkError !== undefined) return;
      this.attempts = 0;
      this.mode ??= 'iterate';
      try {
        reader.push(chunk);
        if (this.sink === undefined) {
          for (let k = reader.next(); k !== undefined; k = reader.next()) this.queue.push(reader.event());
        } else {
          try {
            this.sink(reader);
          } catch (err) {
            if (!(err instanceof ClientError)) sinkError = err as Error;
            throw err;
          }
          if (reader.next() !== undefined) sinkError = new TypeError('the consume() callback must read every frame (reader.next() until undefined)');
        }
      } catch (err) {
        if (sinkError === undefined) malformed = err as ClientError; // events read before it stay queued
      }
      if (malformed !== undefined || sinkError !== undefined) socket.destroy();
      if (this.queue.length - this.head > PAUSE_ABOVE) socket.pause();
      this.wake?.();
    });
    socket.on('error', (err) => (socketError ??= err));
    socket.on('close', () => {
      this.socket = undefined;
      if (this.closed !== undefined) {
        if (connected) this.emit('disconnect', undefined);
        return;
      }
      if (sinkError !== undefined) {
        this.emit('disconnect', undefined);
        return this.finish(sinkError);
      }
      const where = formatAddress(this.address);
      const err =
        malformed ??
        (socketError !== undefined
          ? this.tls !== undefined && ((reached && !connected) || /^ERR_(SSL|TLS)_/.test((socketError as NodeJS.ErrnoException).code ?? ''))
            ? new ClientError('TLS', `TLS handshake with ${where} failed: ${tlsReason(socketError)}`, { cause: socketError })
            : new ClientError('CONNECT', `${connected ? 'connection to' : 'cannot connect to'} ${where}: ${socketError.message}`, { cause: socketError })
          : reader.pendingBytes > 0
            ? new ClientError('CONNECT', `connection to ${where} ended inside a frame (${reader.pendingBytes} bytes of it received)`)
            : this.tls !== undefined && connected && !gotBytes && performance.now() - connectedAt < REFUSED_AFTER_HANDSHAKE_MS
              ? new ClientError('TLS', `TLS handshake with ${where} failed: the exporter closed the connection right after the handshake, sending nothing: it most likely refused this client's certificate (is tls.cert signed by an authority in the exporter's tls.ca?)`)
              : undefined);
      this.emit('disconnect', err);
      if (this.closed !== undefined) return; // a listener closed the client
      if (this.backoff !== undefined && malformed === undefined) {
        this.retry(this.backoff);
      } else {
        this.finish(err);
        if (err !== undefined && this.listenerCount('error') > 0) this.emit('error', err);
      }
    });
  }

  /** A new connection: plain TCP, or TLS with a deadline on its handshake. */
  private connect(): Socket {
    const t = this.tls;
    if (t === undefined) return 'path' in this.address ? connect(this.address.path) : connect(this.address.port, this.address.host);
    const where = 'path' in this.address ? { path: this.address.path } : { host: this.address.host, port: this.address.port };
    const servername = t.servername ?? ('host' in this.address && isIP(this.address.host) === 0 ? this.address.host : undefined);
    const socket = tlsConnect({ ...where, ca: t.ca, cert: t.cert, key: t.key, servername, minVersion: 'TLSv1.2' });
    socket.setTimeout(t.handshakeTimeoutMs, () =>
      socket.destroy(Object.assign(new Error(`no handshake in ${t.handshakeTimeoutMs} ms (does the exporter serve TLS?)`), { code: 'ETIMEDOUT' })),
    );
    return socket;
  }

  private retry({ initialDelayMs, maxDelayMs }: Required<ReconnectOptions>): void {
    const delay = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(this.attempts++, 30));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.open();
    }, delay * (0.5 + Math.random() / 2));
  }

  private take(): ClientEvent {
    const event = this.queue[this.head++]!;
    const waiting = this.queue.length - this.head;
    if (waiting === 0) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head > waiting) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (waiting <= RESUME_AT && this.socket?.isPaused()) this.socket.resume();
    return event;
  }

  private finish(failure: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = failure;
    this.wake?.();
  }
}

/** The exporter's address forms, plus a bare socket path; a client cannot connect to port 0. */
function parseAddress(addr: ClientAddress): ListenAddress {
  if (typeof addr === 'string' && (addr.startsWith('/') || addr.startsWith('.'))) return { path: addr };
  const a = parseListenAddress(addr);
  if ('port' in a && a.port === 0) throw new TypeError('address port must be an integer from 1 to 65535, got 0');
  return a;
}

/** What a failed handshake's code most likely means, in the client's options' terms. */
const TLS_HINTS: Record<string, string> = {
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'the exporter requires a client certificate: give tls.cert and tls.key',
  ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE: 'the exporter refused the handshake: it may require a client certificate (tls.cert and tls.key)',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: "the exporter refused this client's certificate: it is not signed by an authority in the exporter's tls.ca",
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: "the exporter refused this client's certificate",
  ERR_SSL_WRONG_VERSION_NUMBER: 'the exporter does not speak TLS here (was it built without tls()?)',
  SELF_SIGNED_CERT_IN_CHAIN: "the exporter's certificate is not signed by an authority in tls.ca",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the exporter's certificate is not signed by an authority in tls.ca",
  DEPTH_ZERO_SELF_SIGNED_CERT: "the exporter's certificate is self-signed and not in tls.ca",
  CERT_HAS_EXPIRED: "the exporter's certificate has expired",
};

/**
 * Why a TLS handshake failed, in words: OpenSSL's reason without its source location, its code,
 * and what the code most likely means here.
 */
function tlsReason(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  const reason = /:SSL routines:[^:]*:([^:]+):/.exec(err.message)?.[1] ?? err.message.trim();
  const hint = code === undefined ? undefined : TLS_HINTS[code];
  return `${reason}${code === undefined || reason.includes(code) ? '' : ` (${code})`}${hint === undefined ? '' : `: ${hint}`}`;
}

/** The client's TLS options, checked: each PEM parses; `cert` and `key` go together. */
function checkClientTls(o: unknown): Required<Pick<ClientTlsOptions, 'handshakeTimeoutMs'>> & {
  ca: string[] | undefined;
  cert: string | undefined;
  key: string | undefined;
  servername: string | undefined;
} {
  if (typeof o !== 'object' || o === null) throw new TypeError('tls takes { ca?, cert?, key?, servername?, handshakeTimeoutMs? }');
  const t = o as ClientTlsOptions;
  if ((t.cert === undefined) !== (t.key === undefined)) throw new TypeError('tls.cert and tls.key go together: give both, or neither');
  if (t.servername !== undefined && (typeof t.servername !== 'string' || t.servername === '')) throw new TypeError(`tls.servername must be a non-empty string, got ${String(t.servername)}`);
  const handshakeTimeoutMs = t.handshakeTimeoutMs ?? DEFAULT_TLS_HANDSHAKE_MS;
  if (typeof handshakeTimeoutMs !== 'number' || !Number.isFinite(handshakeTimeoutMs) || handshakeTimeoutMs < 1) {
    throw new TypeError(`tls.handshakeTimeoutMs must be a number of ms >= 1, got ${String(handshakeTimeoutMs)}`);
  }
  return {
    ca: t.ca === undefined ? undefined : certificates('tls.ca', t.ca),
    cert: t.cert === undefined ? undefined : certificate('tls.cert', t.cert),
    key: t.key === undefined ? undefined : privateKey('tls.key', t.key),
    servername: t.servername,
    handshakeTimeoutMs,
  };
}

function parseReconnect(r: boolean | ReconnectOptions): Required<ReconnectOptions> | undefined {
  if (r === false) return undefined;
  const { initialDelayMs = 100, maxDelayMs = Math.max(5000, initialDelayMs) } = r === true ? {} : r;
  if (!Number.isFinite(initialDelayMs) || initialDelayMs < 0 || !Number.isFinite(maxDelayMs) || maxDelayMs < initialDelayMs) {
    throw new RangeError(`reconnect needs 0 <= initialDelayMs <= maxDelayMs, got ${initialDelayMs} and ${maxDelayMs}`);
  }
  return { initialDelayMs, maxDelayMs };
}

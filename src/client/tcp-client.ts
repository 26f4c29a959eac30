// TcpClient: connects to an exporter and yields what it sends, decoded.
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { formatAddress, parseListenAddress, type ListenAddress } from '../shared/address.js';
import { ClientError } from './errors.js';
import { toClientEvent, type ClientEvent } from './events.js';
import { FrameDecoder } from './frames.js';
import { detectProtocol, parseProtocol, type ClientProtocol } from './protocol.js';

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
}

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
 */
export class TcpClient extends EventEmitter<ClientEmitterEvents> implements AsyncIterable<ClientEvent>, AsyncDisposable {
  private readonly address: { host: string; port: number } | { path: string };
  private readonly protocol: ClientProtocol | 'auto';
  /** With `'auto'`: the format seen on this connection, once a metric frame told. */
  private detected: ClientProtocol | undefined;
  private readonly maxFrameBytes: number;
  private readonly backoff: Required<ReconnectOptions> | undefined;
  private attempts = 0;
  private socket: Socket | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private queue: ClientEvent[] = [];
  private head = 0;
  /** Set once no more events will come; `failure` is then what iteration throws, if anything. */
  private ended = false;
  private failure: ClientError | undefined;
  private closed: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private iterated = false;

  /**
   * @throws TypeError for a malformed address or protocol; RangeError for out-of-range
   *   delays or `maxFrameBytes`.
   */
  constructor(address: ClientAddress, options: ClientOptions = {}) {
    super();
    this.address = parseAddress(address);
    this.protocol = parseProtocol(options.protocol ?? 'seed');
    this.maxFrameBytes = new FrameDecoder(options.maxFrameBytes).maxFrameBytes;
    this.backoff = parseReconnect(options.reconnect ?? false);
    this.open();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ClientEvent, void, undefined> {
    if (this.iterated) throw new TypeError('a TcpClient can be iterated only once');
    this.iterated = true;
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
    const decoder = new FrameDecoder(this.maxFrameBytes);
    const socket = 'path' in this.address ? connect(this.address.path) : connect(this.address.port, this.address.host);
    this.socket = socket;
    let connected = false;
    let socketError: Error | undefined;
    let malformed: ClientError | undefined;
    socket.on('connect', () => {
      connected = true;
      this.detected = undefined; // a restarted exporter may speak the other format
      this.emit('connect');
    });
    socket.on('data', (chunk: Buffer) => {
      const frames: Uint8Array[] = [];
      try {
        decoder.push(chunk, frames);
      } catch (err) {
        malformed = err as ClientError;
      }
      if (frames.length > 0) this.attempts = 0;
      try {
        for (const frame of frames) this.queue.push(toClientEvent(frame, this.formatOf(frame)));
      } catch (err) {
        malformed = err as ClientError; // this frame came before any bad length prefix
      }
      if (malformed !== undefined) socket.destroy();
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
      const where = formatAddress(this.address);
      const err =
        malformed ??
        (socketError !== undefined
          ? new ClientError('CONNECT', `${connected ? 'connection to' : 'cannot connect to'} ${where}: ${socketError.message}`, { cause: socketError })
          : decoder.pendingBytes > 0
            ? new ClientError('CONNECT', `connection to ${where} ended inside a frame (${decoder.pendingBytes} bytes of it received)`)
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

  private formatOf(frame: Uint8Array): ClientProtocol {
    if (this.protocol !== 'auto') return this.protocol;
    this.detected ??= detectProtocol(frame);
    return this.detected ?? 'seed'; // metadata decodes the same either way
  }

  private finish(failure: ClientError | undefined): void {
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

function parseReconnect(r: boolean | ReconnectOptions): Required<ReconnectOptions> | undefined {
  if (r === false) return undefined;
  const { initialDelayMs = 100, maxDelayMs = Math.max(5000, initialDelayMs) } = r === true ? {} : r;
  if (!Number.isFinite(initialDelayMs) || initialDelayMs < 0 || !Number.isFinite(maxDelayMs) || maxDelayMs < initialDelayMs) {
    throw new RangeError(`reconnect needs 0 <= initialDelayMs <= maxDelayMs, got ${initialDelayMs} and ${maxDelayMs}`);
  }
  return { initialDelayMs, maxDelayMs };
}

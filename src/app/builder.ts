import { DEFAULT_LISTEN, formatAddress, isWildcard, parseListenAddress, type ListenAddress } from '../shared/address.js';
import { CTL_BYTES, REFUSED_KEY_ID, REPLAY_SLOTS, UNBOUNDED_RECORDS, createRing, journalBytes, ringViews } from '../shared/layout.js';
import { checkProtocol, type Protocol } from '../shared/protocol.js';
import type { Connector } from './attach.js';
import { ExporterError } from '../errors.js';
import { TcpRecorder, capturing, getGlobal, setGlobal } from './recorder.js';
import { describeRemembered } from './global.js';
import { Registry } from './registry.js';
import { RingWriter } from './ring-writer.js';
import { WorkerHost } from './worker-host.js';
import { checkTls, type TlsOptions } from './tls-options.js';
import type { ServerTls } from '../shared/messages.js';

export type { Protocol };

/** Exporters built in this process, for their channel names. */
let exporters = 0;
/** The default of {@link TcpBuilder.flushIntervalMs}. */
export const DEFAULT_FLUSH_INTERVAL_MS = 100;
const DEFAULT_BUFFER_SIZE = 16_384;

function positiveInt(what: string, n: unknown, max: number): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > max) {
    throw new TypeError(`${what} must be an integer from 1 to ${max}, got ${String(n)}`);
  }
  return n;
}

/**
 * Configures and starts an exporter. Every setter validates its argument at once
 * (a `TypeError` names the bad option) and returns the builder.
 */
export class TcpBuilder {
  /** Undefined for a capture (see {@link forCapture}). */
  private listen: ListenAddress | undefined = DEFAULT_LISTEN;
  private buffer: number | null = DEFAULT_BUFFER_SIZE;
  private clientsMax = 64;
  private keysMax = 10_000;
  private closeMs = 1000;
  private wire: Protocol = 'seed';
  private lossInBand = true;
  private flushMs = DEFAULT_FLUSH_INTERVAL_MS;
  private niceBy = 0;
  private replay = false;
  private secure: ServerTls | undefined;
  private scrapeAt: { host: string; port: number } | undefined;
  private capture = false;

  /**
   * Where to listen: `'host:port'`, `'[::1]:port'`, `{ host, port }` or `{ path }` for a unix
   * socket (created with mode 0600, removed on close). Port 0 picks a free port; read it from
   * `recorder.address`. Default `127.0.0.1:5000` (the seed binds 0.0.0.0). Binding a wildcard
   * address emits a warning: metrics become readable from the network. A socket file left by a
   * process that died is replaced at `build()`; one a live process listens on is not.
   * @throws TypeError for an address that cannot be parsed; RangeError for a unix socket path
   *   longer than the kernel takes (107 bytes on Linux, 103 elsewhere).
   */
  listenAddress(addr: string | ListenAddress): this {
    this.listen = parseListenAddress(addr);
    return this;
  }

  /**
   * How many records the ring holds and how many frames each client may have queued (the
   * seed's one limit for both). A full ring drops new records; a full client queue drops its
   * oldest frames. `null` means unbounded up to a hard cap of 1 048 576 (16 MiB of ring, whose
   * pages the OS commits only as they are used). Default 16 384 (the Rust crate's is 1024):
   * 256 KiB of ring per recording thread; the worker comes back before a ring is a quarter
   * full (and is woken at half), so a small ring makes it wake often at high rates (1024 cost
   * twice the CPU of 16 384 at 140 k records/s; see the README's "Choosing a buffer size").
   */
  bufferSize(size: number | null): this {
    this.buffer = size === null ? null : positiveInt('bufferSize', size, UNBOUNDED_RECORDS);
    return this;
  }

  /** Most clients served at once; further connections are closed at once and counted. Default 64. */
  maxClients(n: number): this {
    this.clientsMax = positiveInt('maxClients', n, 65_535);
    return this;
  }

  /**
   * Most distinct keys (name + labels) per recording thread. Beyond it new keys are refused:
   * one warning, and their records are counted in `dropped.invalid`. Default 10 000.
   */
  maxKeys(n: number): this {
    this.keysMax = positiveInt('maxKeys', n, REFUSED_KEY_ID);
    return this;
  }

  /**
   * How long `close()` may spend delivering what is buffered, and how long a process that exits
   * without `close()` waits (its thread blocked) while the worker delivers it. Default 1000 ms.
   */
  closeTimeoutMs(ms: number): this {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      throw new TypeError(`closeTimeoutMs must be a finite number >= 0, got ${String(ms)}`);
    }
    this.closeMs = ms;
    return this;
  }

  /** Wire format; see {@link Protocol}. Default `'seed'`. */
  protocol(p: Protocol): this {
    this.wire = checkProtocol(p, false);
    return this;
  }

  /**
   * How long records may wait in the ring before the worker sends them, in ms. The worker works
   * in batches: after sending one it waits this long (less while a ring fills fast, or until a
   * ring is half full) before the next, and after a second with nothing to send it sleeps until
   * a record comes. Shorter: records reach clients sooner and the worker wakes more often;
   * longer: fewer wake-ups, each carrying more.
   * Default 100 (see the README for what it costs at each record rate).
   */
  flushIntervalMs(ms: number): this {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 1 || ms > 60_000) {
      throw new TypeError(`flushIntervalMs must be a number from 1 to 60000, got ${String(ms)}`);
    }
    this.flushMs = ms;
    return this;
  }

  /**
   * Lowers the priority of the exporter's worker thread by `n` (Linux: its nice value, from the
   * process's own, at most 19; other systems ignore it). When the app's threads and the worker
   * want the same core, the app's then win: in overload (a ring full, records dropped) the app
   * keeps its core, and the worker sends (and the client receives) less of what was recorded,
   * the rest counted as dropped; with cores to spare it changes nothing. An integer from 0 to
   * 19; default 0. (`npm run bench -- hotpath` measures overload with 10 and without.)
   */
  workerNice(n: number): this {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 19) throw new TypeError(`workerNice must be an integer from 0 to 19, got ${String(n)}`);
    this.niceBy = n;
    return this;
  }

  /**
   * Whether a client that connects gets, after the metadata, each counter's total and each
   * gauge's current value, then the live stream: an observer or a relay that connects late (or
   * reconnects) then shows what one connected from the start would. Totals count from the
   * exporter's start (or the key's creation), across threads and worker restarts; histograms are
   * not replayed. With it, a record made while no client is connected adds to its thread's state
   * in shared memory (about 1 ns) instead of nothing. Default `false` (the seed's behaviour).
   */
  replayOnConnect(enabled: boolean): this {
    if (typeof enabled !== 'boolean') throw new TypeError(`replayOnConnect must be a boolean, got ${String(enabled)}`);
    this.replay = enabled;
    return this;
  }

  /**
   * Whether each client is told, in the stream, what it lost: a counter
   * `metrics_exporter_tcp_dropped` (unit `count`, label `reason` = `ring_full`, `client_queue` or
   * `invalid`) carrying the records that client did not get, sent at most every 100 ms and only
   * after a loss; and how full the buffers got: gauges `metrics_exporter_tcp_ring_peak{thread}`
   * (`main` or the thread's `worker_threads` id), `metrics_exporter_tcp_client_queue_peak` and
   * `metrics_exporter_tcp_buffer_size`, the peak fill of each ring and of that client's queue
   * since the previous report, at most every 100 ms and only when they changed (see
   * `recommendBufferSize`). They are ordinary metrics, so any client shows them; they are not
   * records in `stats()`. Default `true`.
   */
  selfMetrics(enabled: boolean): this {
    if (typeof enabled !== 'boolean') throw new TypeError(`selfMetrics must be a boolean, got ${String(enabled)}`);
    this.lossInBand = enabled;
    return this;
  }

  /**
   * Serves the stream over TLS (`node:tls`; TLS 1.2 or later), with the exporter's `key` and
   * `cert` (PEM). With `ca` (and `requestCert`, its default then), only clients that present a
   * certificate signed by `ca` are served: mutual authentication. A connection that does not
   * complete the handshake in time (plain TCP, no certificate, one from another authority) gets no
   * metric bytes, never holds a client slot, is closed, and is counted in `rejectedClients`. The
   * hot path is the same; the worker encrypts (see the README for what it costs).
   * @throws TypeError naming the option that is not usable (not PEM, a key that does not match
   *   the certificate, `requestCert` without `ca`)
   */
  tls(options: TlsOptions): this {
    this.secure = checkTls(options);
    return this;
  }

  /**
   * Serves Prometheus's `GET /metrics` from the exporter's worker at `address` (`'host:port'`,
   * `'[::1]:port'` or `{ host, port }`; port 0 picks a free one: read it from
   * `recorder.prometheusAddress`): every counter's total since start, every gauge's value and
   * every histogram (classic buckets in text; native ones too in the protobuf format Prometheus
   * asks for with native histograms on), recorded from any thread, whether or not a TCP client is
   * connected, and the exporter's own figures (`metrics_exporter_tcp_*`). Rendering never runs on
   * the app's threads. Binding a wildcard address emits a warning: metrics become readable from
   * the network. With it, a histogram observation always goes to the ring, and counters and gauges
   * with no TCP client add to their thread's totals (as with `replayOnConnect`).
   * @throws TypeError for an address that cannot be parsed, or a unix socket path (Prometheus
   *   scrapes over TCP)
   */
  prometheus(address: string | { host: string; port: number }): this {
    const a = parseListenAddress(address);
    if ('path' in a) throw new TypeError('prometheus() takes a TCP address (host:port): Prometheus does not scrape unix sockets');
    this.scrapeAt = a;
    return this;
  }

  /**
   * @internal For `captureMetrics()`: no listener (nothing is sent anywhere); the worker keeps
   * every counter's total, gauge's value and histogram, as for the Prometheus endpoint (the same
   * handles record into it, but gauges, which go to the ring as with a client connected), and
   * answers the app's asks for them. The ring holds the most records a ring can (its pages are
   * committed only as they are used), so that a burst of records loses nothing that fits. No
   * in-band self metrics: they are for clients, and a capture has none.
   */
  forCapture(): this {
    this.listen = undefined;
    this.capture = true;
    this.buffer = null;
    this.lossInBand = false;
    return this;
  }

  /**
   * Binds the listener and starts the transport worker.
   * @throws ExporterError code `IO` (with `cause`) when the address cannot be bound.
   */
  async build(): Promise<TcpRecorder> {
    const limit = this.buffer ?? UNBOUNDED_RECORDS;
    const ctl = new SharedArrayBuffer(CTL_BYTES);
    const ring = createRing(limit);
    const writer = new RingWriter(ring, ctl);
    // The endpoint, and a capture, need the totals that replayOnConnect keeps, and every histogram observation.
    const histograms = this.scrapeAt !== undefined || this.capture;
    const totals = this.replay || histograms;
    const registry = new Registry(writer, this.keysMax, totals, histograms, true, this.capture);
    // With client certificates, only the holders of one can read; else anyone who can connect.
    if (this.listen !== undefined && isWildcard(this.listen) && this.secure?.requestCert !== true) {
      const how = this.secure === undefined ? 'unauthenticated and unencrypted' : 'by anyone who can connect (TLS without client certificates)';
      process.emitWarning(`metrics-exporter-tcp listens on ${formatAddress(this.listen)}: metrics become readable from the network, ${how}`, {
        code: 'MTCP_WILDCARD_LISTEN',
      });
    }
    if (this.scrapeAt !== undefined && isWildcard(this.scrapeAt)) {
      process.emitWarning(`metrics-exporter-tcp serves /metrics on ${formatAddress(this.scrapeAt)}: metrics become readable from the network, unauthenticated and unencrypted`, {
        code: 'MTCP_WILDCARD_LISTEN',
      });
    }
    // Unique among this process's threads, which are all a BroadcastChannel reaches (node:crypto
    // would cost every app 2 MB of memory for it).
    const channel = `metrics-exporter-tcp:${process.pid}:${++exporters}:${Math.random().toString(36).slice(2)}`;
    const host = await WorkerHost.start({
      ctl,
      channel,
      listen: this.listen,
      bufferSize: limit,
      maxClients: this.clientsMax,
      maxKeys: this.keysMax,
      selfMetrics: this.lossInBand,
      flushIntervalMs: this.flushMs,
      nice: this.niceBy,
      // One table of totals for every key the exporter replays (at most maxKeys of them).
      replayTable: totals ? new SharedArrayBuffer(this.keysMax * REPLAY_SLOTS * 8) : undefined,
      journal: new SharedArrayBuffer(journalBytes(totals)),
      replayOnConnect: this.replay,
      prometheus: this.scrapeAt,
      closeTimeoutMs: this.closeMs,
      tls: this.secure,
      protocol: this.wire,
      ring,
      capture: this.capture,
      rebind: (port) => {
        port.unref();
        writer.rebind(port);
        return registry.snapshot();
      },
    });
    const connector: Connector = {
      kind: 'metrics-exporter-tcp/connector',
      version: 1,
      ctl,
      channel,
      bufferSize: limit,
      maxKeys: this.keysMax,
      replay: totals,
      endpoint: histograms,
      capture: this.capture,
    };
    return new TcpRecorder(writer, registry, ringViews(ring.sab).header, host, this.closeMs, connector);
  }

  /**
   * `build()`, then makes the recorder the global one used by `counter()`, `gauge()`, … .
   * @throws ExporterError code `RECORDER_ALREADY_SET` if a global recorder is installed
   *   (nothing is left running then), or code `IO` as `build()`.
   */
  async install(): Promise<TcpRecorder> {
    if (getGlobal() !== undefined) throw alreadySet();
    const recorder = await this.build();
    if (!setGlobal(recorder)) {
      await recorder.close();
      throw alreadySet();
    }
    describeRemembered(recorder);
    return recorder;
  }
}

function alreadySet(): ExporterError {
  return new ExporterError('RECORDER_ALREADY_SET', `a global recorder is already installed${capturing() ? ' (by captureMetrics(): close that first)' : ''}`);
}

// The relay: reads any number of exporters (on one or more threads) and serves their metrics,
// and its own health, to Prometheus (scrape) and/or an OpenTelemetry Collector (OTLP push).
import { availableParallelism } from 'node:os';
import type { Writable } from 'node:stream';
import { parseListenAddress, type ClientProtocol } from 'metrics-exporter-tcp/client';
import type { DecoderName } from './appliers.js';
import { SeriesBudget } from './budget.js';
import { parseExporterAddress } from './exporter-link.js';
import { Exposition } from './exposition.js';
import { RelayMirror } from './mirror.js';
import { otlpOptions, pushOtlp, type OtlpHistogram, type OtlpPusher } from './otlp.js';
import { servePrometheus, type PrometheusEndpoint } from './prometheus.js';
import type { LinkTls } from './link-tls.js';
import { readFlagFiles, type PemFileNames } from './pem-files.js';
import { filesState, loadWebConfig, type WebConfig } from './web-config.js';
import { ReaderPool } from './reader-pool.js';
import { repeat } from './repeat.js';
import { globMatcher, isSocketGlob, socketOwners, watchSockets } from './socket-glob.js';
import { snapshotOf, type RelaySnapshot } from './snapshot.js';

/** What {@link startRelay} takes; the command's flags map onto it one to one. */
export interface RelayOptions {
  /**
   * Exporter addresses (`host:port`, `[v6]:port` or a socket path); each becomes the `exporter`
   * label. A socket path with wildcards in its file name (`/run/app/metrics-*.sock`) stands for
   * every unix socket it matches, rescanned every `rescanMs`: one exporter per socket.
   */
  readonly connect: readonly string[];
  /** The exporters' wire format; `'auto'` tells it from each connection's first metric frame. */
  readonly protocol: ClientProtocol | 'auto';
  /** Where to serve GET /metrics, e.g. `127.0.0.1:9464`. */
  readonly prometheus?: string;
  /** OTLP/HTTP metrics endpoint, e.g. `http://127.0.0.1:4318/v1/metrics`. */
  readonly otlp?: string;
  /** How often to push to `otlp`, in ms. */
  readonly otlpIntervalMs: number;
  /** Headers sent with every OTLP export (`--otlp-header 'K=V'`), e.g. `{ Authorization: 'Bearer …' }`. */
  readonly otlpHeaders?: Readonly<Record<string, string>>;
  /**
   * TLS to an `https://` collector (`--otlp-tls-*`): files of PEM, read and checked at start-up.
   * `ca` (default Node's bundled authorities) verifies the collector; `cert` and `key` are the
   * relay's, for a collector that requires client certificates.
   */
  readonly otlpTls?: PemFileNames;
  /**
   * How histograms go over OTLP (`--otlp-histogram`): `explicit` (the classic buckets, the
   * default) or `exponential` (OTLP exponential histograms from the native buckets: the shape
   * at a few percent whatever the range, at most 160 buckets a series).
   */
  readonly otlpHistogram?: OtlpHistogram;
  /**
   * Histogram bucket upper bounds, ascending, for every histogram (`--buckets`). Default: each
   * histogram's from its unit, as the exporter's own /metrics chooses them (`defaultBuckets`:
   * 5 ms to 10 s for seconds, 256 B to 1 GiB for bytes, 1-2-5 per decade without a unit), so that
   * a bytes histogram does not land in `+Inf`.
   */
  readonly buckets?: readonly number[];
  /** Most series kept (over all exporters and threads), at most 2^30; beyond it new series are refused, counted and logged once. */
  readonly maxSeries: number;
  /**
   * Most bytes of text kept over all exporters (the UTF-8 bytes of series' names, label names
   * and values, and of metadata's names, units and descriptions), at most 2^30. Default 32 MiB.
   */
  readonly maxBytes?: number;
  /** Most series kept of one exporter (and most metric names with metadata), so that one exporter cannot take every other's room. Default 20 000. */
  readonly maxSeriesPerExporter?: number;
  /**
   * Most bytes of text kept of one exporter (the UTF-8 bytes of its series' names, label names
   * and values, and of its metadata's names, units and descriptions). Default 8 MiB.
   */
  readonly maxBytesPerExporter?: number;
  /**
   * How /metrics is served (`--web-config-file`): a file in the Prometheus exporter-toolkit's
   * web config format (TLS, client certificates, bcrypt `basic_auth_users`, headers), read and
   * checked at start-up (any error names the file and key). When it or a file it names changes
   * it is read again (users, headers, certificates, client certificate policy), as
   * exporter-toolkit does; a version that fails its checks is logged, and the last good one stays.
   */
  readonly webConfigFile?: string;
  /** How often the web config and the files it names are looked at for changes, in ms. Default 2000. */
  readonly webConfigCheckMs?: number;
  /** Scrapes of /metrics in flight at most (like node_exporter's `--web.max-requests`); beyond, 503 at once. 0: no limit. Default 40. */
  readonly maxRequests?: number;
  /**
   * After an exporter sent a malformed stream, the first delay before it is read again, in ms
   * (it doubles with each malformed stream in a row, up to 10 minutes). Default 30 000.
   */
  readonly malformedRetryMs?: number;
  /** Where the relay says what happens: connections, given-up exporters, refused series, export failures. */
  readonly log: Writable;
  /** Worker threads reading exporters (the main thread reads none): default the number of cores. Never more than there are exporters. */
  readonly threads?: number;
  /** An exporter unreachable this long (ms) has its series dropped from the exposition. Default 300 000. */
  readonly staleAfterMs?: number;
  /**
   * Also drop any gauge not updated for `staleAfterMs` (counters and histograms stay while their
   * exporter is connected: one that went and came back from 0 would make `increase()` wrong). Default false.
   */
  readonly expireSeries?: boolean;
  /**
   * How long each exporter's fill levels (`metrics_exporter_tcp_ring_peak`,
   * `_client_queue_peak`) are held at the largest it reported, in ms: the exporter reports a
   * peak per 100 ms while records move, so a burst is seen by every scrape within the hold.
   * Longer than the scrape interval. Default 60 000.
   */
  readonly peakHoldMs?: number;
  /**
   * Owners (uids) besides the relay's own user whose sockets a glob in `connect` may match
   * (`--allow-uid`). A glob never takes a symbolic link, nor a socket of any other owner.
   */
  readonly allowUids?: readonly number[];
  /**
   * Connect to every exporter over TLS (`--tls-*`): files of PEM, read and checked at start-up
   * (a file that cannot be read, is not PEM of its kind, has expired, or a key that is not the
   * certificate's is a `TypeError` naming the file). The exporters' certificates are always
   * verified: against `ca`, or Node's bundled authorities.
   */
  readonly tls?: RelayTlsFiles;
  /** How often socket globs in `connect` are rescanned, in ms. Default 2000. */
  readonly rescanMs?: number;
  /**
   * How streams are decoded: `'fast'` (default; the client's `MetricReader`, nothing allocated
   * per frame) or `'events'` (protobuf-es `fromBinary` and an event object per frame, several
   * times slower: the reference the bench compares with).
   */
  readonly decoder?: DecoderName;
}

/** How the relay connects to exporters over TLS: `ca` (`--tls-ca`, default Node's bundled authorities) verifies them; `cert` and `key` (`--tls-cert`, `--tls-key`) are the relay's, for exporters that require client certificates. */
export interface RelayTlsFiles extends PemFileNames {
  /** The name exporters' certificates must carry (`--tls-servername`). Default: the host of each address (an IP address is checked against the certificate's IP addresses). */
  readonly servername?: string;
  /** How long a handshake may take, in ms; then the attempt fails, is logged and tried again. Default 10 000. */
  readonly handshakeTimeoutMs?: number;
}

/** A running relay. */
export interface Relay {
  /** The /metrics endpoint, when `prometheus` was given. */
  readonly prometheus?: PrometheusEndpoint;
  /** Worker threads reading exporters now (the main thread serves /metrics and OTLP). */
  readonly threads: number;
  /** What every thread holds now: per exporter its state, counts, series and metadata. */
  snapshot(): Promise<RelaySnapshot>;
  /** Disconnects, pushes what OTLP has pending, and stops serving /metrics. */
  close(): Promise<void>;
}

/**
 * Connects to every exporter (reconnecting with back-off) on reader threads and serves what they
 * send to Prometheus and/or OTLP from the main thread. A reconnect resets that exporter's
 * counters and histograms exactly at the connection boundary. An exporter whose stream is
 * malformed is disconnected, logged with the error's code, counted, and read again after a long
 * back-off; the others keep flowing.
 * @throws TypeError without exporters, without `prometheus` and `otlp`, for a malformed
 *   address or option, or a TLS or web config file that cannot be used (the message names the
 *   file and what is wrong); rejects when the /metrics address cannot be bound.
 */
export async function startRelay(o: RelayOptions): Promise<Relay> {
  if (o.connect.length === 0) throw new TypeError('startRelay needs at least one exporter address in connect');
  if (o.prometheus === undefined && o.otlp === undefined) throw new TypeError('startRelay needs prometheus and/or otlp');
  const globs = o.connect.filter(isSocketGlob);
  const fixed = o.connect.filter((a) => !isSocketGlob(a));
  globs.forEach(globMatcher);
  fixed.forEach(parseExporterAddress);
  const threads = o.threads ?? availableParallelism();
  const staleAfterMs = o.staleAfterMs ?? 300_000;
  const peakHoldMs = o.peakHoldMs ?? 60_000;
  const rescanMs = o.rescanMs ?? 2000;
  const maxBytes = o.maxBytes ?? 32 * 1024 * 1024;
  const maxSeriesPerExporter = o.maxSeriesPerExporter ?? 20_000;
  const maxBytesPerExporter = o.maxBytesPerExporter ?? 8 * 1024 * 1024;
  const maxRequests = o.maxRequests ?? 40;
  const malformedRetryMs = o.malformedRetryMs ?? 30_000;
  if (!Number.isInteger(threads) || threads < 1) throw new TypeError(`threads must be a positive integer, got ${threads}`);
  for (const [name, v] of [['maxSeries', o.maxSeries], ['maxBytes', maxBytes], ['maxSeriesPerExporter', maxSeriesPerExporter], ['maxBytesPerExporter', maxBytesPerExporter]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 2 ** 30) throw new TypeError(`${name} must be an integer from 1 to 2^30, got ${v}`);
  }
  if (!Number.isInteger(maxRequests) || maxRequests < 0) throw new TypeError(`maxRequests must be a whole number, got ${maxRequests}`);
  for (const uid of o.allowUids ?? []) if (!Number.isInteger(uid) || uid < 0) throw new TypeError(`allowUids must be uids (whole numbers), got ${uid}`);
  for (const [name, v] of [['staleAfterMs', staleAfterMs], ['rescanMs', rescanMs], ['malformedRetryMs', malformedRetryMs], ['peakHoldMs', peakHoldMs]] as const) {
    if (!(v > 0)) throw new TypeError(`${name} must be a positive number, got ${v}`);
  }

  const tls = o.tls === undefined ? undefined : linkTls(o.tls);
  if (o.webConfigFile !== undefined && o.prometheus === undefined) throw new TypeError('webConfigFile (--web-config-file) is for /metrics: it needs prometheus');
  const web = o.webConfigFile === undefined ? undefined : loadWebConfig(o.webConfigFile);
  const otlpExport = o.otlp === undefined ? undefined : otlpOptions(o.otlp, o.otlpHeaders, o.otlpTls, o.otlpHistogram);

  const log = (line: string) => o.log.write(`${line}\n`);
  const mirror = new RelayMirror();
  const pool = new ReaderPool(
    {
      protocol: o.protocol,
      buckets: o.buckets,
      maxSeries: o.maxSeries,
      maxBytes,
      maxSeriesPerExporter,
      maxBytesPerExporter,
      budget: new SeriesBudget(o.maxSeries, threads, undefined, 0, maxBytes).shared,
      staleAfterMs,
      expireSeries: o.expireSeries ?? false,
      peakHoldMs,
      decoder: o.decoder ?? 'fast',
      malformedRetryMs,
      tls,
    },
    threads,
    mirror,
    log,
  );
  const collect = () => pool.collect();
  const exposition = new Exposition(mirror, log);
  let prometheus: PrometheusEndpoint | undefined;
  let otlp: OtlpPusher | undefined;
  try {
    prometheus =
      o.prometheus === undefined
        ? undefined
        : await servePrometheus(async (format) => (await collect(), exposition.render(format)), parseListenAddress(o.prometheus), { maxRequests, config: web });
    otlp = otlpExport === undefined ? undefined : await pushOtlp(collect, mirror, otlpExport, o.otlpIntervalMs, o.log);
  } catch (err) {
    await prometheus?.close();
    throw err;
  }
  const webWatch = web === undefined ? undefined : watchWebConfig(o.webConfigFile!, web, o.webConfigCheckMs ?? 2000, prometheus!, log);
  fixed.forEach((a) => pool.add(a));
  const owners = socketOwners(o.allowUids);
  const watcher =
    globs.length === 0 ? undefined : watchSockets(globs, { everyMs: rescanMs, owners, log }, (p) => pool.add(p, [...owners]), (p) => pool.remove(p));
  return {
    prometheus,
    get threads() {
      return pool.threads;
    },
    async snapshot() {
      await collect();
      return snapshotOf(mirror);
    },
    async close() {
      watcher?.close();
      webWatch?.close();
      await pool.stop();
      await otlp?.close(); // its last export reads the threads' final state
      await prometheus?.close();
      await pool.close();
    },
  };
}

/** The exporters' TLS settings, with the files read and checked. */
function linkTls(f: RelayTlsFiles): LinkTls {
  const handshakeTimeoutMs = f.handshakeTimeoutMs ?? 10_000;
  if (!(handshakeTimeoutMs >= 1)) throw new TypeError(`tls.handshakeTimeoutMs must be a number of ms >= 1, got ${handshakeTimeoutMs}`);
  if (f.servername !== undefined && (typeof f.servername !== 'string' || f.servername === '')) throw new TypeError('--tls-servername must not be empty');
  return { ...readFlagFiles('--tls', f), servername: f.servername, handshakeTimeoutMs };
}

/**
 * Reads the web config again whenever it or a file it names changes (looked at every `everyMs`),
 * and serves with it; a version that fails its checks is logged and the last good one stays.
 */
function watchWebConfig(path: string, first: WebConfig, everyMs: number, endpoint: PrometheusEndpoint, log: (line: string) => void): { close(): void } {
  let files = first.files;
  let seen: string | undefined;
  return repeat(everyMs, async (stopped) => {
    const state = await filesState(files);
    if (stopped()) return;
    if (seen !== undefined && state !== seen) {
      try {
        const next = loadWebConfig(path);
        endpoint.reconfigure(next);
        files = next.files;
        log(`relay: --web-config-file ${path} read again: serving with it`);
      } catch (err) {
        log(`relay: ${(err as Error).message.startsWith('--web-config-file') ? '' : `--web-config-file ${path}: `}${(err as Error).message}; still serving with the last good version`);
      }
    }
    seen = await filesState(files);
  });
}

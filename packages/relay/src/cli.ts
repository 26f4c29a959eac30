#!/usr/bin/env node
// The `metrics-exporter-tcp-relay` command: parses flags, owns the process's signals and exit
// code, and hands over to startRelay().
import { parseArgs } from 'node:util';
import { parseListenAddress, parseProtocol } from 'metrics-exporter-tcp/client';

const USAGE = `usage: metrics-exporter-tcp-relay --connect host:port|/path.sock|'/run/app/metrics-*.sock' [--connect …]
    --prometheus host:port                serve GET /metrics (Prometheus text format) there
    --otlp <url> [--otlp-interval <ms>]   push to an OTLP/HTTP metrics endpoint (default every 10000 ms)
    --otlp-header 'Name=value'            a header for every OTLP export, e.g. 'Authorization=Bearer …' (repeatable)
    --otlp-histogram explicit|exponential histograms over OTLP: classic buckets, or exponential from the native ones (default explicit)
    --otlp-tls-ca FILE                    the https:// collector's certificate is signed by an authority in FILE (PEM; default Node's bundled ones)
    --otlp-tls-cert FILE --otlp-tls-key FILE  the relay's certificate and key (PEM), for a collector that requires client certificates
    --buckets 0.005,0.01,…                histogram bucket bounds for every histogram (default: by each one's unit, as the exporter's /metrics)
    --max-series <n>                      series kept at most, over every exporter (default 100000)
    --max-bytes <n>                       bytes of names, labels and descriptions kept, over every exporter (default 33554432)
    --max-series-per-exporter <n>         series (and metric names with metadata) kept of one exporter (default 20000)
    --max-bytes-per-exporter <n>          bytes of names, labels and descriptions kept of one exporter (default 8388608)
    --web-config-file FILE                serve /metrics as Prometheus exporters do: TLS, client certificates, basic auth (exporter-toolkit's web config format)
    --web-max-requests <n>                scrapes of /metrics in flight at most, beyond: 503 (default 40; 0: no limit)
    --protocol auto|seed|observer-0.11    wire format (default auto: told by the first metric)
    --threads <n>                         threads reading exporters (default the number of cores, at most one per exporter)
    --stale-after <s>                     drop the series of an exporter unreachable this long (default 300)
    --expire-series                       also drop gauges not updated for --stale-after (counters and histograms stay while their exporter is connected)
    --peak-hold <s>                       expose each exporter's ring and queue peaks at the largest reported this long (default 60; above the scrape interval)
    --tls-ca FILE                         connect to every exporter over TLS, its certificate signed by an authority in FILE (PEM; default Node's bundled ones)
    --tls-cert FILE --tls-key FILE        the relay's certificate and key (PEM), for exporters that require client certificates (implies TLS)
    --tls-servername NAME                 the name exporters' certificates must carry (default: the host of each --connect)
    --allow-uid <uid>                     a glob in --connect also takes sockets of this owner (repeatable; default: only the relay's own user's, never a link)`;

function fail(message: string): never {
  process.stderr.write(`metrics-exporter-tcp-relay: ${message}\n${USAGE}\n`);
  process.exit(2);
}

/** `f()`, or a usage error naming `flag`. */
function check<T>(flag: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    fail(`${flag}: ${(err as Error).message}`);
  }
}

function positive(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) fail(`${flag} must be a positive number, got ${value}`);
  return n;
}

const { values, positionals } = check('arguments', () =>
  parseArgs({
    allowPositionals: true,
    options: {
      connect: { type: 'string', multiple: true, default: [] },
      prometheus: { type: 'string' },
      otlp: { type: 'string' },
      'otlp-interval': { type: 'string', default: '10000' },
      'otlp-header': { type: 'string', multiple: true, default: [] },
      'otlp-histogram': { type: 'string', default: 'explicit' },
      'otlp-tls-ca': { type: 'string' },
      'otlp-tls-cert': { type: 'string' },
      'otlp-tls-key': { type: 'string' },
      buckets: { type: 'string' },
      'max-series': { type: 'string', default: '100000' },
      'max-bytes': { type: 'string', default: String(32 * 1024 * 1024) },
      'max-series-per-exporter': { type: 'string', default: '20000' },
      'max-bytes-per-exporter': { type: 'string', default: String(8 * 1024 * 1024) },
      'web-max-requests': { type: 'string', default: '40' },
      'web-config-file': { type: 'string' },
      protocol: { type: 'string', default: 'auto' },
      threads: { type: 'string' },
      'stale-after': { type: 'string', default: '300' },
      'peak-hold': { type: 'string', default: '60' },
      'expire-series': { type: 'boolean', default: false },
      'allow-uid': { type: 'string', multiple: true, default: [] },
      'tls-ca': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-servername': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }),
);
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (positionals.length > 0) fail(`unexpected arguments: ${positionals.join(' ')}`);
if (values.connect.length === 0) fail('at least one --connect host:port is needed');
if (values.prometheus === undefined && values.otlp === undefined) fail('--prometheus and/or --otlp is needed');
const protocol = check('--protocol', () => parseProtocol(values.protocol));
if (values.prometheus !== undefined) check('--prometheus', () => parseListenAddress(values.prometheus));
const buckets = values.buckets?.split(',').map((b) => (b.trim() === '' ? Number.NaN : Number(b)));
if (buckets?.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!))) fail('--buckets must be ascending numbers');
const otlpIntervalMs = positive('--otlp-interval', values['otlp-interval']);
if (!['explicit', 'exponential'].includes(values['otlp-histogram'])) fail(`--otlp-histogram must be explicit or exponential, got ${values['otlp-histogram']}`);
const otlpHeaders: Record<string, string> = {};
for (const h of values['otlp-header']) {
  const eq = h.indexOf('=');
  if (eq <= 0) fail(`--otlp-header takes 'Name=value', got ${h}`);
  otlpHeaders[h.slice(0, eq).trim()] = h.slice(eq + 1).trim();
}
const whole = (flag: string, value: string, zero = false): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < (zero ? 0 : 1)) fail(`${flag} must be a whole number${zero ? '' : ' from 1'}, got ${value}`);
  return n;
};
const maxSeries = whole('--max-series', values['max-series']);
const maxBytes = whole('--max-bytes', values['max-bytes']);
const maxSeriesPerExporter = whole('--max-series-per-exporter', values['max-series-per-exporter']);
const maxBytesPerExporter = whole('--max-bytes-per-exporter', values['max-bytes-per-exporter']);
const maxRequests = whole('--web-max-requests', values['web-max-requests'], true);
const threads = values.threads === undefined ? undefined : whole('--threads', values.threads);
const staleAfterMs = positive('--stale-after', values['stale-after']) * 1000;
const peakHoldMs = positive('--peak-hold', values['peak-hold']) * 1000;
const allowUids = values['allow-uid'].map((u) => whole('--allow-uid', u, true));

// Stop on a signal, even while starting; give the last export a bounded time.
let stopping: (() => void) | undefined;
const stop = () => (stopping ? stopping() : process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
const { startRelay } = await import('./index.js');
let relay;
try {
  relay = await startRelay({
    connect: values.connect,
    protocol,
    prometheus: values.prometheus,
    otlp: values.otlp,
    otlpIntervalMs,
    otlpHeaders,
    otlpTls: { ca: values['otlp-tls-ca'], cert: values['otlp-tls-cert'], key: values['otlp-tls-key'] },
    otlpHistogram: values['otlp-histogram'] as 'explicit' | 'exponential',
    buckets,
    maxSeries,
    maxBytes,
    maxSeriesPerExporter,
    maxBytesPerExporter,
    maxRequests,
    webConfigFile: values['web-config-file'],
    threads,
    staleAfterMs,
    expireSeries: values['expire-series'],
    peakHoldMs,
    allowUids,
    tls:
      values['tls-ca'] === undefined && values['tls-cert'] === undefined && values['tls-key'] === undefined && values['tls-servername'] === undefined
        ? undefined
        : { ca: values['tls-ca'], cert: values['tls-cert'], key: values['tls-key'], servername: values['tls-servername'] },
    log: process.stderr,
  });
} catch (err) {
  process.stderr.write(`metrics-exporter-tcp-relay: ${(err as Error).message}\n`);
  process.exit(1);
}
if (relay.prometheus) process.stderr.write(`relay: serving ${JSON.stringify(relay.prometheus.address)} /metrics\n`);
const running = relay;
stopping = () => {
  setTimeout(() => process.exit(0), 5000).unref();
  void running.close().then(() => process.exit(0));
};

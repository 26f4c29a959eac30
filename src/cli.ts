#!/usr/bin/env node
// The package's command: `metrics-exporter-tcp observe …` and `metrics-exporter-tcp relay …`.
import { parseArgs } from 'node:util';

const USAGE = `usage:
  metrics-exporter-tcp observe [host:port | unix-socket-path]      (default 127.0.0.1:5000)
      --protocol auto|seed|observer-0.11   wire format (default auto: told by the first metric)
      --json                          print JSON snapshots instead of the live view
      --once                          with --json: one snapshot after --duration, then exit
      --duration <ms>                 collection time for --json (default 1000)
  metrics-exporter-tcp relay --connect host:port [--connect host:port …]
      --prometheus host:port          serve GET /metrics (Prometheus text format) there
      --otlp <url> [--otlp-interval <ms>]   push to an OTLP/HTTP metrics endpoint (default every 10000 ms)
      --buckets 0.005,0.01,…          histogram bucket bounds (default prom-client's)
      --max-series <n>                series kept at most (default 100000)
      --protocol auto|seed|observer-0.11`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

function parse(args: string[]) {
  try {
    return parseArgs({
      args,
      allowPositionals: true,
      options: {
        protocol: { type: 'string', default: 'auto' },
        json: { type: 'boolean', default: false },
        once: { type: 'boolean', default: false },
        duration: { type: 'string', default: '1000' },
        connect: { type: 'string', multiple: true, default: [] },
        prometheus: { type: 'string' },
        otlp: { type: 'string' },
        'otlp-interval': { type: 'string', default: '10000' },
        buckets: { type: 'string' },
        'max-series': { type: 'string', default: '100000' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    fail((err as Error).message);
  }
}

function positive(what: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) fail(`${what} must be a positive number, got ${value}`);
  return n;
}

const [command, ...rest] = process.argv.slice(2);
const { values, positionals } = parse(rest);
if (values.help || command === '--help' || command === '-h') {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const protocol = values.protocol;
if (protocol !== 'seed' && protocol !== 'observer-0.11' && protocol !== 'auto') fail(`--protocol must be auto, seed or observer-0.11, got ${protocol}`);

if (command === 'observe') {
  const [address = '127.0.0.1:5000', ...extra] = positionals;
  if (extra.length > 0) fail(`unexpected arguments: ${extra.join(' ')}`);
  if (values.once && !values.json) fail('--once goes with --json');
  const { observe } = await import('./observer/run.js');
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  process.exitCode = await observe({
    address,
    protocol,
    json: values.json,
    once: values.once,
    durationMs: positive('--duration', values.duration),
    out: process.stdout,
    err: process.stderr,
    signal: stop.signal,
  });
} else if (command === 'relay') {
  if (positionals.length > 0) fail(`unexpected arguments: ${positionals.join(' ')}`);
  if (values.connect.length === 0) fail('relay needs at least one --connect host:port');
  if (values.prometheus === undefined && values.otlp === undefined) fail('relay needs --prometheus and/or --otlp');
  const buckets = values.buckets === undefined ? undefined : values.buckets.split(',').map((b) => (b.trim() === '' ? Number.NaN : Number(b)));
  if (buckets?.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!))) fail('--buckets must be ascending numbers');
  // Stop on a signal, even while starting; give the last export a bounded time.
  let stopping: (() => void) | undefined;
  const stop = () => {
    if (stopping) return stopping();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const { startRelay } = await import('./relay/run.js');
  const { DEFAULT_BUCKETS } = await import('./relay/store.js');
  let relay;
  try {
    relay = await startRelay({
      connect: values.connect,
      protocol,
      prometheus: values.prometheus,
      otlp: values.otlp,
      otlpIntervalMs: positive('--otlp-interval', values['otlp-interval']),
      buckets: buckets ?? DEFAULT_BUCKETS,
      maxSeries: positive('--max-series', values['max-series']),
      log: process.stderr,
    });
  } catch (err) {
    fail(`relay: ${(err as Error).message}`);
  }
  if (relay.prometheus) process.stderr.write(`relay: serving ${JSON.stringify(relay.prometheus.address)} /metrics\n`);
  const running = relay;
  stopping = () => {
    setTimeout(() => process.exit(0), 5000).unref();
    void running.close().then(() => process.exit(0));
  };
} else {
  fail(command === undefined ? 'a command is needed' : `unknown command ${JSON.stringify(command)}`);
}

#!/usr/bin/env node
// The `metrics-exporter-tcp-observer` command: parses flags, owns the process's signals and
// exit code, and hands over to observe().
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseProtocol } from 'metrics-exporter-tcp/client';

const USAGE = `usage: metrics-exporter-tcp-observer [host:port | unix-socket-path]   (default 127.0.0.1:5000)
    --protocol auto|seed|observer-0.11   wire format (default auto: told by the first metric)
    --json                               print JSON snapshots instead of the live view
    --once                               with --json: one snapshot after --duration, then exit
    --duration <ms>                      collection time for --json (default 1000)
    --tls-ca FILE                        connect over TLS, trusting these authorities (PEM) for the exporter's certificate
    --tls-cert FILE --tls-key FILE       this client's certificate and key (PEM), for an exporter that asks for one
    --tls-servername NAME                the name the exporter's certificate must carry (default: the host)`;

function fail(message: string): never {
  process.stderr.write(`metrics-exporter-tcp-observer: ${message}\n${USAGE}\n`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      protocol: { type: 'string', default: 'auto' },
      json: { type: 'boolean', default: false },
      once: { type: 'boolean', default: false },
      duration: { type: 'string', default: '1000' },
      'tls-ca': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-servername': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
} catch (err) {
  fail((err as Error).message);
}
const { values, positionals } = parsed;
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const [address = '127.0.0.1:5000', ...extra] = positionals;
if (extra.length > 0) fail(`unexpected arguments: ${extra.join(' ')}`);
if (values.once && !values.json) fail('--once goes with --json');
const durationMs = Number(values.duration);
if (!Number.isFinite(durationMs) || durationMs <= 0) fail(`--duration must be a positive number, got ${values.duration}`);
let protocol;
try {
  protocol = parseProtocol(values.protocol);
} catch (err) {
  fail(`--protocol: ${(err as Error).message}`);
}

/** The PEM file of `flag`, or a usage error that names it and says what failed. */
function pemFile(flag: string, file: string | undefined): Buffer | undefined {
  if (file === undefined) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    fail(`${flag} ${file}: cannot read it: ${(err as Error).message}`);
  }
}
const files = { ca: values['tls-ca'], cert: values['tls-cert'], key: values['tls-key'] };
const tlsAsked = Object.values(files).some((f) => f !== undefined) || values['tls-servername'] !== undefined;
const tls = tlsAsked
  ? { ca: pemFile('--tls-ca', files.ca), cert: pemFile('--tls-cert', files.cert), key: pemFile('--tls-key', files.key), servername: values['tls-servername'] }
  : undefined;

const { observe } = await import('./run.js');
const stop = new AbortController();
process.once('SIGINT', () => stop.abort());
process.once('SIGTERM', () => stop.abort());
try {
  process.exitCode = await observe({
    address,
    protocol,
    json: values.json,
    once: values.once,
    durationMs,
    out: process.stdout,
    err: process.stderr,
    signal: stop.signal,
    tls,
  });
} catch (err) {
  // The client checks each PEM: say which file is not what it should be.
  const m = /^tls\.(ca|cert|key)(?:\[\d+\])?(.*)$/s.exec((err as Error).message);
  if (!(err instanceof TypeError) || m === null) throw err;
  fail(`--tls-${m[1]} ${files[m[1] as keyof typeof files]}${m[2]}`);
}

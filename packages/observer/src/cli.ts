#!/usr/bin/env node
// The `metrics-exporter-tcp-observer` command: parses flags, owns the process's signals and
// exit code, and hands over to observe().
import { parseArgs } from 'node:util';
import { parseProtocol } from 'metrics-exporter-tcp/client';

const USAGE = `usage: metrics-exporter-tcp-observer [host:port | unix-socket-path]   (default 127.0.0.1:5000)
    --protocol auto|seed|observer-0.11   wire format (default auto: told by the first metric)
    --json                               print JSON snapshots instead of the live view
    --once                               with --json: one snapshot after --duration, then exit
    --duration <ms>                      collection time for --json (default 1000)`;

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

const { observe } = await import('./run.js');
const stop = new AbortController();
process.once('SIGINT', () => stop.abort());
process.once('SIGTERM', () => stop.abort());
process.exitCode = await observe({
  address,
  protocol,
  json: values.json,
  once: values.once,
  durationMs,
  out: process.stdout,
  err: process.stderr,
  signal: stop.signal,
});

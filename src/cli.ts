#!/usr/bin/env node
// The package's command: `metrics-exporter-tcp observe [address] [--protocol …] [--json] [--once] [--duration ms]`.
import { parseArgs } from 'node:util';

const USAGE = `usage: metrics-exporter-tcp observe [host:port | unix-socket-path]
    --protocol seed|observer-0.11   wire format (default seed)
    --json                          print JSON snapshots instead of the live view
    --once                          with --json: one snapshot after --duration, then exit
    --duration <ms>                 collection time for --json (default 1000)
  address defaults to 127.0.0.1:5000`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      protocol: { type: 'string', default: 'seed' },
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
const [command, address = '127.0.0.1:5000', ...extra] = positionals;
if (command !== 'observe') fail(command === undefined ? 'a command is needed' : `unknown command ${JSON.stringify(command)}`);
if (extra.length > 0) fail(`unexpected arguments: ${extra.join(' ')}`);
const protocol = values.protocol;
if (protocol !== 'seed' && protocol !== 'observer-0.11') fail(`--protocol must be seed or observer-0.11, got ${protocol}`);
const durationMs = Number(values.duration);
if (!Number.isFinite(durationMs) || durationMs <= 0) fail(`--duration must be a positive number of milliseconds`);
if (values.once && !values.json) fail('--once goes with --json');

const { observe } = await import('./observer/run.js');
process.exitCode = await observe({
  address,
  protocol,
  json: values.json,
  once: values.once,
  durationMs,
  out: process.stdout,
  err: process.stderr,
});

// The relay's command: its new flags reach startRelay, bad ones are usage errors.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TcpBuilder } from 'metrics-exporter-tcp';
import { waitUntil } from './wait.js';

const CLI = new URL('../src/cli.js', import.meta.url).pathname;

test('metrics-exporter-tcp-relay --connect <glob> with its flags serves /metrics, and exits 0 on SIGTERM', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mtcp-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const exporter = await new TcpBuilder().listenAddress({ path: join(dir, 'metrics-1.sock') }).build();
  t.after(() => exporter.close());
  const flags = ['--threads', '2', '--stale-after', '0.5', '--expire-series', '--max-series-per-exporter', '10', '--max-bytes-per-exporter', '100000', '--web-max-requests', '2'];
  const relay = spawn(process.execPath, [CLI, '--connect', join(dir, 'metrics-*.sock'), '--prometheus', '127.0.0.1:0', ...flags], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<number | null>((r) => relay.once('exit', r));
  t.after(() => relay.kill('SIGKILL'));
  let log = '';
  relay.stderr!.on('data', (d) => (log += d));
  await waitUntil('serving', async () => /serving \{.*\} \/metrics/.test(log), 10_000);
  const { port } = JSON.parse(/serving (\{.*\}) \/metrics/.exec(log)![1]!) as { port: number };
  await waitUntil('connected', async () => exporter.stats().clients === 1, 10_000);
  exporter.gauge('jobs').set(2);
  for (let i = 0; i < 12; i++) exporter.gauge({ name: 'many', labels: { i: String(i) } }).set(i); // with jobs, three past --max-series-per-exporter
  const scrape = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  await waitUntil('the series', async () => /^jobs\{exporter="[^"]+metrics-1\.sock"\} 2$/m.test(await scrape()), 10_000);
  // --expire-series with --stale-after 0.5: a gauge idle for longer goes.
  await waitUntil('the series to expire', async () => !/^jobs\{/m.test(await scrape()), 10_000);
  const text = await scrape();
  assert.match(text, /^metrics_exporter_tcp_relay_up\{exporter="[^"]+metrics-1\.sock"\} 1$/m);
  assert.match(text, /^metrics_exporter_tcp_relay_series_refused_total\{exporter="[^"]+metrics-1\.sock",reason="exporter_series"\} 3$/m);
  relay.kill('SIGTERM');
  assert.equal(await exited, 0);
});

test('bad flags are usage errors (exit 2), a glob with a wildcard in its directory is refused (exit 1)', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  for (const args of [
    ['--connect', '127.0.0.1:5000', '--prometheus', '127.0.0.1:0', '--threads', '0'],
    ['--connect', '127.0.0.1:5000', '--prometheus', '127.0.0.1:0', '--threads', '1.5'],
    ['--connect', '127.0.0.1:5000', '--prometheus', '127.0.0.1:0', '--stale-after', '-1'],
    ['--connect', '127.0.0.1:5000', '--prometheus', '127.0.0.1:0', '--max-bytes-per-exporter', '1e3x'],
    ['--connect', '127.0.0.1:5000', '--prometheus', '127.0.0.1:0', '--web-max-requests', '-1'],
    ['--connect', '127.0.0.1:5000', '--prometheus', '127.0.0.1:0', '--allow-uid', 'nobody'],
    ['--connect', '127.0.0.1:5000', '--otlp', 'http://127.0.0.1:4318/v1/metrics', '--otlp-header', 'Authorization'],
  ]) {
    const r = run(...args);
    assert.equal(r.status, 2, args.join(' '));
    assert.match(r.stderr, /usage:/);
  }
  const r = run('--connect', '/tmp/*/metrics.sock', '--prometheus', '127.0.0.1:0');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /only the file name may have wildcards/);
});

// A node:cluster app (the root's examples/cluster.ts: one exporter per worker process, on a unix
// socket of its own) relayed with one glob and scraped by a real Prometheus: the sum over the
// workers is what they served, and a worker that replaces a dead one is picked up by the glob.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NO_PROMETHEUS, PROMETHEUS, relayScrapedByPrometheus } from './harness.js';
import { waitFor } from './wait.js';

/** The root package's build of the example (packages/relay/dist/test → the repository root). */
const EXAMPLE = fileURLToPath(new URL('../../../../dist/examples/cluster.js', import.meta.url));

function get(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    // A connection per request, so the primary spreads them over the workers.
    request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => res.resume().on('end', resolve))
      .on('error', reject)
      .end();
  });
}

test('a node:cluster app relayed with a socket glob into Prometheus: sum(requests_total) is what the workers served', { skip: PROMETHEUS === undefined && NO_PROMETHEUS }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mtcp-cluster-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const app = spawn(process.execPath, [EXAMPLE], { env: { ...process.env, METRICS_DIR: dir, WORKERS: '2', PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((r) => app.once('exit', r));
  t.after(async () => {
    app.kill('SIGTERM');
    await exited;
  });
  const workers: number[] = [];
  let port = 0;
  createInterface({ input: app.stdout! }).on('line', (line) => {
    const m = /^worker (\d+): http:\/\/127\.0\.0\.1:(\d+)\//.exec(line);
    if (m === null) return;
    workers.push(Number(m[1]));
    port = Number(m[2]);
  });
  await waitFor('two workers', () => workers.length === 2, 15_000);

  const { prom } = await relayScrapedByPrometheus(t, [join(dir, 'metrics-*.sock')], { rescanMs: 500 });
  for (let i = 0; i < 300; i++) await get(port);
  await prom.until('count(requests_total)', [2]);
  await prom.until('sum(requests_total)', [300]);

  // A worker killed outright is replaced; the new one's socket matches the glob and is read.
  // (The dead one's series stay until --stale-after: its requests were served.)
  process.kill(workers[0]!, 'SIGKILL');
  await waitFor('a replacement worker', () => workers.length === 3, 15_000);
  for (let i = 0; i < 100; i++) await get(port);
  await prom.until('count(requests_total)', [3]);
  await prom.until('sum(requests_total)', [400]);
});

// The node:cluster example (examples/cluster.ts) run as a user runs it: worker processes sharing
// one HTTP port, each with its exporter on a unix socket of its own. A client of each socket
// connecting after the traffic sees that worker's total (replayOnConnect), and the totals add up
// to the requests served; a worker that dies is replaced and its socket removed; SIGTERM ends
// everything and leaves no socket behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { ROOT, TestClient, waitFor } from './helpers.js';

const EXAMPLE = join(ROOT, 'dist/examples/cluster.js');

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // agent: false: a connection per request, so the primary spreads them over the workers.
    request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
}

/** The `requests` total a client of `path` is told on connecting (the replay), then closes. */
async function totalAt(path: string): Promise<number> {
  const client = await TestClient.connect({ path });
  try {
    let total = 0;
    await waitFor(`the replay from ${path}`, () => {
      total = 0;
      for (const m of client.metrics()) {
        const e = m.event.value;
        if (e?.$typeName === 'event.proto.Metric' && e.name === 'requests' && e.value.case === 'counter') total += Number(e.value.value.value);
      }
      return client.metrics().length > 0;
    });
    return total;
  } finally {
    await client.close();
  }
}

test('a cluster app: one exporter per worker process on its own unix socket; their totals add up', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mtcp-cluster-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const app = spawn(process.execPath, [EXAMPLE], { env: { ...process.env, METRICS_DIR: dir, WORKERS: '2', PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => app.once('exit', (code) => resolve(code)));
  t.after(() => app.kill('SIGKILL'));
  const workers = new Map<number, string>(); // pid → socket
  let port = 0;
  createInterface({ input: app.stdout }).on('line', (line) => {
    const m = /^worker (\d+): http:\/\/127\.0\.0\.1:(\d+)\/, metrics on (.+)$/.exec(line);
    if (m) {
      workers.set(Number(m[1]), m[3]!);
      port = Number(m[2]);
    }
  });
  await waitFor('two workers', () => workers.size === 2, 15_000);
  assert.deepEqual(readdirSync(dir).sort(), [...workers.values()].map((p) => p.slice(dir.length + 1)).sort());

  const served = new Map<string, number>();
  for (let i = 0; i < 200; i++) {
    const by = await get(port);
    served.set(by, (served.get(by) ?? 0) + 1);
  }
  const totals = await Promise.all([...workers.values()].map(totalAt));
  assert.equal(totals.reduce((a, b) => a + b, 0), 200, `totals per worker ${totals} for ${JSON.stringify([...served])}`);

  // A worker killed outright cannot remove its socket: the primary does, and starts another.
  const [victim, victimSocket] = [...workers][0]!;
  process.kill(victim, 'SIGKILL');
  await waitFor('a replacement worker', () => workers.size === 3, 15_000);
  await waitFor('the dead worker\'s socket removed', () => !readdirSync(dir).includes(victimSocket.slice(dir.length + 1)));

  app.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.deepEqual(readdirSync(dir), [], 'every exporter removed its socket on close');
});

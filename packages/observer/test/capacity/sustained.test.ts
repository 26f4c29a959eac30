// The observer's capacity: exact at a sustained 1M records/s from an app in another process. A
// capacity test: `npm test` runs this folder after the others, alone, so that no other test
// takes the cores it measures.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { cli } from '../cli.js';

/** Starts the paced-app fixture; resolves with the child, its address, and its report once it has recorded. */
function pacedApp(rate: number, seconds: number): Promise<{ child: ChildProcess; address: string; report: Promise<{ made: number; perSecond: number; stats: { dropped: Record<string, number> } }> }> {
  const child = spawn(process.execPath, [new URL('../fixtures/paced-app.js', import.meta.url).pathname, String(rate), String(seconds)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const next = () => new Promise<string>((resolve) => lines.once('line', resolve));
  return next().then((first) => {
    const a = JSON.parse(first) as { host: string; port: number };
    return { child, address: `${a.host}:${a.port}`, report: next().then((l) => JSON.parse(l)) };
  });
}

test('observe --json --once is exact at a sustained 1M records/s from an app in another process (bufferSize 65536)', { timeout: 60_000 }, async (t) => {
  const app = await pacedApp(1_000_000, 3);
  t.after(() => app.child.kill());
  const r = await cli([app.address, '--json', '--once', '--duration', '7000']);
  const report = await app.report;
  t.diagnostic(`made ${report.made} records at ${Math.round(report.perSecond)}/s; exporter drops ${JSON.stringify(report.stats.dropped)}`);
  assert.equal(r.code, 0, r.stderr);
  const snap = JSON.parse(r.stdout);
  const requests = snap.metrics.find((m: { name: string }) => m.name === 'requests');
  assert.deepEqual(requests, { name: 'requests', labels: { service: 'api' }, kind: 'counter', value: requests.value });
  const { ringFull, clientQueue, invalid } = report.stats.dropped;
  assert.equal(clientQueue, 0, 'the observer kept up: its queue at the exporter never overflowed');
  // Exact: every record made is in the total, or (when the exporter's own worker was starved of
  // CPU and its ring overflowed, on a loaded machine) reported to the observer as lost.
  assert.equal(snap.lost ?? 0, ringFull + invalid);
  assert.equal(requests.value + (snap.lost ?? 0), report.made);
  if (ringFull > 0) t.diagnostic(`the exporter's ring overflowed (${ringFull} records): the machine did not sustain 1M/s for the app`);
  assert.ok(report.perSecond > 900_000, `the app sustained ${report.perSecond}/s`);
});

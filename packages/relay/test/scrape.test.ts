// Scrapes cost the exporters nothing: exporters are read on threads of their own, concurrent
// scrapes share one rendering, and requests beyond the cap are answered 503 at once.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { startRelay, type Relay } from '../src/run.js';
import { pacedApp, relayOptions } from './harness.js';
import { waitUntil } from './wait.js';

/** Blocks this thread (the relay's main thread: HTTP, OTLP) for `ms`. */
const block = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

test('reading never waits for the main thread: blocked for 1.5 s while an app streams 400 k records/s, the relay loses nothing', { timeout: 60_000 }, async (t) => {
  const app = await pacedApp();
  t.after(() => app.kill());
  const relay = await startRelay(relayOptions([app.address], { prometheus: '127.0.0.1:0', threads: 1 }));
  t.after(() => relay.close());
  await app.send({ op: 'clients', n: 1 });
  const n = 1_200_000;
  const streaming = app.send({ op: 'count', name: 'hits', n, rate: 400_000 });
  await new Promise((r) => setTimeout(r, 500));
  block(1500);
  const stats = await streaming;
  assert.equal(stats.dropped.clientQueue, 0, 'the exporter dropped records the relay did not read in time');
  const total = async () => (await relay.snapshot()).exporters[0]?.series.find((s) => s.name === 'hits')?.total;
  await waitUntil('every record', async () => (await total()) === BigInt(n - stats.dropped.ringFull), 10_000);
});

/**
 * `n` raw connections to the relay's /metrics, each sending its request in the same turn of
 * this thread's event loop (so they all arrive while the first is still being answered).
 */
async function simultaneous(relay: Relay, n: number): Promise<{ status: number }[]> {
  const { host, port } = relay.prometheus!.address as { host: string; port: number };
  const sockets: Socket[] = await Promise.all(
    Array.from({ length: n }, () => new Promise<Socket>((resolve) => {
      const s = connect(port, host, () => resolve(s));
    })),
  );
  const answers = sockets.map(
    (s) =>
      new Promise<{ status: number }>((resolve) => {
        let head = '';
        s.on('data', (d) => (head += d));
        s.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0) }));
      }),
  );
  for (const s of sockets) s.write(`GET /metrics HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  return Promise.all(answers);
}

test('concurrent scrapes share one rendering; beyond maxRequests in flight the answer is 503, at once', async (t) => {
  const relay = await startRelay(relayOptions(['127.0.0.1:1'], { prometheus: '127.0.0.1:0', maxRequests: 3 }));
  t.after(() => relay.close());
  const endpoint = relay.prometheus!;
  const statuses = (await simultaneous(relay, 8)).map((a) => a.status).sort();
  assert.deepEqual(statuses, [200, 200, 200, 503, 503, 503, 503, 503]);
  assert.deepEqual(endpoint.stats(), { requests: 8, renders: 1, rejected: 5 });
  // Once they are answered, there is room again, and a rendering of its own.
  assert.deepEqual((await simultaneous(relay, 2)).map((a) => a.status), [200, 200]);
  assert.ok(endpoint.stats().renders >= 2);
});

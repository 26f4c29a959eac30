// What the exporter costs when nothing happens: its worker sleeps. And what batching costs:
// a record waits at most about a flush interval. (The CPU figures are in `npm run bench -- cpu`.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TcpBuilder } from '../src/index.js';
import { startExporter, tally, TestClient, waitFor, withClient } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Wake-ups of the worker over `ms`, once what came before has finished: the count has not moved
 * for `settleMs` (a loaded machine may run the last rounds of a burst late).
 */
async function wakeupsOver(recorder: { stats(): { wakeups: number } }, ms: number, settleMs = 300): Promise<number> {
  for (let last = -1, tries = 0; recorder.stats().wakeups !== last && tries < 20; tries++) {
    last = recorder.stats().wakeups;
    await sleep(settleMs);
  }
  const before = recorder.stats().wakeups;
  await sleep(ms);
  return recorder.stats().wakeups - before;
}

test('with no client the worker sleeps: no wake-up in a second', async (t) => {
  const recorder = await startExporter();
  t.after(() => recorder.close());
  const c = recorder.counter('idle');
  const app = setInterval(() => c.increment(), 1); // recording with nobody listening costs nothing
  t.after(() => clearInterval(app));
  assert.equal(await wakeupsOver(recorder, 1000), 0);
});

test('with a client and no records the worker sleeps; after records stop, it goes back to sleep', async (t) => {
  const { recorder, client } = await withClient((b) => b.flushIntervalMs(20));
  t.after(() => recorder.close());
  t.after(() => client.close());
  assert.equal(await wakeupsOver(recorder, 1000), 0, 'asleep with a client connected');
  const c = recorder.counter('burst');
  for (let i = 0; i < 1000; i++) c.increment();
  await waitFor('the burst', () => tally(client.events()).metrics === 1000);
  assert.ok(recorder.stats().wakeups > 0);
  assert.equal(await wakeupsOver(recorder, 1000), 0, 'asleep again once the records stopped');
});

test('a record reaches the client within about a flush interval, in batches', async (t) => {
  const { recorder, client } = await withClient((b) => b.flushIntervalMs(100));
  t.after(() => recorder.close());
  t.after(() => client.close());
  const c = recorder.counter('sparse');
  await sleep(200); // the worker is idle
  const wakeupsBefore = recorder.stats().wakeups;
  const started = performance.now();
  // A record every 10 ms for 300 ms: with a 100 ms flush interval they go out in a few batches.
  for (let i = 0; i < 30; i++) {
    c.increment();
    await sleep(10);
  }
  await waitFor('30 records', () => tally(client.events()).metrics === 30, 5000);
  const took = performance.now() - started;
  const wakeups = recorder.stats().wakeups - wakeupsBefore;
  t.diagnostic(`30 records over ${took.toFixed(0)} ms, ${wakeups} wake-ups of the worker`);
  assert.ok(took < 300 + 100 + 500, `the last record arrived within a flush interval and a margin (${took.toFixed(0)} ms)`);
  assert.ok(wakeups < 15, `records were batched, not sent one by one (${wakeups} wake-ups for 30 records)`);
});

test('flushIntervalMs is validated like the other options', () => {
  for (const bad of [0, -1, 0.5, 60_001, Number.NaN, Number.POSITIVE_INFINITY, '50' as unknown as number, undefined as unknown as number]) {
    assert.throws(() => new TcpBuilder().flushIntervalMs(bad), TypeError, String(bad));
  }
  for (const good of [1, 2.5, 50, 60_000]) new TcpBuilder().flushIntervalMs(good);
});

test('a registration reaches an idle worker\'s clients without any record', async (t) => {
  const { recorder, client } = await withClient((b) => b.flushIntervalMs(20));
  t.after(() => recorder.close());
  t.after(() => client.close());
  await sleep(100);
  recorder.registerGauge('pool_size', 'count', 'Connections in the pool');
  await waitFor('the metadata', () => client.frames().length === 1, 2000);
  const late = await TestClient.connect(recorder.address);
  t.after(() => late.close());
  await waitFor('replayed', () => late.frames().length === 1);
});

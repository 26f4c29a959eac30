// A transport worker that dies is restarted by the exporter's host, which hands the new worker
// every live ring and the keys announced on it: nothing depends on the threads answering, and
// nothing a thread wrote before the crash is lost or miscounted (issue "Nothing lost").
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Piscina } from 'piscina';
import { withMetrics } from '../src/piscina.js';
import { crashWorker, startExporter, startThread, tally, view, waitFor, waitForConnect } from './helpers.js';

const fixture = (name: string): URL => new URL(`./fixtures/${name}`, import.meta.url);

test('after a restart, the threads of a piscina pool idle in Atomics.wait are still read', async (t) => {
  const recorder = await startExporter((b) => b.flushIntervalMs(10));
  t.after(() => recorder.close());
  // piscina's default atomics: 'sync': between tasks its threads block in Atomics.wait and never
  // turn their event loop, so they cannot answer anything the new worker asks.
  const pool = new Piscina(withMetrics(recorder, { filename: fixture('pool-task.js').href, minThreads: 2, maxThreads: 2 }));
  t.after(() => pool.destroy());
  await Promise.all(Array.from({ length: 8 }, () => pool.run({ n: 0 })));
  await waitFor('both threads attached', () => recorder.stats().attachedThreads === 2);

  await crashWorker(recorder);
  const client = await waitForConnect(recorder.address);
  t.after(() => client.close());
  await waitFor('the client registered', () => recorder.stats().clients === 1);
  assert.equal(recorder.stats().attachedThreads, 2, 'the new worker reads both rings');
  await Promise.all(Array.from({ length: 4 }, () => pool.run({ n: 500 })));
  await waitFor('every record of the pool', () => tally(client.events()).metrics === 2000, 5000, () => ({ got: tally(client.events()), stats: recorder.stats() }));
  assert.deepEqual(recorder.stats().dropped, { ringFull: 0, clientQueue: 0, invalid: 0, metadata: 0 });
});

test('records a thread left in its ring at the crash are drained with their keys: none invalid, all in the totals', async (t) => {
  // A flush interval long enough that the worker has not drained the thread's records when it dies.
  const recorder = await startExporter((b) => b.replayOnConnect(true).flushIntervalMs(60_000));
  t.after(() => recorder.close());
  const first = await waitForConnect(recorder.address);
  await waitFor('the client registered', () => recorder.stats().clients === 1);
  const th = startThread(recorder, [{ do: 'burst', n: 1000, key: 'jobs' }, { do: 'sleep', ms: 0 }, { do: 'signal' }], 'linger');
  t.after(() => th.worker.terminate());
  await th.signalled(2);
  await crashWorker(recorder);
  await first.close();

  const late = await waitForConnect(recorder.address);
  t.after(() => late.close());
  await waitFor('the totals replayed', () => view(late.events()).counters.jobs === 1000, 5000, () => ({ view: view(late.events()), stats: recorder.stats() }));
  assert.equal(recorder.stats().dropped.invalid, 0, 'no valid record is counted as invalid');
  assert.equal(tally(late.events()).dropped.invalid, 0);
});

test('a thread that exits just before the crash, or during the restart, keeps its totals', async (t) => {
  const recorder = await startExporter((b) => b.replayOnConnect(true));
  t.after(() => recorder.close());
  // No client: the threads' records go to their state pages, folded when each thread ends.
  const before = startThread(recorder, [{ do: 'burst', n: 500, key: 'jobs', labels: { when: 'before' } }]);
  await before.exited;
  await crashWorker(recorder); // at once: the old worker may not have folded its ring yet
  const during = startThread(recorder, [{ do: 'burst', n: 300, key: 'jobs', labels: { when: 'during' } }]);
  await during.exited;

  const late = await waitForConnect(recorder.address);
  t.after(() => late.close());
  const totals = (): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const e of late.events()) {
      if (e.event.case !== 'metric' || e.event.value.value.case !== 'counter') continue;
      const when = e.event.value.labels.when!;
      out[when] = (out[when] ?? 0) + Number(e.event.value.value.value.value);
    }
    return out;
  };
  await waitFor('both threads\' totals', () => totals().before === 500 && totals().during === 300, 5000, () => ({ totals: totals(), stats: recorder.stats() }));
  await waitFor('their rings released', () => recorder.stats().attachedThreads === 0);
});

// The hot path allocates nothing: a million records grow the app thread's heap by almost nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { withClient, waitFor } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

test('1e6 handle records with a client connected allocate (almost) nothing on the app thread', async (t) => {
  const { recorder, client } = await withClient((b) => b.bufferSize(1 << 16));
  t.after(() => recorder.close());
  t.after(() => client.close());
  client.socket.pause(); // frames are not what this test is about
  const c = recorder.counter({ name: 'alloc', labels: { a: 'b' } });
  const g = recorder.gauge('alloc_g');
  const h = recorder.histogram('alloc_h');
  const run = (n: number) => {
    for (let i = 0; i < n; i++) {
      c.increment(1);
      g.set(i);
      h.record(0.25); // a constant: arithmetic on doubles would allocate in the test's own code
    }
  };
  run(300_000); // warm up: compile the hot path, create the handles' caches
  const before = heapAfterGc();
  const usedBefore = process.memoryUsage().heapUsed;
  run(1_000_000 / 3);
  const usedAfter = process.memoryUsage().heapUsed; // before any GC: what the loop itself allocated
  const after = heapAfterGc();
  t.diagnostic(`loop allocated ${usedAfter - usedBefore} B, heap grew ${after - before} B over 1e6 records`);
  // 1e6 records; 16 bytes each on the heap would be 16 MB. Allow 256 KiB of noise
  // (the test runner, a microtask per burst).
  assert.ok(usedAfter - usedBefore < 256 * 1024, `the loop allocated ${usedAfter - usedBefore} bytes`);
  assert.ok(after - before < 256 * 1024, `the heap grew by ${after - before} bytes`);
  await waitFor('the worker drained', () => recorder.stats().recorded > 0);
});

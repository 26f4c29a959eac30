// The series cap shared by the relay's threads.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { SeriesBudget } from '../src/budget.js';

test('SeriesBudget: one cap over threads, on series and on bytes; a dead thread’s share is given back by release()', async () => {
  const main = new SeriesBudget(1000, 2);
  for (let i = 0; i < 400; i++) assert.ok(main.take('series'));
  // Another thread takes what is left, in slot 1, then exits.
  const worker = new Worker(new URL('./fixtures/budget-taker.js', import.meta.url), { workerData: { shared: main.shared, max: 1000 } });
  const taken = await new Promise<number>((r) => worker.once('message', r));
  await new Promise((r) => worker.once('exit', r));
  assert.equal(taken, 600);
  assert.ok(!main.take('series'));
  main.release(1);
  for (let i = 0; i < 600; i++) assert.ok(main.take('series'), `take ${i}`);
  assert.ok(!main.take('series'));
  main.give('series', 3);
  assert.ok(main.take('series') && main.take('series') && main.take('series') && !main.take('series'));
  assert.ok(main.take('metadata'), 'metadata names have a cap of their own');
  assert.ok(!main.take('bytes', 2 ** 31), 'bytes too, by default 2^31 - 1');
  const bytes = new SeriesBudget(10, 1, undefined, 0, 1000);
  assert.ok(bytes.take('bytes', 600) && !bytes.take('bytes', 401) && bytes.take('bytes', 400));
  const freed = bytes.freed;
  bytes.give('bytes', 1000);
  assert.notEqual(bytes.freed, freed, 'a give-back is counted');
  assert.ok(bytes.take('bytes', 1000));
});

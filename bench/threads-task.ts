// A piscina task for the threads bench: records `n` labeled counter increments through this
// thread's attached recorder (after `pauseMs`, so the ring starts empty) and returns ns/op.
import { metrics } from '../src/piscina.js';

const nap = new Int32Array(new SharedArrayBuffer(4));

export default function task({ n, pauseMs }: { n: number; pauseMs: number }): number {
  const c = metrics().counter({ name: 'jobs', labels: { pool: 'bench' } });
  if (pauseMs > 0) Atomics.wait(nap, 0, 0, pauseMs);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) c.increment();
  return Number(process.hrtime.bigint() - t0) / n;
}

// The pool's task file: `metrics()` is this thread's recorder, attached on first use.
import { metrics } from '../src/piscina.js';

export default function task({ size }: { size: number }): number {
  const m = metrics();
  const started = performance.now();
  let sum = 0;
  for (let i = 0; i < size; i++) sum += Math.sqrt(i); // the "work"
  m.counter({ name: 'tasks', labels: { pool: 'example' } }).increment();
  m.histogram('task_seconds').record((performance.now() - started) / 1000);
  return sum;
}

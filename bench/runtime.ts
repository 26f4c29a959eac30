// What collectRuntimeMetrics() costs the app's thread: CPU time per collection, measured as the
// thread's CPU over a stretch of collections every 10 ms minus the same stretch idle.
import { TcpBuilder } from '../src/index.js';
import { schedstatNs, sleep } from './measure.js';

/** CPU time of this thread so far, in µs (Linux: schedstat; elsewhere the process's). */
function threadCpuUs(): number {
  try {
    return schedstatNs('/proc/thread-self/schedstat') / 1000;
  } catch {
    const u = process.cpuUsage();
    return u.user + u.system;
  }
}

export interface RuntimeCost {
  collections: number;
  usPerCollection: number;
  /** % of one core at the default interval (5 s). */
  pctAtDefault: number;
}

export async function runRuntimeCost(seconds: number): Promise<RuntimeCost> {
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  try {
    const idle0 = threadCpuUs();
    await sleep(seconds * 1000);
    const idle = threadCpuUs() - idle0;
    const intervalMs = 10;
    const c0 = threadCpuUs();
    const runtime = recorder.collectRuntimeMetrics({ intervalMs });
    await sleep(seconds * 1000);
    runtime.stop();
    const busy = threadCpuUs() - c0;
    const collections = Math.round((seconds * 1000) / intervalMs) + 1;
    const us = Math.max(0, busy - idle) / collections;
    return { collections, usPerCollection: us, pctAtDefault: (us / 5e6) * 100 };
  } finally {
    await recorder.close();
  }
}

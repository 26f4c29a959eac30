// Does the producer thread allocate? Record 10M times with a client connected and watch the
// producer isolate's garbage collections (PerformanceObserver 'gc' sees only this thread's
// isolate; the exporter's worker has its own heap) and its heap use.
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { TcpBuilder } from '../src/index.js';
import { tick } from './measure.js';
import { Sink } from './sink.js';

export interface GcResult {
  records: number;
  gcEvents: number;
  heapGrowthBytes: number;
  bytesPerRecord: number;
}

/** What one traced loop did to the producer thread's heap. */
export interface AllocationTrace {
  gcEvents: number;
  heapGrowthBytes: number;
}

/**
 * Runs `loop(calls)` once after a warm-up and a full GC, and reports the GCs of this thread's
 * isolate (PerformanceObserver 'gc') and its heap growth meanwhile.
 */
export async function traceAllocation(loop: (n: number) => void, calls: number): Promise<AllocationTrace> {
  loop(Math.min(500_000, calls)); // warm up (optimised code, caches)
  (globalThis as { gc?: () => void }).gc?.();
  let gcEvents = 0;
  const obs = new PerformanceObserver((list) => (gcEvents += list.getEntries().length));
  obs.observe({ entryTypes: ['gc'] });
  const heap0 = getHeapStatistics().used_heap_size;
  // No awaits inside: a GC, if any happened, would be reported once we yield below.
  loop(calls);
  const heap1 = getHeapStatistics().used_heap_size;
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  return { gcEvents, heapGrowthBytes: heap1 - heap0 };
}

export async function runGcTrace(records: number): Promise<GcResult> {
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').bufferSize(65_536).build();
  const sink = await Sink.start({ port: (recorder.address as { port: number }).port, clients: 1, slow: -1, probeMinLength: 1e9 });
  try {
    while (recorder.stats().clients !== 1) await tick();
    const c = recorder.counter({ name: 'requests', labels: { service: 'api', region: 'eu' } });
    const g = recorder.gauge('queue_depth');
    const trace = await traceAllocation((n: number) => {
      for (let i = 0; i < n; i++) {
        c.increment();
        g.set(i);
      }
    }, records / 2);
    return { records, gcEvents: trace.gcEvents, heapGrowthBytes: trace.heapGrowthBytes, bytesPerRecord: trace.heapGrowthBytes / records };
  } finally {
    await sink.close();
    await recorder.close();
  }
}

import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay, PerformanceObserver, performance, type EventLoopUtilization } from 'node:perf_hooks';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { threadId } from 'node:worker_threads';
import type { Counter, Gauge, Histogram } from './handles.js';
import type { Labels } from './key.js';
import type { Unit } from './units.js';

/** Options of `collectRuntimeMetrics()`. */
export interface RuntimeMetricsOptions {
  /** How often the figures are read and recorded, in ms. Default 5000. */
  intervalMs?: number;
  /** Put before every metric name, e.g. `'myapp_'`. Default `''`. */
  prefix?: string;
}

/** What `collectRuntimeMetrics()` returns. */
export interface RuntimeMetrics {
  /** Stops collecting (the GC observer, the event-loop monitor and the timer). Safe to call twice. */
  stop(): void;
}

/** The part of the recording API the collector records through. */
export interface RuntimeSink {
  counter(key: string | { name: string; labels: Labels }): Counter;
  gauge(key: string | { name: string; labels: Labels }): Gauge;
  histogram(key: string | { name: string; labels: Labels }): Histogram;
  registerCounter(key: string, unit?: Unit, description?: string): void;
  registerGauge(key: string, unit?: Unit, description?: string): void;
  registerHistogram(key: string, unit?: Unit, description?: string): void;
}

const GC_KINDS: Record<number, string> = { 1: 'minor', 4: 'major', 8: 'incremental', 16: 'weakcb' };
const NS_PER_S = 1e9;

/** @throws TypeError for an interval that is not a number from 10 to 2^31-1 ms, or a prefix that is not a string. */
function checkOptions(o: RuntimeMetricsOptions): { intervalMs: number; prefix: string } {
  const { intervalMs = 5000, prefix = '' } = o;
  if (typeof intervalMs !== 'number' || !Number.isFinite(intervalMs) || intervalMs < 10 || intervalMs > 2 ** 31 - 1) {
    throw new TypeError(`intervalMs must be a number from 10 to 2147483647, got ${String(intervalMs)}`);
  }
  if (typeof prefix !== 'string') throw new TypeError(`prefix must be a string, got ${typeof prefix}`);
  return { intervalMs, prefix };
}

/**
 * Records Node's runtime figures under prom-client's default metric names (counters without
 * `_total`: the relay adds it), so that dashboards made for prom-client work. `scope` is
 * `'process'` on the main recorder: process figures (CPU, memory, file descriptors, start time,
 * version) and this thread's; `'thread'` in an attached thread: only that thread's heap, event
 * loop and GC, labeled `thread`. Everything is recorded through handles resolved once.
 */
export function startRuntimeMetrics(sink: RuntimeSink, options: RuntimeMetricsOptions, scope: 'process' | 'thread'): RuntimeMetrics {
  const { intervalMs, prefix } = checkOptions(options);
  const thread: Labels = scope === 'thread' ? { thread: String(threadId) } : {};
  const key = (name: string, labels: Labels = {}) => ({ name: prefix + name, labels: { ...thread, ...labels } });
  const describe = (kind: 'counter' | 'gauge' | 'histogram', name: string, unit: Unit | undefined, description: string) => {
    const n = prefix + name;
    if (kind === 'counter') sink.registerCounter(n, unit, description);
    else if (kind === 'gauge') sink.registerGauge(n, unit, description);
    else sink.registerHistogram(n, unit, description);
  };
  const gauge = (name: string, unit: Unit | undefined, description: string, labels?: Labels): Gauge => {
    describe('gauge', name, unit, description);
    return sink.gauge(key(name, labels));
  };
  /** A gauge per value of `label`, resolved once per value (a handful: heap spaces, resource types). */
  const gaugesBy = (name: string, label: string, unit: Unit | undefined, description: string): ((value: string) => Gauge) => {
    describe('gauge', name, unit, description);
    const byValue = new Map<string, Gauge>();
    return (value) => {
      let g = byValue.get(value);
      if (g === undefined) byValue.set(value, (g = sink.gauge(key(name, { [label]: value }))));
      return g;
    };
  };

  // This thread's heap, event loop and GC.
  const heapTotal = gauge('nodejs_heap_size_total_bytes', 'bytes', 'Process heap size from Node.js in bytes.');
  const heapUsed = gauge('nodejs_heap_size_used_bytes', 'bytes', 'Process heap size used from Node.js in bytes.');
  const external = gauge('nodejs_external_memory_bytes', 'bytes', 'Node.js external memory size in bytes.');
  const space = gaugesBy('nodejs_heap_space_size_used_bytes', 'space', 'bytes', 'Process heap space size used from Node.js in bytes.');
  const lag = gauge('nodejs_eventloop_lag_seconds', 'seconds', 'Lag of event loop in seconds.');
  const lagStats = (['min', 'max', 'mean', 'p50', 'p90', 'p99'] as const).map(
    (s) => [s, gauge(`nodejs_eventloop_lag_${s}_seconds`, 'seconds', `The ${s} of the recorded event loop delays.`)] as const,
  );
  const utilization = gauge('nodejs_eventloop_utilization', undefined, 'Share of the interval the event loop was busy (0 to 1).');
  // As prom-client: per type and in all, for libuv handles, libuv requests, and every resource
  // that keeps the event loop alive (handles, requests, timers). Types are Node's resource
  // names (`TCPSocketWrap`, `FSReqCallback`, `Timeout`…), where prom-client's handle and request
  // types are JavaScript class names (from an undocumented API).
  const activeOf = (what: string) => ({
    total: gauge(`nodejs_active_${what}_total`, 'count', `Total number of active ${what}.`),
    byType: gaugesBy(`nodejs_active_${what}`, 'type', 'count', `Number of active ${what} grouped by type.`),
    counts: new Map<string, number>(),
  });
  const activeHandles = activeOf('handles');
  const activeRequests = activeOf('requests');
  const activeResources = activeOf('resources');
  const active = [activeHandles, activeRequests, activeResources];
  const count = (a: typeof activeHandles, type: string): void => void a.counts.set(type, (a.counts.get(type) ?? 0) + 1);
  describe('histogram', 'nodejs_gc_duration_seconds', 'seconds', 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.');
  const gcKinds = new Map(Object.entries(GC_KINDS).map(([k, kind]) => [Number(k), sink.histogram(key('nodejs_gc_duration_seconds', { kind }))]));
  const monitor = monitorEventLoopDelay({ resolution: 10 });
  monitor.enable();
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcKinds.get((e as { detail?: { kind?: number } }).detail?.kind ?? 0)?.record(e.duration / 1000);
  });
  gc.observe({ entryTypes: ['gc'] });
  let elu: EventLoopUtilization = performance.eventLoopUtilization();

  // The process: on the main recorder only, so that threads do not count it twice.
  let processFigures: (() => void) | undefined;
  if (scope === 'process') {
    describe('counter', 'process_cpu_user_seconds', 'seconds', 'Total user CPU time spent in seconds (whole seconds; the fraction is carried).');
    describe('counter', 'process_cpu_system_seconds', 'seconds', 'Total system CPU time spent in seconds (whole seconds; the fraction is carried).');
    describe('counter', 'process_cpu_seconds', 'seconds', 'Total user and system CPU time spent in seconds (whole seconds; the fraction is carried).');
    const cpu = [
      sink.counter(key('process_cpu_user_seconds')),
      sink.counter(key('process_cpu_system_seconds')),
      sink.counter(key('process_cpu_seconds')),
    ];
    gauge('process_start_time_seconds', 'seconds', 'Start time of the process since unix epoch in seconds.').set(
      Math.round(performance.timeOrigin / 1000),
    );
    const rss = gauge('process_resident_memory_bytes', 'bytes', 'Resident memory size in bytes.');
    const fds = openFds() === undefined ? undefined : gauge('process_open_fds', 'count', 'Number of open file descriptors.');
    const [major = '0', minor = '0', patch = '0'] = process.versions.node.split('.');
    gauge('nodejs_version_info', undefined, 'Node.js version info.', { version: process.version, major, minor, patch }).set(1);
    // Counters carry whole seconds (the wire's counters are integers): microseconds are
    // accumulated and each whole second sent once.
    const sentUs = [0, 0, 0];
    for (const c of cpu) c.increment(0); // the series exist from the start
    processFigures = () => {
      const u = process.cpuUsage();
      const totals = [u.user, u.system, u.user + u.system];
      for (let i = 0; i < 3; i++) {
        const whole = Math.floor((totals[i]! - sentUs[i]!) / 1e6);
        if (whole > 0) {
          cpu[i]!.increment(whole);
          sentUs[i]! += whole * 1e6;
        }
      }
      rss.set(process.memoryUsage.rss());
      const open = fds === undefined ? undefined : openFds();
      if (open !== undefined) fds!.set(open);
    };
  }

  const collect = (): void => {
    processFigures?.();
    const h = getHeapStatistics();
    heapTotal.set(h.total_heap_size);
    heapUsed.set(h.used_heap_size);
    external.set(h.external_memory);
    for (const s of getHeapSpaceStatistics()) space(s.space_name.replace(/_space$/, '')).set(s.space_used_size);
    if (monitor.count > 0) {
      const stat = { min: monitor.min, max: monitor.max, mean: monitor.mean, p50: monitor.percentile(50), p90: monitor.percentile(90), p99: monitor.percentile(99) };
      for (const [s, g] of lagStats) g.set(stat[s] / NS_PER_S);
    }
    monitor.reset();
    const now = performance.eventLoopUtilization();
    utilization.set(performance.eventLoopUtilization(now, elu).utilization);
    elu = now;
    for (const a of active) for (const type of a.counts.keys()) a.counts.set(type, 0); // a type gone since reads 0
    for (const type of process.getActiveResourcesInfo()) {
      count(activeResources, type);
      if (/Req(Wrap|Callback)?$/.test(type)) count(activeRequests, type);
      else if (type !== 'Timeout' && type !== 'Immediate') count(activeHandles, type); // timers are not libuv handles
    }
    for (const a of active) {
      let total = 0;
      for (const [type, n] of a.counts) {
        a.byType(type).set(n);
        total += n;
      }
      a.total.set(total);
    }
    const asked = performance.now();
    setImmediate(() => lag.set((performance.now() - asked) / 1000)).unref();
  };
  collect();
  const timer = setInterval(collect, intervalMs).unref();
  let stopped = false;
  return {
    stop(): void {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      monitor.disable();
      gc.disconnect();
    },
  };
}

/**
 * The process's open file descriptors, from /proc (without the directory's own); undefined where
 * it cannot be read: off Linux, or under Deno without `--allow-all`.
 */
function openFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return undefined;
  }
}

import { startRuntimeMetrics, type RuntimeMetrics, type RuntimeMetricsOptions } from './runtime-metrics.js';
import type { Unit } from './units.js';
import { checkBuckets } from '../client/prometheus.js';
import { CaptureGaugeHandle, CounterHandle, EndpointHistogramHandle, GaugeHandle, HistogramHandle, RefusedHandle, ReplayCounterHandle, ReplayGaugeHandle } from './handles.js';
import type { Counter, Gauge, Histogram } from './handles.js';
import type { Key } from './key.js';
import { REFUSED, type Registry } from './registry.js';
import type { RingWriter } from './ring-writer.js';

/** Options of `registerHistogram`. */
export interface HistogramOptions {
  /**
   * With the Prometheus endpoint: the upper bounds of the histogram's classic buckets (finite,
   * ascending; +Inf is added). Default: chosen from its unit (see the README).
   */
  buckets?: readonly number[];
}

/** A gauge update, as the seed's `GaugeValue`: exactly one of the three fields. */
export type GaugeValue = { absolute: number } | { increment: number } | { decrement: number };

/**
 * Caches the handle of each key so that key-based calls cost a map lookup, not a key
 * normalisation: by identity for key objects, by string for names.
 */
class HandleCache<H> {
  private readonly byName = new Map<string, H>();
  private readonly byObject = new WeakMap<object, H>();
  private readonly byId = new Map<number, H>();

  constructor(private readonly make: (id: number) => H) {}

  get(key: Key, registry: Registry): H {
    if (typeof key === 'string') {
      let h = this.byName.get(key);
      if (h === undefined) {
        const id = registry.keyId(key);
        h = this.forId(id);
        // A refused name is not remembered: the cache stays bounded by maxKeys too.
        if (id !== REFUSED) this.byName.set(key, h);
      }
      return h;
    }
    let h = typeof key === 'object' && key !== null ? this.byObject.get(key) : undefined;
    if (h === undefined) {
      h = this.forId(registry.keyId(key));
      this.byObject.set(key, h);
    }
    return h;
  }

  private forId(id: number): H {
    let h = this.byId.get(id);
    if (h === undefined) {
      h = this.make(id);
      this.byId.set(id, h);
    }
    return h;
  }
}

/**
 * The recording API: register calls, key-based calls and handles. The main recorder and the
 * recorders that other threads attach share it; each instance owns one ring.
 */
export class Recording {
  private readonly counters: HandleCache<Counter>;
  private readonly gauges: HandleCache<Gauge>;
  private readonly histograms: HandleCache<Histogram>;
  /** Runtime collectors started here and not stopped yet. */
  protected readonly collectors = new Set<RuntimeMetrics>();

  /** @internal */
  constructor(
    protected readonly writer: RingWriter,
    protected readonly registry: Registry,
  ) {
    const refused = new RefusedHandle(writer);
    const pick =
      <H>(make: (id: number) => H) =>
      (id: number): H =>
        id === REFUSED ? (refused as H) : make(id);
    this.counters = new HandleCache<Counter>(
      pick((id) => (registry.replay ? new ReplayCounterHandle(writer, id, registry.stateOf(id)) : new CounterHandle(writer, id))),
    );
    this.gauges = new HandleCache<Gauge>(
      pick((id) =>
        registry.capture ? new CaptureGaugeHandle(writer, id) : registry.replay ? new ReplayGaugeHandle(writer, id, registry.stateOf(id)) : new GaugeHandle(writer, id),
      ),
    );
    this.histograms = new HandleCache<Histogram>(pick((id) => (registry.endpoint ? new EndpointHistogramHandle(writer, id) : new HistogramHandle(writer, id))));
  }

  /**
   * Publishes, synchronously, every record this thread has written. Records are otherwise
   * published every 64 records and, for the rest, once per turn of the main thread's event loop
   * (an immediate) or at the end of each job on other threads (a microtask), so a thread that
   * runs a synchronous loop and never returns to its event loop must call this for its records
   * to be sent (e.g. once per job). Costs one atomic store, and a wake-up of the exporter's
   * worker if it sleeps.
   */
  flush(): void {
    this.writer.publish();
  }

  /**
   * Records Node's runtime figures every `intervalMs` (default 5000) under prom-client's default
   * metric names: CPU, memory, heap and heap spaces, event-loop lag and utilization, active
   * handles and requests, open file descriptors (Linux), version, and one histogram record per
   * GC. On an attached thread, only that thread's heap, event loop and GC, labeled `thread`.
   * The timer never keeps the process alive. The recorder's `close()` stops it too (on an
   * attached thread: `stop()`, or the thread's end).
   * @throws TypeError for an invalid interval or prefix.
   */
  collectRuntimeMetrics(options: RuntimeMetricsOptions = {}): RuntimeMetrics {
    const inner = startRuntimeMetrics(this, options, this.runtimeScope());
    const handle: RuntimeMetrics = {
      stop: () => {
        this.collectors.delete(handle);
        inner.stop();
      },
    };
    this.collectors.add(handle);
    return handle;
  }

  /** Which runtime figures this recording reports: a thread's own (overridden by the main recorder). */
  protected runtimeScope(): 'process' | 'thread' {
    return 'thread';
  }

  /** Describes a counter: unit and description reach every client, now and on connect. */
  registerCounter(key: Key, unit?: Unit, description?: string): void {
    this.registry.describe('counter', key, unit, description);
  }

  /** Describes a gauge: unit and description reach every client, now and on connect. */
  registerGauge(key: Key, unit?: Unit, description?: string): void {
    this.registry.describe('gauge', key, unit, description);
  }

  /**
   * Describes a histogram: unit and description reach every client, now and on connect. With the
   * Prometheus endpoint, `options.buckets` are its classic buckets' upper bounds in text
   * expositions (default: chosen from the unit); register before the first observation.
   * @throws TypeError for bounds that are not finite and ascending
   */
  registerHistogram(key: Key, unit?: Unit, description?: string, options?: HistogramOptions): void {
    const buckets = options?.buckets === undefined ? undefined : checkBuckets('registerHistogram options.buckets', options.buckets);
    this.registry.describe('histogram', key, unit, description, buckets);
  }

  /** A counter handle: resolve the key once, then record with no allocation. */
  counter(key: Key): Counter {
    return this.counters.get(key, this.registry);
  }

  /** A gauge handle: resolve the key once, then record with no allocation. */
  gauge(key: Key): Gauge {
    return this.gauges.get(key, this.registry);
  }

  /** A histogram handle: resolve the key once, then record with no allocation. */
  histogram(key: Key): Histogram {
    return this.histograms.get(key, this.registry);
  }

  /** Seed-style counter increment; `value` as for {@link Counter.increment}. */
  incrementCounter(key: Key, value: number | bigint): void {
    this.counters.get(key, this.registry).increment(value);
  }

  /** Seed-style gauge update. */
  updateGauge(key: Key, value: GaugeValue): void {
    const g = this.gauges.get(key, this.registry);
    if ('absolute' in value) g.set(value.absolute);
    else if ('increment' in value) g.increment(value.increment);
    else if ('decrement' in value) g.decrement(value.decrement);
    else g.set(Number.NaN); // not a GaugeValue: dropped and counted as invalid
  }

  /** Seed-style histogram record. */
  recordHistogram(key: Key, value: number): void {
    this.histograms.get(key, this.registry).record(value);
  }
}

import { checkDescription, checkUnit, type Unit } from './units.js';
import { checkBuckets } from '../client/prometheus.js';
import { noopHandle, type Counter, type Gauge, type Histogram } from './handles.js';
import { normalizeKey, type Key } from './key.js';
import type { HistogramOptions } from './recording.js';
import { capturing, getGlobal, type TcpRecorder } from './recorder.js';
import type { MetricKind } from '../shared/messages.js';

// The global recorder's API, like the metrics crate's macros.
//
// A handle asked for while a recorder is installed with `install()` is that recorder's own (the
// fast path, a few nanoseconds). One asked for while none is installed, or while a capture
// (`captureMetrics()`) is, follows the global recorder instead: each record goes to whichever is
// installed at that moment, and does nothing while none is. So handles made at module level,
// when a module is imported before `install()` or before a test's `captureMetrics()`, record once
// one is installed, and a test's handles follow each capture that comes after.

/**
 * A handle that records into whichever global recorder is installed when it records: it keeps
 * the handle of the recorder it last saw, and asks the new one for its own when that changes
 * (one comparison per record while it does not).
 */
abstract class Following<H> {
  private seen: TcpRecorder | undefined;
  private handle: H;

  constructor(
    private readonly key: Key,
    private readonly make: (recorder: TcpRecorder, key: Key) => H,
    private readonly noop: H,
  ) {
    this.handle = noop;
  }

  protected current(): H {
    const r = getGlobal();
    if (r !== this.seen) {
      this.seen = r;
      this.handle = r === undefined ? this.noop : this.make(r, this.key);
    }
    return this.handle;
  }
}

class FollowingCounter extends Following<Counter> implements Counter {
  increment(value?: number | bigint): void {
    this.current().increment(value);
  }
}

class FollowingGauge extends Following<Gauge> implements Gauge {
  set(value: number): void {
    this.current().set(value);
  }
  increment(value: number): void {
    this.current().increment(value);
  }
  decrement(value: number): void {
    this.current().decrement(value);
  }
}

class FollowingHistogram extends Following<Histogram> implements Histogram {
  record(value: number): void {
    this.current().record(value);
  }
}

/**
 * The key as a fresh object (validated now, so a bad key throws where the handle is asked for):
 * a handle that follows the global recorder asks each new one for it.
 */
function ownKey(key: Key): Key {
  const k = normalizeKey(key);
  return k.labels.length === 0 ? k.name : { name: k.name, labels: Object.fromEntries(k.labels) };
}

/** The installed recorder, when handles are to be its own rather than follow the global one. */
function fixed(): TcpRecorder | undefined {
  return capturing() ? undefined : getGlobal();
}

/**
 * A counter handle from the global recorder. Asked for before `install()` (or under
 * `captureMetrics()`), it follows the global recorder: it does nothing until one is installed.
 */
export function counter(key: Key): Counter {
  return fixed()?.counter(key) ?? new FollowingCounter(ownKey(key), (r, k) => r.counter(k), noopHandle);
}

/**
 * A gauge handle from the global recorder. Asked for before `install()` (or under
 * `captureMetrics()`), it follows the global recorder: it does nothing until one is installed.
 */
export function gauge(key: Key): Gauge {
  return fixed()?.gauge(key) ?? new FollowingGauge(ownKey(key), (r, k) => r.gauge(k), noopHandle);
}

/**
 * A histogram handle from the global recorder. Asked for before `install()` (or under
 * `captureMetrics()`), it follows the global recorder: it does nothing until one is installed.
 */
export function histogram(key: Key): Histogram {
  return fixed()?.histogram(key) ?? new FollowingHistogram(ownKey(key), (r, k) => r.histogram(k), noopHandle);
}

/** Descriptions made through the functions below, by name: given to every global recorder installed later. */
const remembered = new Map<string, (r: TcpRecorder) => void>();
/** Most names remembered (the `maxKeys` default): further ones reach only the recorder installed then. */
const MAX_REMEMBERED = 10_000;

function describe(kind: MetricKind, key: Key, unit: unknown, description: unknown, options?: HistogramOptions): void {
  // Checked now, whether or not a recorder is installed: a mistake shows where it is made.
  const own = ownKey(key);
  const name = typeof own === 'string' ? own : own.name;
  const u = checkUnit(unit);
  const d = checkDescription(description);
  const buckets = options?.buckets === undefined ? undefined : { buckets: checkBuckets('describeHistogram options.buckets', options.buckets) };
  const apply = (r: TcpRecorder): void => {
    if (kind === 'counter') r.registerCounter(own, u, d);
    else if (kind === 'gauge') r.registerGauge(own, u, d);
    else r.registerHistogram(own, u, d, buckets);
  };
  if (remembered.has(name) || remembered.size < MAX_REMEMBERED) remembered.set(name, apply);
  const r = getGlobal();
  if (r !== undefined) apply(r);
}

/** @internal Gives a newly installed global recorder the descriptions made through the functions below. */
export function describeRemembered(recorder: TcpRecorder): void {
  for (const apply of remembered.values()) apply(recorder);
}

/**
 * Registers a counter's unit and description with the global recorder, and with every global
 * recorder installed later (so a module may describe its metrics when it is imported).
 */
export function describeCounter(key: Key, unit?: Unit, description?: string): void {
  describe('counter', key, unit, description);
}

/**
 * Registers a gauge's unit and description with the global recorder, and with every global
 * recorder installed later (so a module may describe its metrics when it is imported).
 */
export function describeGauge(key: Key, unit?: Unit, description?: string): void {
  describe('gauge', key, unit, description);
}

/**
 * Registers a histogram's unit and description (and, with the Prometheus endpoint, its classic
 * buckets) with the global recorder, and with every global recorder installed later.
 */
export function describeHistogram(key: Key, unit?: Unit, description?: string, options?: HistogramOptions): void {
  describe('histogram', key, unit, description, options);
}

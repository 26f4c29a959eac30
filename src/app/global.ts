import type { Unit } from './units.js';
import { noopHandle, type Counter, type Gauge, type Histogram } from './handles.js';
import type { Key } from './key.js';
import type { HistogramOptions } from './recording.js';
import { getGlobal } from './recorder.js';

// The global recorder's API, like the metrics crate's macros. Before `install()` (or after the
// global recorder is closed) handles do nothing and describe calls are ignored.

/** A counter handle from the global recorder (a no-op handle if none is installed). */
export function counter(key: Key): Counter {
  return getGlobal()?.counter(key) ?? noopHandle;
}

/** A gauge handle from the global recorder (a no-op handle if none is installed). */
export function gauge(key: Key): Gauge {
  return getGlobal()?.gauge(key) ?? noopHandle;
}

/** A histogram handle from the global recorder (a no-op handle if none is installed). */
export function histogram(key: Key): Histogram {
  return getGlobal()?.histogram(key) ?? noopHandle;
}

/** Registers a counter's unit and description with the global recorder. */
export function describeCounter(key: Key, unit?: Unit, description?: string): void {
  getGlobal()?.registerCounter(key, unit, description);
}

/** Registers a gauge's unit and description with the global recorder. */
export function describeGauge(key: Key, unit?: Unit, description?: string): void {
  getGlobal()?.registerGauge(key, unit, description);
}

/** Registers a histogram's unit and description (and, with the Prometheus endpoint, its classic buckets) with the global recorder. */
export function describeHistogram(key: Key, unit?: Unit, description?: string, options?: HistogramOptions): void {
  getGlobal()?.registerHistogram(key, unit, description, options);
}

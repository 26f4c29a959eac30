import type { Attributes, Counter as OtelCounter, Gauge as OtelGauge, Histogram as OtelHistogram, UpDownCounter } from '@opentelemetry/api';
import type { Counter, Gauge, Histogram } from '../app/handles.js';
import type { Series, SeriesCache } from './series.js';

// The synchronous instruments. Each call finds its series (see SeriesCache) and records through
// the series' handle: with no client connected that is one plain read, and nothing is recorded.
// The `context` argument of the API is not taken: the wire format has no exemplars.

/**
 * Adds `value` to a counter series. Our counters count whole units (u64 on the wire), so the
 * fractional part of an add is carried in the series and sent once the carried parts make a
 * whole: `add(0.5)` twice sends one increment of 1. What is sent is the running sum rounded
 * down (to double precision). A negative, NaN or infinite value goes to the handle as it is,
 * which drops it and counts it in `stats().dropped.invalid` (the spec says to ignore negative
 * adds); nothing is carried for it.
 */
export function addToCounter(series: Series<Counter>, value: number): void {
  if (series.fraction === 0 && Number.isSafeInteger(value)) return series.handle.increment(value);
  if (!(value >= 0 && value < Infinity)) return series.handle.increment(value);
  const total = series.fraction + value;
  const whole = Math.floor(total);
  series.fraction = total - whole;
  if (whole > 0) series.handle.increment(whole);
}

/** `Counter` → our counter. */
export class TcpCounter implements OtelCounter {
  constructor(private readonly series: SeriesCache<Counter>) {}

  add(value: number, attributes?: Attributes): void {
    addToCounter(this.series.get(attributes), value);
  }
}

/** `UpDownCounter` → our gauge: `add(v)` increments it, `add(-v)` decrements it. */
export class TcpUpDownCounter implements UpDownCounter {
  constructor(private readonly series: SeriesCache<Gauge>) {}

  add(value: number, attributes?: Attributes): void {
    const gauge = this.series.get(attributes).handle;
    // NaN goes to increment, which drops it and counts it as invalid.
    if (value < 0) gauge.decrement(-value);
    else gauge.increment(value);
  }
}

/** `Gauge` → our gauge, set to each value. */
export class TcpGauge implements OtelGauge {
  constructor(private readonly series: SeriesCache<Gauge>) {}

  record(value: number, attributes?: Attributes): void {
    this.series.get(attributes).handle.set(value);
  }
}

/** `Histogram` → our histogram: every value is sent (clients bucket them). */
export class TcpHistogram implements OtelHistogram {
  constructor(private readonly series: SeriesCache<Histogram>) {}

  record(value: number, attributes?: Attributes): void {
    this.series.get(attributes).handle.record(value);
  }
}

import type {
  Attributes,
  BatchObservableCallback,
  Counter as OtelCounter,
  Gauge as OtelGauge,
  Histogram as OtelHistogram,
  Meter,
  MetricOptions,
  Observable,
  ObservableCounter,
  ObservableGauge,
  ObservableUpDownCounter,
  UpDownCounter,
} from '@opentelemetry/api';
import type { Counter, Gauge } from '../app/handles.js';
import { normalizeKey, type Key } from '../app/key.js';
import type { Recording } from '../app/recording.js';
import { TcpCounter, TcpGauge, TcpHistogram, TcpUpDownCounter } from './instruments.js';
import { ObservedCounter, ObservedGauge, type Collection } from './observables.js';
import { SeriesCache } from './series.js';
import { wireUnit } from './units.js';

/** The instrument kinds of the API; each name has one instrument per kind. */
type InstrumentKind = 'counter' | 'upDownCounter' | 'gauge' | 'histogram' | 'observableCounter' | 'observableUpDownCounter' | 'observableGauge';

/** The wire kind each instrument kind records as (its metadata says so). */
const WIRE_KIND = {
  counter: 'counter',
  observableCounter: 'counter',
  upDownCounter: 'gauge',
  gauge: 'gauge',
  observableUpDownCounter: 'gauge',
  observableGauge: 'gauge',
  histogram: 'histogram',
} as const;

/**
 * The meter every `getMeter()` of a provider returns: the wire format has no instrumentation
 * scope, so meters of different names share their instruments (an instrument is its name
 * and kind, as a metric is its name on the wire).
 */
export class TcpMeter implements Meter {
  private readonly instruments = new Map<string, object>();

  constructor(
    private readonly recording: Recording,
    private readonly collection: Collection,
  ) {}

  createCounter<A extends Attributes = Attributes>(name: string, options?: MetricOptions): OtelCounter<A> {
    return this.instrument('counter', name, options, () => new TcpCounter(this.counterSeries(name)));
  }

  createUpDownCounter<A extends Attributes = Attributes>(name: string, options?: MetricOptions): UpDownCounter<A> {
    return this.instrument('upDownCounter', name, options, () => new TcpUpDownCounter(this.gaugeSeries(name)));
  }

  createGauge<A extends Attributes = Attributes>(name: string, options?: MetricOptions): OtelGauge<A> {
    return this.instrument('gauge', name, options, () => new TcpGauge(this.gaugeSeries(name)));
  }

  createHistogram<A extends Attributes = Attributes>(name: string, options?: MetricOptions): OtelHistogram<A> {
    return this.instrument('histogram', name, options, () =>
      new TcpHistogram(this.series(name, (key) => this.recording.histogram(key), (h) => ({ record: () => h.record(Number.NaN) }))),
    );
  }

  createObservableCounter<A extends Attributes = Attributes>(name: string, options?: MetricOptions): ObservableCounter<A> {
    return this.instrument('observableCounter', name, options, () => new ObservedCounter(this.collection, this.counterSeries(name)));
  }

  createObservableUpDownCounter<A extends Attributes = Attributes>(name: string, options?: MetricOptions): ObservableUpDownCounter<A> {
    return this.instrument('observableUpDownCounter', name, options, () => new ObservedGauge(this.collection, this.gaugeSeries(name)));
  }

  createObservableGauge<A extends Attributes = Attributes>(name: string, options?: MetricOptions): ObservableGauge<A> {
    return this.instrument('observableGauge', name, options, () => new ObservedGauge(this.collection, this.gaugeSeries(name)));
  }

  addBatchObservableCallback<A extends Attributes = Attributes>(callback: BatchObservableCallback<A>, observables: Observable<A>[]): void {
    this.collection.addBatch(callback as BatchObservableCallback, observables as Observable[]);
  }

  removeBatchObservableCallback<A extends Attributes = Attributes>(callback: BatchObservableCallback<A>, observables: Observable<A>[]): void {
    this.collection.removeBatch(callback as BatchObservableCallback, observables as Observable[]);
  }

  /**
   * The instrument of this kind and name, made on first use. Its first creation sends the
   * metadata when it has a unit the wire knows or a description; later creations return the
   * same instrument and their options are not used. `valueType` and `advice` are not used.
   * @throws TypeError / RangeError for an invalid name or description (as a key or register
   *   call would), at creation: recording calls never throw.
   */
  private instrument<T>(kind: InstrumentKind, name: string, options: MetricOptions | undefined, make: () => object): T {
    const id = `${kind}:${name}`;
    let instrument = this.instruments.get(id);
    if (instrument === undefined) {
      normalizeKey(name);
      const unit = wireUnit(options?.unit);
      const description = options?.description || undefined;
      if (unit !== undefined || description !== undefined) this.describe(WIRE_KIND[kind], name, unit, description);
      instrument = make();
      this.instruments.set(id, instrument);
    }
    return instrument as T;
  }

  private describe(kind: 'counter' | 'gauge' | 'histogram', name: string, unit: ReturnType<typeof wireUnit>, description: string | undefined): void {
    if (kind === 'counter') this.recording.registerCounter(name, unit, description);
    else if (kind === 'gauge') this.recording.registerGauge(name, unit, description);
    else this.recording.registerHistogram(name, unit, description);
  }

  private counterSeries(name: string): SeriesCache<Counter> {
    return this.series(name, (key) => this.recording.counter(key), (h) => ({ increment: () => h.increment(Number.NaN) }));
  }

  private gaugeSeries(name: string): SeriesCache<Gauge> {
    return this.series(
      name,
      (key) => this.recording.gauge(key),
      (h) => {
        const drop = (): void => h.set(Number.NaN);
        return { set: drop, increment: drop, decrement: drop };
      },
    );
  }

  /**
   * The series of one instrument. An attribute set the recording rejects (a label over its
   * limits) is recorded through `invalid(handle of the bare name)`, which sends NaN: the
   * worker drops it and counts it in `stats().dropped.invalid`.
   */
  private series<H extends object>(name: string, handle: (key: Key) => H, invalid: (plain: H) => H): SeriesCache<H> {
    return new SeriesCache<H>(
      (labels) => handle(labels === undefined ? name : { name, labels }),
      () => invalid(handle(name)),
      (err) =>
        process.emitWarning(
          `metrics-exporter-tcp/otel: instrument ${JSON.stringify(name)}: attributes refused (${err.message}); such measurements are counted in stats().dropped.invalid`,
          { code: 'MTCP_OTEL_ATTRIBUTES' },
        ),
    );
  }
}

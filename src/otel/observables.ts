import type { Attributes, BatchObservableCallback, BatchObservableResult, Observable, ObservableCallback, ObservableResult } from '@opentelemetry/api';
import type { Counter, Gauge } from '../app/handles.js';
import { addToCounter } from './instruments.js';
import type { SeriesCache } from './series.js';

/** An observable instrument: its callbacks, its series, and what an observation does. */
abstract class TcpObservable<H extends object = object> implements Observable {
  /** The callbacks added with `addCallback`, run at each collection. */
  readonly callbacks = new Set<ObservableCallback>();
  /** What its own callbacks observe through. */
  readonly result: ObservableResult = { observe: (value, attributes) => this.observe(value, attributes) };

  constructor(
    private readonly collection: Collection,
    protected readonly series: SeriesCache<H>,
  ) {}

  addCallback(callback: ObservableCallback): void {
    this.callbacks.add(callback);
    this.collection.watch(this);
  }

  removeCallback(callback: ObservableCallback): void {
    this.callbacks.delete(callback);
  }

  /** Records one observation. */
  abstract observe(value: number, attributes?: Attributes): void;
}

/**
 * `ObservableCounter` → our counter. Callbacks observe cumulative totals; the wire carries
 * increments, so each series sends the difference from its previous observation (the first
 * observation is sent whole; an unchanged total sends nothing). A total lower than the previous one is a restart of what it
 * counts: it is sent whole, from zero. Fractions are carried as for `Counter.add`; a negative,
 * NaN or infinite total is dropped and counted in `stats().dropped.invalid`.
 */
export class ObservedCounter extends TcpObservable<Counter> {
  observe(value: number, attributes?: Attributes): void {
    const series = this.series.get(attributes);
    if (!(value >= 0 && value < Infinity)) return series.handle.increment(value);
    const delta = value >= series.observed ? value - series.observed : value;
    series.observed = value;
    if (delta !== 0) addToCounter(series, delta); // an unchanged total sends nothing
  }
}

/** `ObservableGauge` and `ObservableUpDownCounter` → our gauge, set to each observed value. */
export class ObservedGauge extends TcpObservable<Gauge> {
  observe(value: number, attributes?: Attributes): void {
    this.series.get(attributes).handle.set(value);
  }
}

/** A callback of `meter.addBatchObservableCallback`, with the observables it may observe. */
interface Batch {
  readonly callback: BatchObservableCallback;
  readonly observables: ReadonlySet<Observable>;
  readonly result: BatchObservableResult;
}

const sameSet = (a: ReadonlySet<unknown>, b: ReadonlySet<unknown>): boolean => a.size === b.size && [...a].every((x) => b.has(x));

/**
 * Runs the observable callbacks of one provider every `intervalMs` on the thread that made
 * the provider, on a timer that never keeps the process alive (started when the first callback
 * is added). A callback that throws or rejects is reported once (an `MTCP_OTEL_CALLBACK`
 * warning) and is called again at the next collection; the other callbacks always run.
 */
export class Collection {
  private readonly instruments = new Set<TcpObservable>();
  private batches: Batch[] = [];
  private readonly reported = new WeakSet<object>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly intervalMs: number) {}

  watch(instrument: TcpObservable): void {
    this.instruments.add(instrument);
    this.start();
  }

  addBatch(callback: BatchObservableCallback, observables: readonly Observable[]): void {
    const set = new Set(observables);
    if (this.batches.some((b) => b.callback === callback && sameSet(b.observables, set))) return;
    const result: BatchObservableResult = {
      // Observables that were not given with the callback are not observed (as the API says).
      observe: (observable, value, attributes) => {
        if (set.has(observable) && observable instanceof TcpObservable) observable.observe(value, attributes);
      },
    };
    this.batches.push({ callback, observables: set, result });
    this.start();
  }

  removeBatch(callback: BatchObservableCallback, observables: readonly Observable[]): void {
    const set = new Set(observables);
    this.batches = this.batches.filter((b) => !(b.callback === callback && sameSet(b.observables, set)));
  }

  /** Runs every callback once; resolves when those that returned a promise have settled. */
  collect(): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const instrument of this.instruments) {
      for (const callback of instrument.callbacks) this.run(callback, instrument.result, pending);
    }
    for (const batch of this.batches) this.run(batch.callback, batch.result, pending);
    return Promise.all(pending).then(() => undefined);
  }

  /** Stops the timer for good. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private start(): void {
    if (this.timer !== undefined || this.stopped) return;
    this.timer = setInterval(() => void this.collect(), this.intervalMs);
    this.timer.unref();
  }

  private run<R>(callback: (result: R) => void | Promise<void>, result: R, pending: Promise<void>[]): void {
    try {
      const returned = callback(result);
      if (returned instanceof Promise) pending.push(returned.catch((err: unknown) => this.report(callback, err)));
    } catch (err) {
      this.report(callback, err);
    }
  }

  private report(callback: object, err: unknown): void {
    if (this.reported.has(callback)) return;
    this.reported.add(callback);
    const what = err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.emitWarning(`metrics-exporter-tcp/otel: an observable callback failed (reported once per callback; it and the others keep running): ${what}`, {
      code: 'MTCP_OTEL_CALLBACK',
    });
  }
}

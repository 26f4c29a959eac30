// What one relay thread keeps: per exporter, its series (the client's Series, plus when each
// began and was last updated) and its metadata, within a series budget shared by every thread.
import { Series, seriesKind, type ClientEvent, type MetricKind, type SeriesMetadata } from 'metrics-exporter-tcp/client';
import type { SeriesBudget } from './budget.js';

/** Default histogram buckets (seconds-friendly, like prom-client's). */
export const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A histogram series' observations per bucket (not cumulative; the last is +Inf), sum and count. */
export class Buckets {
  readonly counts: number[];
  sum = 0;
  count = 0;

  /** `bounds`: upper bounds, ascending. */
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  record(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/** One series of one exporter (its `scope`). */
export class RelaySeries extends Series<Buckets> {
  /** When (ms since the epoch) its counts began: when it was made, or the exporter reconnected. */
  startMs: number;
  /** When (ms since the epoch) an op last reached it. */
  updatedAt: number;

  constructor(scope: string, kind: MetricKind, name: string, labels: Readonly<Record<string, string>>, histogram: Buckets | undefined, nowMs: number) {
    super(scope, kind, name, labels, histogram);
    this.startMs = nowMs;
    this.updatedAt = nowMs;
  }
}

/** A series as a plain object, as it crosses to another thread. */
export type SeriesView = Readonly<Pick<RelaySeries, 'scope' | 'kind' | 'name' | 'labels' | 'total' | 'value' | 'startMs'>> & {
  readonly histogram: Readonly<Pick<Buckets, 'bounds' | 'counts' | 'sum' | 'count'>> | undefined;
};

/** `s` as a {@link SeriesView} (its histogram shared, not copied). */
export function viewOf(s: RelaySeries): SeriesView {
  return { scope: s.scope, kind: s.kind, name: s.name, labels: s.labels, total: s.total, value: s.value, startMs: s.startMs, histogram: s.histogram };
}

const byName = ([a]: [string, string], [b]: [string, string]) => (a < b ? -1 : a > b ? 1 : 0);

/** One exporter's series and metadata. */
export class ExporterSeries {
  /** By kind + name + sorted labels. */
  readonly series = new Map<string, RelaySeries>();
  /** By metric name. */
  readonly metadata = new Map<string, SeriesMetadata>();
  /** Changes whenever series are removed, so whoever holds on to series knows to look them up again. */
  epoch = 0;

  constructor(
    readonly exporter: string,
    private readonly store: RelayStore,
  ) {}

  /**
   * Applies one event at `nowMs`: metadata is kept by name, a metric updates its series (made on
   * first sight). Returns the series updated; `undefined` for metadata and refusals.
   */
  apply(ev: ClientEvent, nowMs: number): RelaySeries | undefined {
    if (ev.kind === 'metadata') {
      if (!this.metadata.has(ev.name) && !this.store.budget.take('metadata')) return this.refuse();
      const m: { -readonly [K in keyof SeriesMetadata]: SeriesMetadata[K] } = { kind: ev.metricKind };
      if (ev.unit !== undefined) m.unit = ev.unit;
      if (ev.description !== undefined) m.description = ev.description;
      this.metadata.set(ev.name, m);
      return undefined;
    }
    const s = this.seriesFor(seriesKind(ev.op.type), ev.name, ev.labels, nowMs);
    if (s !== undefined) {
      s.update(ev.op);
      s.updatedAt = nowMs;
    }
    return s;
  }

  /** The series for `kind` + `name` + `labels` (in any order), made if new; `undefined` if refused. */
  seriesFor(kind: MetricKind, name: string, labels: Readonly<Record<string, string>>, nowMs: number): RelaySeries | undefined {
    const sorted = Object.entries(labels).sort(byName);
    const key = JSON.stringify([kind, name, sorted]); // unambiguous, whatever the strings hold
    let s = this.series.get(key);
    if (s === undefined) {
      if (!this.store.budget.take('series')) return this.refuse();
      const histogram = kind === 'histogram' ? new Buckets(this.store.buckets) : undefined;
      s = new RelaySeries(this.exporter, kind, name, Object.fromEntries(sorted), histogram, nowMs);
      this.series.set(key, s);
    }
    return s;
  }

  /** The relay's cap on series. */
  get maxSeries(): number {
    return this.store.budget.max;
  }

  /** Counts `n` refused series or metadata names (one frame each); `undefined`, for returning. */
  refuse(n = 1): undefined {
    this.store.refuse(n);
    return undefined;
  }

  /** The stream starts afresh at `nowMs` (a new connection): counters go to 0, histograms forget, gauges stay. */
  reset(nowMs: number): void {
    for (const s of this.series.values()) {
      s.reset();
      s.startMs = nowMs;
    }
  }

  /** Forgets the series not updated since `beforeMs`. */
  expire(beforeMs: number): void {
    let n = 0;
    for (const [key, s] of this.series) {
      if (s.updatedAt >= beforeMs) continue;
      this.series.delete(key);
      n++;
    }
    if (n > 0) this.epoch++;
    this.store.budget.give('series', n);
  }

  /** Forgets every series and all metadata. */
  clear(): void {
    this.store.budget.give('series', this.series.size);
    this.store.budget.give('metadata', this.metadata.size);
    this.series.clear();
    this.metadata.clear();
    this.epoch++;
  }
}

/**
 * Every exporter's series on one thread. A misbehaving exporter cannot exhaust the relay's
 * memory: series, and metric names with metadata, come out of a {@link SeriesBudget} shared by
 * all threads; beyond it new ones are refused, counted, and `onFirstRefusal` is told once.
 */
export class RelayStore {
  /** Series and metadata names refused on this thread. */
  refused = 0;
  private readonly exporters = new Map<string, ExporterSeries>();

  constructor(
    readonly buckets: readonly number[],
    readonly budget: SeriesBudget,
    private readonly onFirstRefusal: () => void = () => {},
  ) {}

  /** `exporter`'s series, made empty on first use. */
  of(exporter: string): ExporterSeries {
    let e = this.exporters.get(exporter);
    if (e === undefined) {
      e = new ExporterSeries(exporter, this);
      this.exporters.set(exporter, e);
    }
    return e;
  }

  /** Forgets `exporter`'s series and metadata. */
  drop(exporter: string): void {
    this.exporters.get(exporter)?.clear();
    this.exporters.delete(exporter);
  }

  /** Counts `n` refusals; the first is told. */
  refuse(n: number): void {
    if (n <= 0) return;
    if (this.refused === 0) this.onFirstRefusal();
    this.refused += n;
  }
}

// One model of what exporters said: series keyed by kind + name + sorted labels (and a scope,
// e.g. which exporter), each updated in place by the six ops, with the histogram aggregation
// plugged in by the tool that reads it.
import type { ClientEvent, MetricKind, MetricOp } from './events.js';
import { keyBytes, metadataBytes } from './limits.js';
import { SeriesFeed } from './series-feed.js';

/**
 * What a tool keeps for one histogram series (a sketch, buckets, …). The model calls it for
 * every observation of the series, and when the stream it came from starts afresh.
 */
export interface HistogramState {
  /** One observation: any double, ±Infinity included (NaN is never sent). */
  record(value: number): void;
  /** Forgets every observation. */
  reset(): void;
}

/** A metric name's registration, as the last metadata event for it said. */
export interface SeriesMetadata {
  readonly kind: MetricKind;
  readonly unit?: string;
  readonly description?: string;
}

/** The kind of series an op belongs to. */
export function seriesKind(op: MetricOp['type']): MetricKind {
  return op === 'counterIncrement' || op === 'counterSet' ? 'counter' : op === 'histogramRecord' ? 'histogram' : 'gauge';
}

/**
 * One series: what a scope (an exporter, for the relay) sent for one kind + name + labels.
 * Its state changes in place; the identity fields never do.
 */
export class Series<H extends HistogramState> {
  /**
   * Gauges: the current value when {@link known}; until then, the net change of the increments
   * and decrements since the series began or was reset (0 before the first update).
   */
  value = 0;
  /**
   * Whether {@link value} is the gauge's value: a set arrived since the series began or was
   * reset. A client that connects after the app began (or reconnects: maybe to a restarted app)
   * sees increments and decrements of a base it does not know; a set, or the value an exporter
   * with `replayOnConnect` sends first, tells it. Always true for counters and histograms.
   */
  known: boolean;
  /**
   * Gauges: the largest value it has had while {@link known}, since the series began or was
   * reset (`-Infinity` before). A gauge that reports a peak per interval (the exporter's fill
   * levels) keeps here the largest of them, whenever it is read.
   */
  max = Number.NEGATIVE_INFINITY;
  // A counter's total is `large + small`: `small` is a number, exact below 2^53, so adding to it
  // allocates nothing; it is folded into the bigint `large` only when it would overflow.
  private small = 0;
  private large = 0n;

  constructor(
    /** `''` unless the model was given one. */
    readonly scope: string,
    readonly kind: MetricKind,
    readonly name: string,
    /** Label names in ascending order. */
    readonly labels: Readonly<Record<string, string>>,
    /** Histograms: the tool's aggregation; `undefined` for counters and gauges. */
    readonly histogram: H | undefined,
  ) {
    this.known = kind !== 'gauge';
  }

  /** Counters: the total of the increments (or the last set value) since the series began or was reset. */
  get total(): bigint {
    return this.large + BigInt(this.small);
  }

  set total(v: bigint) {
    this.large = v;
    this.small = 0;
  }

  /**
   * Applies one op of this series' kind (see {@link seriesKind}) in place; ops of another kind
   * are ignored. `value` is the op's value; for counters it must be exact (at most 2^53 − 1)
   * unless `big` gives the exact value, as {@link MetricReader} provides them.
   */
  apply(op: MetricOp['type'], value: number, big?: bigint): void {
    switch (op) {
      case 'counterIncrement':
        if (this.kind !== 'counter') break;
        if (big === undefined && this.small + value <= Number.MAX_SAFE_INTEGER) this.small += value;
        else this.total = this.total + (big ?? BigInt(value));
        break;
      case 'counterSet':
        if (this.kind === 'counter') this.total = big ?? BigInt(value);
        break;
      case 'gaugeSet':
        if (this.kind !== 'gauge') break;
        this.value = value;
        this.known = true;
        if (value > this.max) this.max = value;
        break;
      case 'gaugeIncrement':
        if (this.kind !== 'gauge') break;
        this.value += value;
        if (this.known && this.value > this.max) this.max = this.value;
        break;
      case 'gaugeDecrement':
        if (this.kind === 'gauge') this.value -= value;
        break;
      case 'histogramRecord':
        this.histogram?.record(value);
        break;
    }
  }

  /** Applies one op of this series' kind (see {@link seriesKind}); ops of another kind are ignored. */
  update(op: MetricOp): void {
    const v = op.value;
    if (typeof v === 'number') this.apply(op.type, v);
    else this.apply(op.type, Number(v), v > MAX_SAFE_BIG ? v : undefined);
  }

  /**
   * The stream started afresh (a new connection, maybe to a restarted app): counters go back to
   * 0, histograms forget, and a gauge's value is unknown again until a set arrives.
   */
  reset(): void {
    this.total = 0n;
    this.histogram?.reset();
    if (this.kind !== 'gauge') return;
    this.value = 0;
    this.known = false;
    this.max = Number.NEGATIVE_INFINITY;
  }
}

const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);

/** Options of a {@link SeriesModel}. */
export interface SeriesModelOptions<H extends HistogramState> {
  /** Makes the aggregation of a new histogram series. */
  readonly histogram: (series: { readonly scope: string; readonly name: string; readonly labels: Readonly<Record<string, string>> }) => H;
  /**
   * The most series kept, and separately the most metric names with metadata kept, over all
   * scopes. Beyond it new ones are refused and counted in `refused`. Default: no limit.
   */
  readonly maxSeries?: number;
  /**
   * The most bytes of text kept: the UTF-8 bytes of every series' name, label names and values,
   * and of every metadata's name, unit and description. Beyond it new series and metadata are
   * refused and counted in `refused`. Default: no limit.
   */
  readonly maxBytes?: number;
  /** Called once, on the first refusal. */
  readonly onFirstRefusal?: () => void;
}

const byName = ([a]: [string, string], [b]: [string, string]) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Series and metadata from client events. Used by the observer (one scope) and the relay (a
 * scope per exporter):
 *
 * ```ts
 * const model = new SeriesModel({ histogram: () => new MyBuckets() });
 * const feed = model.feed('');                          // the fast path: no object per frame
 * await client.consume((reader) => feed.drain(reader));
 * for (const s of model.series.values()) console.log(s.name, s.labels, s.total, s.value);
 * ```
 *
 * Typed events work too (`for await (const ev of client) model.apply(ev)`), at a tenth of the
 * speed. {@link SeriesModel.seriesFor} finds (or makes) a series once, so a caller that knows
 * the key already can keep the series and call {@link Series.apply} for every op.
 */
export class SeriesModel<H extends HistogramState> {
  /** Every series, in the order first seen. */
  readonly series = new Map<string, Series<H>>();
  /** Events applied. */
  events = 0;
  /** Series and metadata names refused beyond `maxSeries`. */
  refused = 0;
  private readonly metadata = new Map<string, SeriesMetadata>();
  private readonly named = new Map<string, Series<H>[]>();
  private readonly maxSeries: number;
  private readonly maxBytes: number;
  private held = 0;
  /** Changes whenever series are forgotten, so feeds drop the series they hold. */
  private forgotten = 0;

  constructor(private readonly options: SeriesModelOptions<H>) {
    this.maxSeries = options.maxSeries ?? Number.POSITIVE_INFINITY;
    this.maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
  }

  /** Bytes of text held (see {@link SeriesModelOptions.maxBytes}). */
  get bytes(): number {
    return this.held;
  }

  /**
   * Applies an event from `scope`: metadata is kept by name, a metric updates its series
   * (made on first sight). Returns the series updated; `undefined` for metadata and refusals.
   */
  apply(ev: ClientEvent, scope = ''): Series<H> | undefined {
    this.events++;
    if (ev.kind === 'metadata') {
      const key = JSON.stringify([scope, ev.name]);
      const old = this.metadata.get(key);
      const bytes = metadataBytes(ev) - (old === undefined ? 0 : metadataBytes({ name: ev.name, ...old }));
      if ((old === undefined && this.metadata.size >= this.maxSeries) || this.held + bytes > this.maxBytes) return this.refuse();
      const m: { -readonly [K in keyof SeriesMetadata]: SeriesMetadata[K] } = { kind: ev.metricKind };
      if (ev.unit !== undefined) m.unit = ev.unit;
      if (ev.description !== undefined) m.description = ev.description;
      this.metadata.set(key, m);
      this.held += bytes;
      return undefined;
    }
    const s = this.seriesFor(seriesKind(ev.op.type), ev.name, ev.labels, scope);
    s?.update(ev.op);
    return s;
  }

  /** The series for `kind` + `name` + `labels` (in any order) in `scope`, made if new; `undefined` if refused. */
  seriesFor(kind: MetricKind, name: string, labels: Readonly<Record<string, string>>, scope = ''): Series<H> | undefined {
    const sorted = Object.entries(labels).sort(byName);
    const key = JSON.stringify([scope, kind, name, sorted]); // unambiguous, whatever the strings hold
    let s = this.series.get(key);
    if (s === undefined) {
      const bytes = keyBytes(name, labels);
      if (this.series.size >= this.maxSeries || this.held + bytes > this.maxBytes) return this.refuse();
      this.held += bytes;
      const sortedLabels = Object.fromEntries(sorted);
      const histogram = kind === 'histogram' ? this.options.histogram({ scope, name, labels: sortedLabels }) : undefined;
      s = new Series(scope, kind, name, sortedLabels, histogram);
      this.series.set(key, s);
      const id = `${kind}:${name}`;
      const list = this.named.get(id);
      if (list === undefined) this.named.set(id, [s]);
      else list.push(s);
    }
    return s;
  }

  /**
   * The fast path for `scope`: a {@link SeriesFeed} applies every frame a
   * {@link MetricReader} holds, binding each of its keys to a series once.
   */
  feed(scope = ''): SeriesFeed<H> {
    return new SeriesFeed(this, scope);
  }

  /** Changes whenever series are forgotten ({@link dropScope}). @internal */
  get generation(): number {
    return this.forgotten;
  }

  /** What `scope` registered for `name`, if anything. */
  describe(name: string, scope = ''): SeriesMetadata | undefined {
    return this.metadata.get(JSON.stringify([scope, name]));
  }

  /** Every scope's series of `kind` and `name`, in the order first seen. */
  seriesNamed(kind: MetricKind, name: string): readonly Series<H>[] {
    return this.named.get(`${kind}:${name}`) ?? [];
  }

  /** `scope`'s stream started afresh (a reconnect): its counters and histograms restart. */
  resetScope(scope: string): void {
    for (const s of this.series.values()) if (s.scope === scope) s.reset();
  }

  /** Forgets `scope`'s series and metadata. */
  dropScope(scope: string): void {
    this.forgotten++;
    for (const [key, s] of this.series) {
      if (s.scope !== scope) continue;
      this.series.delete(key);
      this.held -= keyBytes(s.name, s.labels);
      const id = `${s.kind}:${s.name}`;
      const list = this.named.get(id)!.filter((x) => x !== s);
      if (list.length === 0) this.named.delete(id);
      else this.named.set(id, list);
    }
    for (const [key, m] of this.metadata) {
      const [of, name] = JSON.parse(key) as [string, string];
      if (of !== scope) continue;
      this.metadata.delete(key);
      this.held -= metadataBytes({ name, ...m });
    }
  }

  /** Counts a refusal (see `refused`). @internal */
  refuse(): undefined {
    if (this.refused++ === 0) this.options.onFirstRefusal?.();
    return undefined;
  }
}

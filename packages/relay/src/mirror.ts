// The main thread's copy of what every reader thread holds, kept up to date with what changed
// on each (never all of it), so that a scrape or an OTLP export costs the reading threads no
// more than the list of what changed since the last one.
import type { MetricKind, SeriesMetadata } from 'metrics-exporter-tcp/client';
import type { ExporterStatus, ReaderChanges } from './reader.js';

const EMPTY = new Float64Array(0);

/** One series as the main thread knows it: who it is, and its state as of the last collection. */
export class MirrorSeries {
  startMs = 0;
  /** Counters: the total (rounded above 2^53; exact in `big`). */
  total = 0;
  big: bigint | undefined = undefined;
  /** Gauges: whether the value is known (a set arrived since the connection began), and the value. */
  known = false;
  value = 0;
  /** Histograms: count, sum, and observations per bucket (not cumulative; the last is +Inf). */
  count = 0;
  sum = 0;
  readonly counts: Float64Array | undefined;
  /** Histograms: the native buckets' schema, zero bucket, and the buckets above and below zero, each as index then count. */
  schema = 0;
  zeroCount = 0;
  positive: Float64Array = EMPTY;
  negative: Float64Array = EMPTY;

  constructor(
    readonly exporter: string,
    readonly kind: MetricKind,
    readonly name: string,
    /** Label names in ascending order. */
    readonly labels: Readonly<Record<string, string>>,
    /** Histograms: the bucket upper bounds, ascending (chosen by the reader: `--buckets`, or by unit). */
    readonly bounds: readonly number[] | undefined,
  ) {
    this.counts = bounds === undefined ? undefined : new Float64Array(bounds.length + 1);
  }
}

/** What one reader thread holds. */
interface ThreadState {
  exporters: readonly ExporterStatus[];
  readonly series: Map<number, MirrorSeries>;
  /** By exporter, then metric name. */
  readonly metadata: Map<string, Map<string, SeriesMetadata>>;
}

/** Every reader thread's series, exporters and metadata, as of the last {@link RelayMirror.apply} of each. */
export class RelayMirror {
  /** Changes whenever series come or go, or metadata changes: what is derived from them is stale. */
  structure = 0;
  private readonly threads = new Map<number, ThreadState>();

  /** Applies what thread `slot` said changed. */
  apply(slot: number, c: ReaderChanges): void {
    let t = this.threads.get(slot);
    if (t === undefined) this.threads.set(slot, (t = { exporters: [], series: new Map(), metadata: new Map() }));
    t.exporters = c.exporters;
    if (c.added.length > 0 || c.removed.length > 0 || c.metadata.length > 0) this.structure++;
    for (const id of c.removed) t.series.delete(id);
    for (const a of c.added) t.series.set(a.id, new MirrorSeries(a.exporter, a.kind, a.name, a.labels, a.bounds));
    for (const { exporter, name, metadata } of c.metadata) {
      let byName = t.metadata.get(exporter);
      if (metadata !== null) {
        if (byName === undefined) t.metadata.set(exporter, (byName = new Map()));
        byName.set(name, metadata);
      } else if (byName !== undefined) {
        byName.delete(name);
        if (byName.size === 0) t.metadata.delete(exporter);
      }
    }
    const v = c.values;
    for (let p = 0; p < v.length; ) {
      const s = t.series.get(v[p++]!)!;
      s.startMs = v[p++]!;
      if (s.kind === 'counter') {
        s.total = v[p++]!;
        s.big = undefined;
      } else if (s.kind === 'gauge') {
        s.known = v[p++] === 1;
        s.value = v[p++]!;
      } else {
        s.count = v[p++]!;
        s.sum = v[p++]!;
        for (let i = 0; i < s.counts!.length; i++) s.counts![i] = v[p++]!;
        s.schema = v[p++]!;
        s.zeroCount = v[p++]!;
        const positive = 2 * v[p++]!;
        const negative = 2 * v[p++]!;
        // New arrays, never written in place: a rendering under way keeps the ones it took.
        s.positive = positive === 0 ? EMPTY : v.slice(p, (p += positive));
        s.negative = negative === 0 ? EMPTY : v.slice(p, (p += negative));
      }
    }
    for (const [id, total] of c.big) t.series.get(id)!.big = total;
  }

  /** Forgets what thread `slot` held (it died; a new one starts from nothing). */
  dropThread(slot: number): void {
    if (this.threads.delete(slot)) this.structure++;
  }

  /** Every exporter, thread by thread. */
  exporters(): ExporterStatus[] {
    return [...this.threads.values()].flatMap((t) => t.exporters);
  }

  /** Every series, thread by thread, each in the order it was made. */
  *series(): Generator<MirrorSeries> {
    for (const t of this.threads.values()) yield* t.series.values();
  }

  /** What `exporter` registered for `name`, if anything. */
  metadataOf(exporter: string, name: string): SeriesMetadata | undefined {
    for (const t of this.threads.values()) {
      const m = t.metadata.get(exporter)?.get(name);
      if (m !== undefined) return m;
    }
    return undefined;
  }

  /** `exporter`'s metadata, by name. */
  metadataByName(exporter: string): ReadonlyMap<string, SeriesMetadata> {
    for (const t of this.threads.values()) {
      const m = t.metadata.get(exporter);
      if (m !== undefined) return m;
    }
    return new Map();
  }
}

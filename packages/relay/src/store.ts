// What one relay thread keeps: per exporter, its series (the client's Series, plus when each
// began and was last updated) and its metadata, within caps on series and bytes, per exporter
// and shared by every thread; and what changed since the main thread last asked.
import {
  BUFFER_SIZE_METRIC,
  DROPPED_METRIC,
  QUEUE_PEAK_METRIC,
  RING_PEAK_METRIC,
  LOSS_REASONS,
  Series,
  HistogramAggregate,
  defaultBuckets,
  keyBytes,
  keyTooLarge,
  metadataBytes,
  metadataTooLarge,
  seriesKind,
  type ClientEvent,
  type MetadataEvent,
  type MetricKind,
  type SeriesMetadata,
} from 'metrics-exporter-tcp/client';
import type { SeriesBudget } from './budget.js';
import { FillHold, MAX_FILL_THREADS, fillGauge, type FillGauge } from './fill-hold.js';

/** Why an exporter says it lost records. */
export type LossReason = (typeof LOSS_REASONS)[number];

/** prom-client's default histogram buckets (for seconds): what `defaultBuckets('seconds')` gives too. */
export const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Why a series (or a metric name's metadata) was refused, one count per frame:
 * - `max_series`: the relay holds `--max-series` series (over every exporter);
 * - `max_bytes`: the names, labels and descriptions it holds take `--max-bytes` (over every exporter);
 * - `exporter_series`: the exporter has `--max-series-per-exporter`;
 * - `exporter_bytes`: its names, labels, units and descriptions take `--max-bytes-per-exporter`;
 * - `too_large`: a name or label over 1024 characters, more than 64 labels, a unit or
 *   description over 4096, or a frame over 1 MiB (the exporter's own limits).
 */
export type Refusal = 'max_series' | 'max_bytes' | 'exporter_series' | 'exporter_bytes' | 'too_large';
export const REFUSALS: readonly Refusal[] = ['max_series', 'max_bytes', 'exporter_series', 'exporter_bytes', 'too_large'];
/** What the relay reads of one frame at most; a larger one is skipped as it streams and refused as `too_large`. */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** The caps a thread applies. */
export interface StoreLimits {
  /**
   * Histogram bucket upper bounds, ascending, for every histogram; undefined: each histogram's
   * from its unit (`defaultBuckets`: seconds, bytes, … as the exporter's own /metrics chooses).
   */
  readonly buckets: readonly number[] | undefined;
  readonly maxSeriesPerExporter: number;
  readonly maxBytesPerExporter: number;
  /** How long an exporter's fill levels are held at their largest (see {@link FillHold}), in ms. */
  readonly peakHoldMs: number;
}

/** What one exporter's stream cost the relay, as counters. */
export interface ExporterCounts {
  /** Frames refused, by why. */
  readonly refused: Record<Refusal, number>;
  /** Histogram observations dropped because they were NaN. */
  invalidValues: number;
}

/** The most native buckets a relayed histogram keeps room for: past it, its resolution is halved (see `HistogramAggregate`). */
export const MAX_NATIVE_BUCKETS = 160;

/**
 * A relayed histogram series: count, sum, classic buckets and native ones (as the exporter's own
 * /metrics keeps them), at most {@link MAX_NATIVE_BUCKETS} native buckets whatever the stream
 * holds. A NaN observation carries nothing: it is dropped and counted in `counts.invalidValues`
 * (client_golang would put it in +Inf and make the sum NaN for good).
 */
export class Buckets extends HistogramAggregate {
  /** `bounds`: classic upper bounds, ascending. */
  constructor(
    bounds: readonly number[],
    private readonly dropped: { invalidValues: number } = { invalidValues: 0 },
  ) {
    super(bounds, MAX_NATIVE_BUCKETS);
  }

  override record(value: number): void {
    if (value !== value) this.dropped.invalidValues++;
    else super.record(value);
  }
}

/** One series of one exporter (its `scope`). */
export class RelaySeries extends Series<Buckets> {
  /** When (ms since the epoch) its counts began: when it was made, or the exporter reconnected. */
  startMs: number;
  /** When (ms since the epoch) an op last reached it. */
  updatedAt: number;
  /** Changed since the main thread last asked (it is in the store's list of changes). */
  dirty = false;
  /** The main thread knows it. */
  sent = false;

  constructor(
    /** Unique on its thread, never reused. */
    readonly id: number,
    scope: string,
    kind: MetricKind,
    name: string,
    labels: Readonly<Record<string, string>>,
    histogram: Buckets | undefined,
    nowMs: number,
    /** Bytes of its name and labels (as they count against the caps). */
    readonly bytes: number,
    /** An exporter's in-band loss counter: it takes nothing from the caps. */
    readonly loss: boolean,
  ) {
    super(scope, kind, name, labels, histogram);
    this.startMs = nowMs;
    this.updatedAt = nowMs;
  }
}

/**
 * One of an exporter's fill-level gauges: what it is set to goes to the exporter's
 * {@link FillHold}. It is no series of its own: nothing held against the caps, nothing sent to
 * the main thread (which exposes the held values with the relay's health).
 */
class FillSeries extends RelaySeries {
  constructor(
    private readonly owner: ExporterSeries,
    private readonly gauge: FillGauge,
    name: string,
    labels: Readonly<Record<string, string>>,
    nowMs: number,
  ) {
    super(-1, owner.exporter, 'gauge', name, labels, undefined, nowMs, 0, false);
  }

  override apply(op: string, value: number): void {
    if (op !== 'gaugeSet') return;
    const r = this.owner.fill.set(this.gauge, value, Date.now());
    if (r === 'refused') this.owner.refuse('exporter_series');
    else if (r === 'gone') this.owner.threadGone();
  }
}

/** The exporter's own metrics, which the relay exposes with its health. */
const SELF_METRICS: ReadonlySet<string> = new Set([DROPPED_METRIC, RING_PEAK_METRIC, QUEUE_PEAK_METRIC, BUFFER_SIZE_METRIC]);

const byName = ([a]: [string, string], [b]: [string, string]) => (a < b ? -1 : a > b ? 1 : 0);

/** The loss reason when `kind` + `name` + `labels` is an exporter's in-band loss counter for one (`metrics_exporter_tcp_dropped{reason}`). */
export function lossReason(kind: MetricKind, name: string, labels: Readonly<Record<string, string>>): LossReason | undefined {
  if (kind !== 'counter' || name !== DROPPED_METRIC) return undefined;
  const keys = Object.keys(labels);
  const reason = labels.reason as LossReason;
  return keys.length === 1 && keys[0] === 'reason' && LOSS_REASONS.includes(reason) ? reason : undefined;
}

/** One exporter's series and metadata, and what it cost. */
export class ExporterSeries {
  /** By kind + name + sorted labels. */
  readonly series = new Map<string, RelaySeries>();
  /** By metric name. */
  readonly metadata = new Map<string, SeriesMetadata>();
  /** Changes whenever series are removed, so whoever holds on to series knows to look them up again. */
  epoch = 0;
  readonly counts: ExporterCounts = { refused: { max_series: 0, max_bytes: 0, exporter_series: 0, exporter_bytes: 0, too_large: 0 }, invalidValues: 0 };
  /** The last refusal for a relay-wide cap, if any (what a reader full of refused keys is put down to). */
  relayRefusal: 'max_series' | 'max_bytes' | undefined;
  /** Series held against the caps (all but the loss counters). */
  held = 0;
  /** Bytes of names, labels, units and descriptions held. */
  bytes = 0;
  /** Its fill levels, held at their largest for `--peak-hold`. */
  fill: FillHold;
  /** Threads whose ring was reported empty (gone, or idle) since the reader's keys were last forgotten. */
  private threadsGone = 0;

  constructor(
    readonly exporter: string,
    readonly store: RelayStore,
  ) {
    this.fill = new FillHold(store.limits.peakHoldMs);
  }

  get limits(): StoreLimits {
    return this.store.limits;
  }

  /** Applies one event at `nowMs` (the reference path): metadata is kept by name, a metric updates its series. */
  apply(ev: ClientEvent, nowMs: number): void {
    if (ev.kind === 'metadata') return this.describe(ev);
    const s = this.seriesFor(seriesKind(ev.op.type), ev.name, ev.labels, nowMs);
    if (typeof s === 'string') return;
    s.update(ev.op);
    s.updatedAt = nowMs;
    if (!s.dirty) this.touch(s);
  }

  /**
   * Keeps `ev`'s unit and description for its name, within the caps. The exporter's own loss
   * counter and fill levels are described by the relay (with its health): theirs is not kept.
   */
  describe(ev: MetadataEvent): void {
    if (SELF_METRICS.has(ev.name)) return;
    if (metadataTooLarge(ev)) return void this.refuse('too_large');
    const old = this.metadata.get(ev.name);
    const bytes = metadataBytes(ev) - (old === undefined ? 0 : metadataBytes({ name: ev.name, ...old }));
    if (old === undefined && this.metadata.size >= this.limits.maxSeriesPerExporter) return void this.refuse('exporter_series');
    if (this.bytes + bytes > this.limits.maxBytesPerExporter) return void this.refuse('exporter_bytes');
    const budget = this.store.budget;
    if (old === undefined && !budget.take('metadata')) return void this.refuse('max_series');
    if (bytes > 0 && !budget.take('bytes', bytes)) {
      if (old === undefined) budget.give('metadata', 1);
      return void this.refuse('max_bytes');
    }
    if (bytes < 0) budget.give('bytes', -bytes); // a shorter description than before
    const m: { -readonly [K in keyof SeriesMetadata]: SeriesMetadata[K] } = { kind: ev.metricKind };
    if (ev.unit !== undefined) m.unit = ev.unit;
    if (ev.description !== undefined) m.description = ev.description;
    this.metadata.set(ev.name, m);
    this.bytes += bytes;
    this.store.described(this, ev.name);
  }

  /**
   * The series for `kind` + `name` + `labels` (in any order), made if new; if refused, why
   * (counted). An exporter's loss counters and fill levels take nothing from the caps.
   */
  seriesFor(kind: MetricKind, name: string, labels: Readonly<Record<string, string>>, nowMs: number): RelaySeries | Refusal {
    const sorted = Object.entries(labels).sort(byName);
    const key = JSON.stringify([kind, name, sorted]); // unambiguous, whatever the strings hold
    const s = this.series.get(key);
    if (s !== undefined) return s;
    if (keyTooLarge(name, labels)) return this.refuse('too_large');
    const fill = fillGauge(kind, name, labels);
    if (fill !== undefined) return new FillSeries(this, fill, name, Object.fromEntries(sorted), nowMs);
    const loss = lossReason(kind, name, labels) !== undefined;
    const bytes = loss ? 0 : keyBytes(name, labels);
    if (!loss) {
      if (this.held >= this.limits.maxSeriesPerExporter) return this.refuse('exporter_series');
      if (this.bytes + bytes > this.limits.maxBytesPerExporter) return this.refuse('exporter_bytes');
      const budget = this.store.budget;
      if (!budget.take('series')) return this.refuse('max_series');
      if (!budget.take('bytes', bytes)) {
        budget.give('series', 1);
        return this.refuse('max_bytes');
      }
      this.held++;
      this.bytes += bytes;
    }
    const histogram = kind === 'histogram' ? new Buckets(this.limits.buckets ?? defaultBuckets(this.metadata.get(name)?.unit), this.counts) : undefined;
    const made = new RelaySeries(this.store.nextId++, this.exporter, kind, name, Object.fromEntries(sorted), histogram, nowMs, bytes, loss);
    this.series.set(key, made);
    this.touch(made);
    return made;
  }

  /** Counts `n` frames refused for `why`; the first of each reason is logged. Returns `why`. */
  refuse(why: Refusal, n = 1): Refusal {
    if (n <= 0) return why;
    if (why === 'max_series' || why === 'max_bytes') this.relayRefusal = why;
    if (this.counts.refused[why] === 0) this.store.firstRefusal(this, why);
    this.counts.refused[why] += n;
    return why;
  }

  /**
   * A thread's ring was reported empty: a thread that exits is last reported so, and a pool
   * that replaces its threads makes new thread ids for ever. The key of each stays in the
   * reader of the stream, so once there are as many as threads kept, the reader forgets its
   * keys (as when series are removed) and learns those still in use again.
   */
  threadGone(): void {
    if (++this.threadsGone < MAX_FILL_THREADS) return;
    this.threadsGone = 0;
    this.epoch++;
  }

  /** `s` changed: the main thread is to be told. */
  touch(s: RelaySeries): void {
    if (s instanceof FillSeries) return;
    s.dirty = true;
    this.store.dirty.push(s);
  }

  /** The stream starts afresh at `nowMs` (a new connection): counters go to 0, histograms forget, gauges are unknown until set. */
  reset(nowMs: number): void {
    this.fill.reset();
    for (const s of this.series.values()) {
      s.reset();
      s.startMs = nowMs;
      if (!s.dirty) this.touch(s);
    }
  }

  /**
   * Forgets the series not updated since `beforeMs`: gauges only while the exporter is
   * `connected` (a counter or histogram that went away and came back from 0 would make
   * `increase()` wrong, and it costs no more than while it was updated), any while it is not.
   */
  expire(beforeMs: number, connected: boolean): void {
    for (const [key, s] of this.series) if (s.updatedAt < beforeMs && (!connected || s.kind === 'gauge')) this.remove(key, s);
  }

  /** Forgets every series, all metadata and its fill levels. */
  clear(): void {
    this.fill = new FillHold(this.limits.peakHoldMs);
    for (const [key, s] of this.series) this.remove(key, s);
    this.store.budget.give('metadata', this.metadata.size);
    this.store.budget.give('bytes', this.bytes); // what the metadata took
    for (const name of this.metadata.keys()) this.store.described(this, name);
    this.metadata.clear();
    this.bytes = 0;
  }

  private remove(key: string, s: RelaySeries): void {
    this.series.delete(key);
    this.epoch++;
    this.store.removed(s);
    if (s.loss) return;
    this.held--;
    this.bytes -= s.bytes;
    this.store.budget.give('series', 1);
    this.store.budget.give('bytes', s.bytes);
  }
}

/** What changed on a thread since the main thread last asked, as plain data for it. */
export interface StoreChanges {
  /** Series the main thread does not know yet: who they are. */
  readonly added: { id: number; exporter: string; kind: MetricKind; name: string; labels: Readonly<Record<string, string>>; bounds?: readonly number[] }[];
  /** Series it knows that are gone. */
  readonly removed: number[];
  /**
   * The state of each series that changed (added ones too), one record after another: `id`,
   * `startMs`, then a counter's total (rounded above 2^53: exact in `big`), a gauge's known
   * (1 or 0) and value, or a histogram's count, sum, classic bucket counts (not cumulative),
   * native schema, zero count, the number of native buckets above and below zero, and each as
   * index and count.
   */
  readonly values: Float64Array;
  /** Exact totals of the counters above 2^53 in `values`, by id. */
  readonly big: [number, bigint][];
  /** Metric names whose metadata changed: what it is now (`null`: gone). */
  readonly metadata: { exporter: string; name: string; metadata: SeriesMetadata | null }[];
}

/**
 * Every exporter's series on one thread. A misbehaving exporter cannot exhaust the relay's
 * memory: series come out of a {@link SeriesBudget} shared by all threads, and each exporter has
 * caps of its own on series and on bytes; beyond them new series are refused, counted per
 * exporter and reason, and the first of each reason is logged naming the exporter.
 */
export class RelayStore {
  nextId = 0;
  /** Series changed since {@link changes}, each once (and some removed since: see `stale`). */
  readonly dirty: RelaySeries[] = [];
  /** Series in `dirty` that were removed since: the list is compacted when they are most of it (no one may ask for changes for a long while). */
  private stale = 0;
  private readonly exporters = new Map<string, ExporterSeries>();
  private readonly gone: number[] = [];
  private readonly renamed = new Map<ExporterSeries, Set<string>>();

  constructor(
    readonly limits: StoreLimits,
    readonly budget: SeriesBudget,
    private readonly log: (line: string) => void = () => {},
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

  /** What changed since the last call, for the main thread. */
  changes(): { changes: StoreChanges; transfer: ArrayBuffer[] } {
    const added: StoreChanges['added'] = [];
    const big: [number, bigint][] = [];
    let size = 0;
    const natives = new Map<RelaySeries, { positive: [number, number][]; negative: [number, number][] }>();
    for (const s of this.dirty) {
      if (s.kind !== 'histogram') size += s.kind === 'counter' ? 3 : 4;
      else if (s.dirty) {
        const n = s.histogram!.nativeEntries();
        natives.set(s, n);
        size += 2 + 2 + s.histogram!.classic.length + 4 + 2 * (n.positive.length + n.negative.length);
      }
    }
    const values = new Float64Array(size);
    let p = 0;
    for (const s of this.dirty) {
      if (!s.dirty) continue; // removed since
      s.dirty = false;
      if (!s.sent) {
        s.sent = true;
        added.push(
          s.histogram === undefined
            ? { id: s.id, exporter: s.scope, kind: s.kind, name: s.name, labels: s.labels }
            : { id: s.id, exporter: s.scope, kind: s.kind, name: s.name, labels: s.labels, bounds: s.histogram.bounds },
        );
      }
      values[p++] = s.id;
      values[p++] = s.startMs;
      if (s.kind === 'counter') {
        const total = s.total;
        values[p++] = Number(total);
        if (total > MAX_SAFE) big.push([s.id, total]);
      } else if (s.kind === 'gauge') {
        values[p++] = s.known ? 1 : 0;
        values[p++] = s.value;
      } else {
        const h = s.histogram!;
        values[p++] = h.count;
        values[p++] = h.sum;
        values.set(h.classic, p);
        p += h.classic.length;
        const { positive, negative } = natives.get(s)!;
        values[p++] = h.schema;
        values[p++] = h.zeroCount;
        values[p++] = positive.length;
        values[p++] = negative.length;
        for (const [i, n] of positive) (values[p++] = i), (values[p++] = n);
        for (const [i, n] of negative) (values[p++] = i), (values[p++] = n);
      }
    }
    this.dirty.length = 0;
    this.stale = 0;
    const metadata: StoreChanges['metadata'] = [];
    for (const [e, names] of this.renamed) for (const name of names) metadata.push({ exporter: e.exporter, name, metadata: e.metadata.get(name) ?? null });
    this.renamed.clear();
    const removed = this.gone.splice(0);
    const out = values.subarray(0, p).slice();
    return { changes: { added, removed, values: out, big, metadata }, transfer: [out.buffer] };
  }

  /** `s` left its exporter. @internal */
  removed(s: RelaySeries): void {
    if (s.sent) this.gone.push(s.id);
    if (!s.dirty) return;
    s.dirty = false;
    if (++this.stale < 1024 || 2 * this.stale < this.dirty.length) return;
    let n = 0;
    for (const x of this.dirty) if (x.dirty) this.dirty[n++] = x;
    this.dirty.length = n;
    this.stale = 0;
  }

  /** `name`'s metadata of `e` changed. @internal */
  described(e: ExporterSeries, name: string): void {
    let names = this.renamed.get(e);
    if (names === undefined) this.renamed.set(e, (names = new Set()));
    names.add(name);
  }

  /** The first refusal of `why` for `e`. @internal */
  firstRefusal(e: ExporterSeries, why: Refusal): void {
    const l = this.limits;
    const what: Record<Refusal, string> = {
      max_series: `the relay holds --max-series ${this.budget.max} series (over every exporter)`,
      max_bytes: `the relay's names, labels and descriptions take --max-bytes ${this.budget.maxBytes} bytes (over every exporter)`,
      exporter_series: `it has --max-series-per-exporter ${l.maxSeriesPerExporter} series`,
      exporter_bytes: `its names, labels and descriptions take --max-bytes-per-exporter ${l.maxBytesPerExporter} bytes`,
      too_large: "a name or label is over the exporter's limits (1024 characters, 64 labels; 4096 for descriptions) or a frame over 1 MiB",
    };
    this.log(`relay: ${e.exporter}: new series refused: ${what[why]} (metrics_exporter_tcp_relay_series_refused_total{reason="${why}"})`);
  }
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

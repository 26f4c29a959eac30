import { DDSketch } from '@datadog/sketches-js';
import {
  BUFFER_SIZE_METRIC,
  DROPPED_METRIC,
  QUEUE_PEAK_METRIC,
  RING_PEAK_METRIC,
  SeriesModel,
  recommendBufferSize,
  type ClientEvent,
  type HistogramState,
  type MetricKind,
  type MetricReader,
  type Series,
  type SeriesFeed,
} from 'metrics-exporter-tcp/client';
import { formatValue, visible } from './format.js';

/** Histogram quantiles cover the last one to two of these windows. */
export const HISTOGRAM_WINDOW_MS = 30_000;
/** DDSketch relative accuracy: quantiles within 1 % of the true value. */
const ACCURACY = 0.01;

/** The time histogram windows go by, set once per chunk of frames (a field read per observation costs nothing). */
class Clock {
  constructor(public now: number) {}
}

/**
 * Observations over a sliding window: two DDSketches (the same sketch the Rust observer uses),
 * the older dropped every window, so quantiles reflect the last one to two windows. A sketch
 * holds finite values only: ±Infinity (a valid double on the wire) is passed to `onSkip`.
 */
class WindowedSketch implements HistogramState {
  private current = new DDSketch({ relativeAccuracy: ACCURACY });
  private previous = new DDSketch({ relativeAccuracy: ACCURACY });
  private rotatedAt: number;

  constructor(
    private readonly clock: Clock,
    private readonly onSkip: () => void,
  ) {
    this.rotatedAt = clock.now;
  }

  record(v: number): void {
    if (!Number.isFinite(v)) return this.onSkip();
    this.rotate(this.clock.now);
    this.current.accept(v);
  }

  reset(): void {
    this.current = new DDSketch({ relativeAccuracy: ACCURACY });
    this.previous = new DDSketch({ relativeAccuracy: ACCURACY });
    this.rotatedAt = this.clock.now;
  }

  summary(now: number): { count: number; min: number; p50: number; p99: number; p999: number; max: number } | undefined {
    this.rotate(now);
    const s = new DDSketch({ relativeAccuracy: ACCURACY });
    s.merge(this.previous);
    s.merge(this.current);
    if (s.count === 0) return undefined;
    // Quantile estimates can overshoot the exact extremes by the sketch's accuracy: clamp.
    const q = (p: number) => Math.min(s.max, Math.max(s.min, s.getValueAtQuantile(p)));
    return { count: s.count, min: s.min, p50: q(0.5), p99: q(0.99), p999: q(0.999), max: s.max };
  }

  private rotate(now: number): void {
    if (now - this.rotatedAt < HISTOGRAM_WINDOW_MS) return;
    this.previous = now - this.rotatedAt < 2 * HISTOGRAM_WINDOW_MS ? this.current : new DDSketch({ relativeAccuracy: ACCURACY });
    this.current = new DDSketch({ relativeAccuracy: ACCURACY });
    this.rotatedAt = now;
  }
}

/** One entry of the JSON snapshot (`observe --json`). */
export interface SnapshotMetric {
  name: string;
  labels: Record<string, string>;
  kind: MetricKind;
  unit?: string;
  description?: string;
  /** Counter: total of the increments seen; gauge: current value. */
  value?: number | string;
  count?: number;
  min?: number;
  p50?: number;
  p99?: number;
  p999?: number;
  max?: number;
}

/**
 * What the exporter reports of its buffers (its fill levels, sent with self metrics on): how
 * full they got, and which `bufferSize` would have held that with room to spare.
 */
export interface BufferStatus {
  /** The exporter's `bufferSize`: records per thread's ring, frames per client queue. */
  size: number;
  /** The fullest ring (of any thread) over the exporter's last report interval, in records. */
  ringPeak: number;
  /** The most frames this client's queue held over the last report interval. */
  queuePeak: number;
  /** The fullest any ring got since this connection began, in records. */
  ringPeakMax: number;
  /** The most frames this client's queue held at once since this connection began. */
  queuePeakMax: number;
  /**
   * The smallest power of two that would have held the largest peak seen on this connection
   * (ring or queue) twice over: `recommendBufferSize()`, the rule `npm run bench -- tune` uses.
   */
  recommended: number;
}

/** Fill-level gauges: summarised as {@link BufferStatus}, not listed as metrics. */
const FILL_LEVELS: ReadonlySet<string> = new Set([RING_PEAK_METRIC, QUEUE_PEAK_METRIC, BUFFER_SIZE_METRIC]);

/** The JSON snapshot (`observe --json`). */
export interface Snapshot {
  metrics: SnapshotMetric[];
  /** The exporter's fill levels, once it has reported them. */
  buffer?: BufferStatus;
  /** Records the exporter reported this client did not get (its in-band drop counter), when nonzero. */
  lost?: number;
  /** Frames left out because their series or metadata was past the observer's caps, or over the exporter's limits, when nonzero. */
  refused?: number;
}

/** The caps of an {@link ObserverModel}. */
export interface ObserverLimits {
  /** Series kept at most, and metric names with metadata kept at most. Default 100 000. */
  readonly maxSeries?: number;
  /** Bytes of names, labels, units and descriptions kept at most. Default 64 MiB. */
  readonly maxBytes?: number;
}

/** The default {@link ObserverLimits}. */
export const OBSERVER_LIMITS = { maxSeries: 100_000, maxBytes: 64 * 1024 * 1024 } as const;

/** What the observer knows: one row per kind + name + labels (a series), metadata per name. */
export class ObserverModel {
  private readonly model: SeriesModel<WindowedSketch>;
  private readonly feed: SeriesFeed<WindowedSketch>;
  /** Each row's `name [labels]` text, made once. */
  private readonly texts = new WeakMap<Series<WindowedSketch>, string>();
  private readonly clock: Clock;
  /** Frames the reader skipped (past its key caps, or too large), as of the last {@link drain}. */
  private readerRefused = 0;
  /** Histogram values that were not finite, so not summarised. */
  skipped = 0;

  constructor(
    private readonly now: () => number = Date.now,
    limits: ObserverLimits = {},
  ) {
    this.clock = new Clock(now());
    const { maxSeries = OBSERVER_LIMITS.maxSeries, maxBytes = OBSERVER_LIMITS.maxBytes } = limits;
    this.model = new SeriesModel({ histogram: () => new WindowedSketch(this.clock, () => void this.skipped++), maxSeries, maxBytes });
    this.feed = this.model.feed();
  }

  /** Events applied so far. */
  get events(): number {
    return this.model.events;
  }

  /** Records the exporter said this client did not get: the total of its in-band drop counter. */
  get lost(): number {
    let n = 0;
    for (const s of this.model.seriesNamed('counter', DROPPED_METRIC)) n += Number(s.total);
    return n;
  }

  /** The exporter's fill levels, once it has reported its buffer size. */
  get buffer(): BufferStatus | undefined {
    const size = this.model.seriesNamed('gauge', BUFFER_SIZE_METRIC).find((s) => s.known);
    if (size === undefined) return undefined;
    const ring = this.peaks(RING_PEAK_METRIC);
    const queue = this.peaks(QUEUE_PEAK_METRIC);
    return {
      size: size.value,
      ringPeak: ring.last,
      queuePeak: queue.last,
      ringPeakMax: ring.max,
      queuePeakMax: queue.max,
      recommended: recommendBufferSize(Math.max(ring.max, queue.max)),
    };
  }

  /** The latest and the largest value of a fill-level gauge, over its series (one per thread). */
  private peaks(name: string): { last: number; max: number } {
    let last = 0;
    let max = 0;
    for (const s of this.model.seriesNamed('gauge', name)) {
      if (s.known) last = Math.max(last, s.value);
      max = Math.max(max, s.max);
    }
    return { last, max };
  }

  /** Frames left out because they were past a cap (the reader's keys, the model's series and bytes) or over the exporter's limits. */
  get refused(): number {
    return this.readerRefused + this.model.refused;
  }

  /** Applies one typed event. */
  apply(ev: ClientEvent): void {
    this.clock.now = this.now();
    this.model.apply(ev);
  }

  /** Applies every frame `reader` holds (the fast path: `client.consume((r) => model.drain(r))`). */
  drain(reader: MetricReader): void {
    this.clock.now = this.now();
    this.feed.drain(reader);
    this.readerRefused = reader.refusedFrames + reader.tooLargeFrames;
  }

  /**
   * A new connection begins (maybe to a restarted app, or one that replays its totals): counters
   * start again from 0, histograms forget, gauges are unknown until set.
   */
  reset(): void {
    this.clock.now = this.now();
    this.model.resetScope('');
  }

  private textOf(s: Series<WindowedSketch>): string {
    const cached = this.texts.get(s);
    if (cached !== undefined) return cached;
    const labels = Object.entries(s.labels);
    const text = labels.length === 0 ? s.name : `${s.name} [${labels.map(([k, v]) => `${k} = ${v}`).join(', ')}]`;
    this.texts.set(s, text);
    return text;
  }

  /** Rows in name order, each with its snapshot entry (one sort for both views). */
  private entries(): { text: string; m: SnapshotMetric }[] {
    const now = this.now();
    return [...this.model.series.values()]
      .filter((s) => !FILL_LEVELS.has(s.name))
      .map((s) => ({ s, text: this.textOf(s) }))
      .sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0))
      .map(({ s, text }) => {
        const meta = this.model.describe(s.name);
        const m: SnapshotMetric = { name: s.name, labels: { ...s.labels }, kind: s.kind };
        if (meta?.unit !== undefined) m.unit = meta.unit;
        if (meta?.description !== undefined) m.description = meta.description;
        if (s.kind === 'counter') m.value = s.total <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(s.total) : s.total.toString();
        else if (s.kind === 'gauge') {
          if (s.known) m.value = s.value; // else its base is unknown until a set arrives
        }
        else Object.assign(m, s.histogram?.summary(now));
        return { text, m };
      });
  }

  /** Rows in name order, with what was lost and refused when not zero. */
  snapshot(): Snapshot {
    const snap: Snapshot = { metrics: this.entries().map((e) => e.m) };
    const buffer = this.buffer;
    if (buffer !== undefined) snap.buffer = buffer;
    const lost = this.lost;
    const refused = this.refused;
    if (lost > 0) snap.lost = lost;
    if (refused > 0) snap.refused = refused;
    return snap;
  }

  /**
   * The metric lines of the live view: `name [labels]` on the left, the value on the right,
   * `width` characters wide; with `descriptions`, a line of description under each that has one.
   */
  lines(width: number, descriptions = false): string[] {
    const out: string[] = [];
    for (const entry of this.entries()) {
      const { m } = entry;
      const text = visible(entry.text);
      const f = (v: number | undefined) => (v === undefined ? '-' : visible(formatValue(v, m.unit)));
      const value =
        m.kind === 'counter'
          ? `total: ${typeof m.value === 'number' ? f(m.value) : m.value}`
          : m.kind === 'gauge'
            ? `current: ${m.value === undefined ? '-' : f(m.value as number)}`
            : m.count === undefined
              ? 'no data in window'
              : `count: ${m.count} min: ${f(m.min)} p50: ${f(m.p50)} p99: ${f(m.p99)} p999: ${f(m.p999)} max: ${f(m.max)}`;
      const left = width - value.length - 1;
      const name = text.length > left ? `${text.slice(0, Math.max(0, left - 1))}…` : text;
      out.push(`${name}${' '.repeat(Math.max(1, width - name.length - value.length))}${value}`);
      if (descriptions && m.description !== undefined) out.push(`    ${visible(m.description)}`.slice(0, width));
    }
    return out;
  }
}

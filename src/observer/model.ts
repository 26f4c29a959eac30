import { DDSketch } from '@datadog/sketches-js';
import type { ClientEvent, MetricKind } from '../client/events.js';
import { formatValue } from './format.js';

/** Histogram quantiles cover the last one to two of these windows. */
export const HISTOGRAM_WINDOW_MS = 30_000;
/** DDSketch relative accuracy: quantiles within 1 % of the true value. */
const ACCURACY = 0.01;

/**
 * Observations over a sliding window: two DDSketches (the same sketch the Rust observer uses),
 * the older dropped every window, so quantiles reflect the last one to two windows.
 */
class WindowedSketch {
  private current = new DDSketch({ relativeAccuracy: ACCURACY });
  private previous = new DDSketch({ relativeAccuracy: ACCURACY });
  private rotatedAt: number;

  constructor(now: number) {
    this.rotatedAt = now;
  }

  add(v: number, now: number): void {
    this.rotate(now);
    this.current.accept(v);
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

interface Row {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly text: string;
  kind: MetricKind;
  counter: bigint;
  gauge: number | undefined;
  histogram: WindowedSketch | undefined;
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

/** What the observer knows: one row per name + labels, metadata per name. */
export class ObserverModel {
  private readonly rows = new Map<string, Row>();
  private readonly metadata = new Map<string, { kind: MetricKind; unit?: string; description?: string }>();
  /** Events applied so far. */
  events = 0;
  /** Histogram values that were not finite, so not summarised. */
  skipped = 0;

  constructor(private readonly now: () => number = Date.now) {}

  apply(ev: ClientEvent): void {
    this.events++;
    if (ev.kind === 'metadata') {
      this.metadata.set(ev.name, { kind: ev.metricKind, unit: ev.unit, description: ev.description });
      return;
    }
    const labels = Object.entries(ev.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const id = JSON.stringify([ev.name, labels]); // unambiguous, unlike the display text
    let row = this.rows.get(id);
    if (row === undefined) {
      const text = labels.length === 0 ? ev.name : `${ev.name} [${labels.map(([k, v]) => `${k} = ${v}`).join(', ')}]`;
      row = { name: ev.name, labels: Object.fromEntries(labels), text, kind: 'counter', counter: 0n, gauge: undefined, histogram: undefined };
      this.rows.set(id, row);
    }
    const op = ev.op;
    switch (op.type) {
      case 'counterIncrement':
        row.kind = 'counter';
        row.counter += op.value;
        break;
      case 'counterSet':
        row.kind = 'counter';
        row.counter = op.value;
        break;
      case 'gaugeSet':
        row.kind = 'gauge';
        row.gauge = op.value;
        break;
      case 'gaugeIncrement':
        row.kind = 'gauge';
        row.gauge = (row.gauge ?? 0) + op.value;
        break;
      case 'gaugeDecrement':
        row.kind = 'gauge';
        row.gauge = (row.gauge ?? 0) - op.value;
        break;
      case 'histogramRecord':
        row.kind = 'histogram';
        row.histogram ??= new WindowedSketch(this.now());
        // A sketch holds finite values only (±Infinity is a valid double on the wire).
        if (Number.isFinite(op.value)) row.histogram.add(op.value, this.now());
        else this.skipped++;
        break;
    }
  }

  /** Rows in name order, each with its snapshot entry (one sort for both views). */
  private entries(): { row: Row; m: SnapshotMetric }[] {
    const now = this.now();
    return [...this.rows.values()]
      .sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0))
      .map((row) => {
        const meta = this.metadata.get(row.name);
        const m: SnapshotMetric = { name: row.name, labels: row.labels, kind: row.kind };
        if (meta?.unit !== undefined) m.unit = meta.unit;
        if (meta?.description !== undefined) m.description = meta.description;
        if (row.kind === 'counter') m.value = row.counter <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(row.counter) : row.counter.toString();
        else if (row.kind === 'gauge' && row.gauge !== undefined) m.value = row.gauge;
        else if (row.kind === 'histogram') Object.assign(m, row.histogram?.summary(now));
        return { row, m };
      });
  }

  /** Rows in name order, as the JSON snapshot reports them. */
  snapshot(): SnapshotMetric[] {
    return this.entries().map((e) => e.m);
  }

  /**
   * The metric lines of the live view: `name [labels]` on the left, the value on the right,
   * `width` characters wide; with `descriptions`, a line of description under each that has one.
   */
  lines(width: number, descriptions = false): string[] {
    const out: string[] = [];
    for (const { row, m } of this.entries()) {
      const f = (v: number | undefined) => (v === undefined ? '-' : formatValue(v, m.unit));
      const value =
        m.kind === 'counter'
          ? `total: ${typeof m.value === 'number' ? f(m.value) : m.value}`
          : m.kind === 'gauge'
            ? `current: ${m.value === undefined ? '-' : f(m.value as number)}`
            : m.count === undefined
              ? 'no data in window'
              : `count: ${m.count} min: ${f(m.min)} p50: ${f(m.p50)} p99: ${f(m.p99)} p999: ${f(m.p999)} max: ${f(m.max)}`;
      const left = width - value.length - 1;
      const name = row.text.length > left ? `${row.text.slice(0, Math.max(0, left - 1))}…` : row.text;
      out.push(`${name}${' '.repeat(Math.max(1, width - name.length - value.length))}${value}`);
      if (descriptions && m.description !== undefined) out.push(`    ${m.description}`.slice(0, width));
    }
    return out;
  }
}

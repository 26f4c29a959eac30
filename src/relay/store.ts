// What the relay keeps: one series per exporter + name + labels, bounded.
import type { ClientEvent, MetricKind } from '../client/index.js';

/** Default histogram buckets (seconds-friendly, like prom-client's). */
export const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface Series {
  readonly exporter: string;
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly kind: MetricKind;
  /** Counter: total of increments since the relay (re)connected; gauge: current value. */
  value: number;
  /** Histogram: observations per bucket (not cumulative; the last one is +Inf), sum, count. */
  readonly counts: number[];
  sum: number;
  count: number;
}

export interface Description {
  unit?: string;
  description?: string;
}

const kindOf = (t: string): MetricKind => (t.startsWith('counter') ? 'counter' : t.startsWith('gauge') ? 'gauge' : 'histogram');

/**
 * Series and metadata from every exporter. Beyond `maxSeries` new series are refused and
 * counted (`refused`), so a misbehaving exporter cannot exhaust the relay's memory.
 */
export class SeriesStore {
  readonly series = new Map<string, Series>();
  /** The series of each kind + name, for exporters that read one name at a time. */
  readonly byName = new Map<string, Series[]>();
  /** Metadata by exporter and name. */
  private readonly meta = new Map<string, Description>();
  refused = 0;
  /** Events applied. */
  events = 0;

  constructor(
    readonly buckets: readonly number[],
    private readonly maxSeries: number,
    private readonly onFirstRefusal: () => void,
  ) {}

  apply(exporter: string, ev: ClientEvent): Series | undefined {
    this.events++;
    if (ev.kind === 'metadata') {
      const key = JSON.stringify([exporter, ev.name]);
      // Metadata is bounded like series are.
      if (!this.meta.has(key) && this.meta.size >= this.maxSeries) return this.refuse();
      this.meta.set(key, { unit: ev.unit, description: ev.description });
      return undefined;
    }
    const kind = kindOf(ev.op.type);
    const labels = Object.entries(ev.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const key = JSON.stringify([exporter, ev.name, kind, labels]);
    let s = this.series.get(key);
    if (s === undefined) {
      if (this.series.size >= this.maxSeries) return this.refuse();
      s = { exporter, name: ev.name, labels: Object.fromEntries(labels), kind, value: 0, counts: [], sum: 0, count: 0 };
      if (kind === 'histogram') s.counts.push(...new Array<number>(this.buckets.length + 1).fill(0));
      this.series.set(key, s);
      const id = `${kind}:${ev.name}`;
      let list = this.byName.get(id);
      if (list === undefined) this.byName.set(id, (list = []));
      list.push(s);
    }
    const op = ev.op;
    switch (op.type) {
      case 'counterIncrement':
        s.value += Number(op.value);
        break;
      case 'counterSet':
        s.value = Number(op.value);
        break;
      case 'gaugeSet':
        s.value = op.value;
        break;
      case 'gaugeIncrement':
        s.value += op.value;
        break;
      case 'gaugeDecrement':
        s.value -= op.value;
        break;
      case 'histogramRecord': {
        let i = 0;
        while (i < this.buckets.length && op.value > this.buckets[i]!) i++;
        s.counts[i]!++;
        s.sum += op.value;
        s.count++;
        break;
      }
    }
    return s;
  }

  private refuse(): undefined {
    if (this.refused++ === 0) this.onFirstRefusal();
    return undefined;
  }

  /** Forgets an exporter that was given up on, so its last values are not published forever. */
  dropExporter(exporter: string): void {
    for (const [key, s] of this.series) {
      if (s.exporter !== exporter) continue;
      this.series.delete(key);
      const id = `${s.kind}:${s.name}`;
      const list = this.byName.get(id)!.filter((x) => x !== s);
      if (list.length === 0) this.byName.delete(id);
      else this.byName.set(id, list);
    }
    for (const key of this.meta.keys()) if ((JSON.parse(key) as string[])[0] === exporter) this.meta.delete(key);
  }

  describe(exporter: string, name: string): Description {
    return this.meta.get(JSON.stringify([exporter, name])) ?? {};
  }

  /** A reconnect to `exporter` starts its counters and histograms afresh (a counter reset). */
  resetExporter(exporter: string): void {
    for (const s of this.series.values()) {
      if (s.exporter !== exporter || s.kind === 'gauge') continue;
      s.value = 0;
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}

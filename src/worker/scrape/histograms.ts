import { HistogramAggregate } from '../../client/native-histogram.js';
import type { KeyEntry } from '../keys.js';
import { parseKey } from '../replay.js';

/** One histogram series of the endpoint: its name and labels, and what was observed. */
export interface HistogramSeries {
  /** The key's canonical form (see `normalizeKey`). */
  readonly canonical: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly aggregate: HistogramAggregate;
}

/**
 * With the Prometheus endpoint: every histogram key's observations since the exporter started
 * (the worker sees each one: histogram records go through the rings whether or not a TCP client
 * is connected). Keyed by name and labels, so that a series outlives the threads that recorded
 * it; at most `capacity` of them (the `maxKeys` option), further keys are left out with one warning.
 */
export class HistogramTable {
  private readonly series = new Map<string, HistogramSeries>();
  private warned = false;

  /**
   * @param bucketsFor the classic bucket bounds of a new series of this name (registered with it,
   *   or chosen from its unit)
   */
  constructor(
    private readonly capacity: number,
    private readonly bucketsFor: (name: string) => readonly number[],
    private readonly warn: (message: string, code: string) => void,
  ) {}

  /** The aggregate `key`'s observations go to (made on first use), or null when the table is full. */
  of(key: KeyEntry): HistogramAggregate | null {
    let s = this.series.get(key.canonical);
    if (s === undefined) {
      if (this.series.size >= this.capacity) {
        if (!this.warned) {
          this.warned = true;
          this.warn(`metrics-exporter-tcp: more than ${this.capacity} histogram series for /metrics; later ones are left out`, 'MTCP_MAX_KEYS');
        }
        return null;
      }
      const { name, labels } = parseKey(key.canonical);
      s = { canonical: key.canonical, name, labels, aggregate: new HistogramAggregate(this.bucketsFor(name)) };
      this.series.set(key.canonical, s);
    }
    return s.aggregate;
  }

  /** Forgets every observation (a capture's `reset()`); the series stay, empty. */
  reset(): void {
    for (const s of this.series.values()) s.aggregate.reset();
  }

  values(): IterableIterator<HistogramSeries> {
    return this.series.values();
  }
}

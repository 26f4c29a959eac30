// What the relay keeps: the client's series model, one scope per exporter, bounded, with
// histograms aggregated into Prometheus-style buckets.
import { SeriesModel, type HistogramState, type Series } from 'metrics-exporter-tcp/client';

/** Default histogram buckets (seconds-friendly, like prom-client's). */
export const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A histogram series' observations per bucket (not cumulative; the last is +Inf), sum and count. */
export class Buckets implements HistogramState {
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
export type RelaySeries = Series<Buckets>;
/** Every exporter's series and metadata; the scope of each is the exporter's address. */
export type SeriesStore = SeriesModel<Buckets>;

/**
 * A store for the relay: at most `maxSeries` series (and metric names with metadata), so a
 * misbehaving exporter cannot exhaust the relay's memory; `onFirstRefusal` is told once.
 */
export function createStore(buckets: readonly number[], maxSeries: number, onFirstRefusal: () => void): SeriesStore {
  return new SeriesModel({ histogram: () => new Buckets(buckets), maxSeries, onFirstRefusal });
}

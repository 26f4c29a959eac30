// The fast path into a SeriesModel: frames from a MetricReader applied to series bound once
// per key, with nothing allocated per frame.
import type { MetricReader } from './metric-reader.js';
import type { HistogramState, Series, SeriesModel } from './series.js';

/** A key's series by kind: counter, gauge, histogram (so a slot is `key.id * 3 + kind`). */
const KINDS = ['counter', 'gauge', 'histogram'] as const;

/**
 * Applies what a {@link MetricReader} decoded to one scope of a {@link SeriesModel} (made by
 * {@link SeriesModel.feed}). Each reader key is bound to its series on its first frame; later
 * frames update that series in place.
 *
 * ```ts
 * const feed = model.feed('127.0.0.1:5000');
 * await client.consume((reader) => feed.drain(reader));
 * ```
 */
export class SeriesFeed<H extends HistogramState> {
  /** Series by `key.id * 3 + kind` for `reader`; `null` when the model refused it. */
  private bound: (Series<H> | null | undefined)[] = [];
  private reader: MetricReader | undefined;
  private generation: number;

  constructor(
    private readonly model: SeriesModel<H>,
    /** The scope the frames are applied to. */
    readonly scope: string,
  ) {
    this.generation = model.generation;
  }

  /**
   * Applies every frame `reader` holds (until its `next()` returns `undefined`): metadata is
   * kept by name, metrics update their series. Returns the frames applied; each counts in the
   * model's `events`, and a frame of a series the model refused counts in its `refused`.
   * @throws ClientError from `reader.next()` when the stream is malformed (frames before it
   *   are applied).
   */
  drain(reader: MetricReader): number {
    const model = this.model;
    if (reader !== this.reader || model.generation !== this.generation) {
      this.bound = [];
      this.reader = reader;
      this.generation = model.generation;
    }
    const bound = this.bound;
    let n = 0;
    let metrics = 0; // (metadata counts itself in apply())
    try {
      for (let kind = reader.next(); kind !== undefined; kind = reader.next()) {
        n++;
        if (kind === 'metadata') {
          model.apply(reader.metadata!, this.scope);
          continue;
        }
        metrics++;
        const op = reader.op;
        const k = op === 'counterIncrement' || op === 'counterSet' ? 0 : op === 'histogramRecord' ? 2 : 1;
        const slot = reader.key.id * 3 + k;
        let s = bound[slot];
        if (s === undefined) s = bound[slot] = model.seriesFor(KINDS[k], reader.key.name, reader.key.labels, this.scope) ?? null;
        else if (s === null) model.refuse();
        if (s !== null) s.apply(op, reader.value, reader.bigValue);
      }
    } finally {
      model.events += metrics;
    }
    return n;
  }
}

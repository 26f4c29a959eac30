// The fast path into a SeriesModel: frames from a MetricReader applied to series bound once
// per key, with nothing allocated per frame.
import { KeyBindings } from './key-bindings.js';
import type { MetricReader } from './metric-reader.js';
import type { HistogramState, Series, SeriesModel } from './series.js';

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
  /** The series of each key of `reader`, by kind. */
  private readonly bound: KeyBindings<Series<H>>;
  private reader: MetricReader | undefined;
  private generation: number;

  constructor(
    private readonly model: SeriesModel<H>,
    /** The scope the frames are applied to. */
    readonly scope: string,
  ) {
    this.generation = model.generation;
    this.bound = new KeyBindings<Series<H>>(
      (kind, key) => model.seriesFor(kind, key.name, key.labels, scope),
      () => model.refuse(),
    );
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
      this.bound.clear();
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
        bound.current(reader)?.apply(reader.op, reader.value, reader.bigValue);
      }
    } finally {
      model.events += metrics;
    }
    return n;
  }
}

// Binding a MetricReader's keys to a tool's own series, once per key and kind: what the
// SeriesModel feed and the relay's store both do for every metric frame.
import type { MetricKind } from './events.js';
import type { MetricKey, MetricReader } from './metric-reader.js';

const KINDS = ['counter', 'gauge', 'histogram'] as const;

/**
 * The series (any object of the caller's) of each key a {@link MetricReader} meets, by kind:
 * made by `bind` on the key's first frame of that kind, found by index after (slot
 * `key.id * 3 + kind`), so a frame costs no lookup and no allocation.
 *
 * ```ts
 * const bindings = new KeyBindings(
 *   (kind, key) => store.seriesFor(kind, key.name, key.labels),  // not an object: refused
 *   () => store.refused++,
 * );
 * for (let f = reader.next(); f !== undefined; f = reader.next()) {
 *   if (f === 'metric') bindings.current(reader)?.apply(reader.op, reader.value, reader.bigValue);
 * }
 * ```
 */
export class KeyBindings<S extends object, R extends string | undefined = undefined> {
  /** `null`: `bind` refused the key and kind, for the reason in `reasons` at the same slot. */
  private slots: (S | null | undefined)[] = [];
  private reasons: R[] = [];
  private refusals = 0;

  /**
   * @param bind makes the series of a key and kind, or refuses it: returns why (anything but an object)
   * @param refused called with that reason for every later frame of a refused key and kind (`bind` counts the first)
   */
  constructor(
    private readonly bind: (kind: MetricKind, key: MetricKey) => S | R,
    private readonly refused: (reason: R) => void,
  ) {}

  /** Forgets every binding: the series they point to are gone, or the reader is another. */
  clear(): void {
    this.slots = [];
    this.reasons = [];
    this.refusals = 0;
  }

  /** Forgets the refusals only: the next frame of each refused key and kind asks `bind` again (room was made). */
  forgetRefusals(): void {
    if (this.refusals === 0) return;
    for (let i = 0; i < this.slots.length; i++) if (this.slots[i] === null) this.slots[i] = undefined;
    this.reasons = [];
    this.refusals = 0;
  }

  /** The series of the reader's current metric frame (after `next()` returned `'metric'`); null if refused. */
  current(reader: MetricReader): S | null {
    const op = reader.op;
    const k = op === 'counterIncrement' || op === 'counterSet' ? 0 : op === 'histogramRecord' ? 2 : 1;
    const slot = reader.key.id * 3 + k;
    const s = this.slots[slot];
    if (s === null) {
      this.refused(this.reasons[slot]!);
      return null;
    }
    if (s !== undefined) return s;
    const bound = this.bind(KINDS[k], reader.key);
    if (typeof bound === 'object') return (this.slots[slot] = bound);
    this.slots[slot] = null;
    this.reasons[slot] = bound;
    this.refusals++;
    return null;
  }
}

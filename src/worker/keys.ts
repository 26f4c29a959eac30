import { delimitedField, stringField } from './proto-fields.js';
import type { HistogramAggregate } from '../client/native-histogram.js';

/**
 * A key's encoded pieces, built once: `Metric.name` (field 1) and every `Metric.labels` entry
 * (field 3), labels already in the seed's order. A frame copies them with `TypedArray.set`.
 */
export interface KeyEntry {
  readonly name: Uint8Array;
  readonly labels: Uint8Array;
  /** `name{label=value,…}`, for warnings. */
  readonly text: string;
  /** Whether an invalid value of this key was reported already (once per key). */
  warned: boolean;
  /**
   * The encoder's cache of this key's last frame prefix (everything before the value): where
   * it was written in the encoder's slab, a copy of it, the value shape it was written for, and
   * the batch it belongs to.
   */
  at: number;
  prefix: Uint8Array;
  shape: number;
  stamp: number;
  /** `replayOnConnect`: the key's slot in the replay table, or -1. */
  slot: number;
  /** The key as the registry wrote it (`[name, labels]` as JSON). */
  readonly canonical: string;
  /**
   * With the Prometheus endpoint: the key's histogram (undefined until its first observation,
   * null when the table of histograms was full then).
   */
  hist: HistogramAggregate | null | undefined;
}

const NO_PREFIX = new Uint8Array(0);

/** A label value as warnings show it: long ones cut to 64 characters. */
function short(v: string): string {
  return v.length <= 64 ? v : `${v.slice(0, 63)}…`;
}

/** An entry of the table, with the number of rings using it. */
interface Held extends KeyEntry {
  refs: number;
}

/**
 * Every distinct key the worker knows, shared by all rings: equal keys coming from different
 * threads map to the same entry. An entry lives while a ring uses it: when a thread is gone,
 * its keys are released, so threads that come and go (a pool's idle churn) with keys of their
 * own do not grow the table; it holds at most `maxKeys` keys per live thread.
 */
export class KeyTable {
  private readonly byCanonical = new Map<string, Held>();

  /** Distinct keys in use. */
  get size(): number {
    return this.byCanonical.size;
  }

  /** The entry of a key, created on first use; each call must be paired with a {@link release}. */
  entry(canonical: string, name: string, labels: readonly (readonly [string, string])[]): KeyEntry {
    let e = this.byCanonical.get(canonical);
    if (e === undefined) {
      e = {
        // `Metric.name` (field 1) and `Metric.labels` (field 3, a map: one entry message each).
        name: stringField(1, name),
        labels: Buffer.concat(labels.map(([k, v]) => delimitedField(3, Buffer.concat([stringField(1, k), stringField(2, v)])))),
        text: labels.length === 0 ? name : `${name}{${labels.map(([k, v]) => `${k}=${short(v)}`).join(',')}}`,
        warned: false,
        at: 0,
        prefix: NO_PREFIX,
        shape: -1,
        stamp: 0,
        slot: -1,
        canonical,
        hist: undefined,
        refs: 0,
      };
      this.byCanonical.set(canonical, e);
    }
    e.refs++;
    return e;
  }

  /** A ring no longer uses `entry`; the last release forgets it. */
  release(entry: KeyEntry): void {
    const e = entry as Held;
    if (--e.refs === 0) this.byCanonical.delete(e.canonical);
  }
}

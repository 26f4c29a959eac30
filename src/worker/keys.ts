import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';

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
}

/**
 * Every distinct key the worker knows, shared by all rings: equal keys coming from different
 * threads map to the same entry.
 */
export class KeyTable {
  private readonly byCanonical = new Map<string, KeyEntry>();

  entry(canonical: string, name: string, labels: readonly (readonly [string, string])[]): KeyEntry {
    let e = this.byCanonical.get(canonical);
    if (e === undefined) {
      const l = new BinaryWriter();
      for (const [k, v] of labels) {
        l.tag(3, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(k);
        l.tag(2, WireType.LengthDelimited).string(v).join();
      }
      e = {
        name: new BinaryWriter().tag(1, WireType.LengthDelimited).string(name).finish(),
        labels: l.finish(),
        text: labels.length === 0 ? name : `${name}{${labels.map(([k, v]) => `${k}=${v}`).join(',')}}`,
        warned: false,
      };
      this.byCanonical.set(canonical, e);
    }
    return e;
  }
}

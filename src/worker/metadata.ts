import type { MetricKind } from '../shared/messages.js';
import { Chunk } from './chunk.js';
import { delimitedField, sizeDelimited, stringField, varintField } from './proto-fields.js';
import type { NameInfo } from './scrape/exposition.js';

/** `Metadata.MetricType` of the seed's schema. */
const TYPES: Record<MetricKind, number> = { counter: 0, gauge: 1, histogram: 2 };

/**
 * Encodes one length-delimited `Event { metadata }` frame: `Metadata { name = 1, metric_type =
 * 2, oneof unit { unit_value = 3 }, oneof description { description_value = 4 } }` as field 1.
 */
export function encodeMetadata(name: string, kind: MetricKind, unit?: string, description?: string): Uint8Array {
  // Proto3 leaves a field at its default value out; a oneof member that is set is written.
  const fields: Buffer[] = [];
  if (name !== '') fields.push(stringField(1, name));
  if (TYPES[kind] !== 0) fields.push(varintField(2, TYPES[kind]));
  if (unit !== undefined) fields.push(stringField(3, unit));
  if (description !== undefined) fields.push(stringField(4, description));
  return sizeDelimited(delimitedField(1, Buffer.concat(fields)));
}

/**
 * The metadata every client gets on connect, keyed by metric name (the wire message has no
 * labels). Registering a name again replaces its entry. Names outlive the threads that
 * described them, so the store is capped instead: at most `maxNames` names (the `maxKeys`
 * option), further names are refused with one warning.
 */
export class MetadataStore {
  private readonly frames = new Map<string, Uint8Array>();
  /** What was registered of each name, for the Prometheus endpoint. */
  private readonly infos = new Map<string, NameInfo>();
  private warned = false;

  constructor(
    private readonly maxNames: number,
    private readonly warn: (message: string, code: string) => void,
  ) {}

  /** What was registered of `name`, if anything. */
  info(name: string): NameInfo | undefined {
    return this.infos.get(name);
  }

  /** Stores `frame` (and `info`) for `name`; false (and nothing stored) when the name is new and the store full. */
  set(name: string, frame: Uint8Array, info: NameInfo): boolean {
    if (!this.frames.has(name) && this.frames.size >= this.maxNames) {
      if (!this.warned) {
        this.warned = true;
        this.warn(`metrics-exporter-tcp: metadata for more than ${this.maxNames} names; further names are not described`, 'MTCP_MAX_KEYS');
      }
      return false;
    }
    this.frames.set(name, frame);
    this.infos.set(name, info);
    return true;
  }

  /** All frames, in registration order, as one chunk (null when there are none). */
  replay(): Chunk | null {
    if (this.frames.size === 0) return null;
    const ends = new Uint32Array(this.frames.size);
    let end = 0;
    let i = 0;
    for (const f of this.frames.values()) ends[i++] = end += f.length;
    return new Chunk(Buffer.concat([...this.frames.values()]), ends);
  }
}

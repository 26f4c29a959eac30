import { create } from '@bufbuild/protobuf';
import { sizeDelimitedEncode } from '@bufbuild/protobuf/wire';
import { EventSchema, Metadata_MetricType } from '../gen/event_pb.js';
import type { MetricKind } from '../shared/messages.js';
import { Chunk } from './chunk.js';
import type { NameInfo } from './scrape/exposition.js';

const TYPES: Record<MetricKind, Metadata_MetricType> = {
  counter: Metadata_MetricType.COUNTER,
  gauge: Metadata_MetricType.GAUGE,
  histogram: Metadata_MetricType.HISTOGRAM,
};

/** Encodes one length-delimited `Event { metadata }` frame with the generated schema. */
export function encodeMetadata(name: string, kind: MetricKind, unit?: string, description?: string): Uint8Array {
  return sizeDelimitedEncode(
    EventSchema,
    create(EventSchema, {
      event: {
        case: 'metadata',
        value: {
          name,
          metricType: TYPES[kind],
          unit: unit === undefined ? { case: undefined } : { case: 'unitValue', value: unit },
          description: description === undefined ? { case: undefined } : { case: 'descriptionValue', value: description },
        },
      },
    }),
  );
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

import { create } from '@bufbuild/protobuf';
import { sizeDelimitedEncode } from '@bufbuild/protobuf/wire';
import { EventSchema, Metadata_MetricType } from '../gen/event_pb.js';
import type { MetricKind } from '../shared/messages.js';

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
 * labels). Registering a name again replaces its entry.
 */
export class MetadataStore {
  private readonly frames = new Map<string, Uint8Array>();

  set(name: string, frame: Uint8Array): void {
    this.frames.set(name, frame);
  }

  /** All frames, in registration order, as one buffer (null when there are none). */
  replay(): { bytes: Buffer; count: number } | null {
    if (this.frames.size === 0) return null;
    return { bytes: Buffer.concat([...this.frames.values()]), count: this.frames.size };
  }
}

// The ways a relay thread can decode a stream, by name (a name crosses into worker threads, a
// function cannot).
import { eventApplier } from './event-applier.js';
import type { ApplierFactory } from './exporter-link.js';
import { metricReaderApplier } from './metric-reader-applier.js';

const APPLIERS = {
  /** The client's MetricReader, series bound once per key: what the relay runs. */
  fast: metricReaderApplier,
  /** Every frame through protobuf-es into a typed event: the reference path. */
  events: eventApplier,
} satisfies Record<string, ApplierFactory>;

/** The name of a stream decoder: `'fast'` or `'events'` (the reference path). */
export type DecoderName = keyof typeof APPLIERS;

export function applierFor(name: DecoderName): ApplierFactory {
  return APPLIERS[name];
}

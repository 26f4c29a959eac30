// The ways a relay thread can decode a stream, by name (a name crosses into worker threads, a
// function cannot).
import { eventApplier } from './event-applier.js';
import type { ApplierFactory } from './exporter-link.js';

const APPLIERS = {
  /** Every frame through protobuf-es into a typed event: the reference path. */
  events: eventApplier,
} satisfies Record<string, ApplierFactory>;

/** The name of a stream decoder: `'events'` (the reference path). */
export type DecoderName = keyof typeof APPLIERS;

export function applierFor(name: DecoderName): ApplierFactory {
  return APPLIERS[name];
}

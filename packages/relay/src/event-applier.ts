// The reference way to apply a stream: split it into frames, decode each into a typed event
// with protobuf-es (toClientEvent), apply the event. Kept for the bench and as a baseline.
import { FrameDecoder, detectProtocol, toClientEvent, type ClientProtocol } from 'metrics-exporter-tcp/client';
import type { StreamApplier } from './exporter-link.js';
import { MAX_FRAME_BYTES, type ExporterSeries } from './store.js';

/** A {@link StreamApplier} that decodes every frame into a `ClientEvent` (frames over 1 MiB are skipped and refused). */
export function eventApplier(target: ExporterSeries, protocol: ClientProtocol | 'auto'): StreamApplier {
  const frames = new FrameDecoder(MAX_FRAME_BYTES, true);
  let detected: ClientProtocol | undefined = protocol === 'auto' ? undefined : protocol;
  let skipped = 0;
  return {
    push(chunk, nowMs) {
      const list: Uint8Array[] = [];
      let failure: unknown;
      try {
        frames.push(chunk, list);
      } catch (err) {
        failure = err; // the frames before the bad length prefix still count
      }
      for (const frame of list) {
        // Metadata frames decode the same in both formats; a metric frame tells which one it is.
        detected ??= detectProtocol(frame);
        target.apply(toClientEvent(frame, detected ?? 'seed'), nowMs);
      }
      const s = frames.skippedFrames - skipped;
      skipped += s;
      target.refuse('too_large', s);
      if (failure !== undefined) throw failure;
      return list.length + s;
    },
  };
}

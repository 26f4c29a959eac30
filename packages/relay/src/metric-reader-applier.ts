// The fast way to apply a stream: the client's MetricReader recognises each key by its bytes,
// and each key is bound to its relay series once, so a frame costs a parse of its value and an
// update in place, with nothing allocated.
import { KeyBindings, MetricReader, type ClientProtocol } from 'metrics-exporter-tcp/client';
import type { StreamApplier } from './exporter-link.js';
import { SELF_KEYS, SELF_KEY_BYTES } from './fill-hold.js';
import { MAX_FRAME_BYTES, type ExporterSeries, type Refusal, type RelaySeries } from './store.js';

/**
 * A {@link StreamApplier} over a {@link MetricReader} that holds no more keys, and no more bytes
 * of keys, than the exporter may have series (frames over 1 MiB are skipped as they stream).
 * Series are bound per key and kind ({@link KeyBindings}); whenever the exporter's series are
 * removed (expired, cleared) the bindings and the reader's keys are forgotten, so a frame never
 * updates a series that left the store and expired keys make room; whenever any thread gives
 * series back, the keys refused for the relay's cap are tried again.
 */
export function metricReaderApplier(target: ExporterSeries, protocol: ClientProtocol | 'auto'): StreamApplier {
  const { maxSeriesPerExporter, maxBytesPerExporter } = target.limits;
  // Room for the exporter's self metrics' keys too (they are no series of the caps).
  const reader = new MetricReader({
    protocol,
    maxKeys: maxSeriesPerExporter + SELF_KEYS,
    maxKeyBytes: maxBytesPerExporter + SELF_KEY_BYTES,
    maxFrameBytes: MAX_FRAME_BYTES,
    skipOversized: true,
  });
  let now = 0; // the chunk's time, for series made while it is applied
  const bound = new KeyBindings<RelaySeries, Refusal>(
    (kind, key) => target.seriesFor(kind, key.name, key.labels, now),
    (why) => target.refuse(why),
  );
  const budget = target.store.budget;
  let epoch = target.epoch;
  let freed = budget.freed;
  // The reader's counts as of the last chunk.
  let refused = 0;
  let forBytes = 0;
  let tooLarge = 0;
  let refusedAtForget = 0;
  const forget = () => {
    bound.clear();
    reader.forgetKeys();
    refusedAtForget = reader.refusedFrames;
  };
  return {
    push(chunk, nowMs) {
      if (target.epoch !== epoch) {
        forget();
        epoch = target.epoch;
      } else if (budget.freed !== freed) {
        // Room elsewhere: refused keys may fit now. A reader that is full of keys the store
        // refused forgets them all; otherwise only the refusals are forgotten.
        if (reader.refusedFrames !== refusedAtForget) forget();
        else bound.forgetRefusals();
      }
      freed = budget.freed;
      now = nowMs;
      reader.push(chunk);
      let n = 0;
      try {
        for (let kind = reader.next(); kind !== undefined; kind = reader.next()) {
          n++;
          if (kind === 'metadata') {
            target.describe(reader.metadata!);
            continue;
          }
          const s = bound.current(reader);
          if (s !== null) {
            s.apply(reader.op, reader.value, reader.bigValue);
            s.updatedAt = nowMs;
            if (!s.dirty) target.touch(s);
          }
        }
      } finally {
        // Frames the reader skipped (keys past its caps, or too large) are refused, and read all the same.
        const r = reader.refusedFrames - refused;
        const b = reader.refusedForBytes - forBytes;
        const t = reader.tooLargeFrames - tooLarge;
        refused += r;
        forBytes += b;
        tooLarge += t;
        // A reader full while the exporter holds well under its caps holds keys the relay-wide
        // caps refused (the reader counts keys' protobuf bytes, the store their text and metadata).
        const full = (own: boolean, mine: Refusal): Refusal => (own ? mine : (target.relayRefusal ?? mine));
        target.refuse(full(target.held >= maxSeriesPerExporter, 'exporter_series'), r - b);
        target.refuse(full(target.bytes >= maxBytesPerExporter / 2, 'exporter_bytes'), b);
        target.refuse('too_large', t);
        n += r + t;
      }
      return n;
    },
  };
}

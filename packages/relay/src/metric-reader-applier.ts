// The fast way to apply a stream: the client's MetricReader recognises each key by its bytes,
// and each key is bound to its relay series once, so a frame costs a parse of its value and an
// update in place, with nothing allocated.
import { KeyBindings, MetricReader, type ClientProtocol } from 'metrics-exporter-tcp/client';
import type { StreamApplier } from './exporter-link.js';
import type { ExporterSeries, RelaySeries } from './store.js';

/**
 * A {@link StreamApplier} over a {@link MetricReader}. Series are bound per key and kind
 * ({@link KeyBindings}); the bindings are dropped whenever the exporter's series are (expired or
 * cleared), so a frame never updates a series that left the store.
 */
export function metricReaderApplier(target: ExporterSeries, protocol: ClientProtocol | 'auto'): StreamApplier {
  // Keys beyond the series cap could never become series: remember no more than that.
  const reader = new MetricReader({ protocol, maxKeys: target.maxSeries });
  let now = 0; // the chunk's time, for series made while it is applied
  const bound = new KeyBindings<RelaySeries>(
    (kind, key) => target.seriesFor(kind, key.name, key.labels, now),
    () => target.refuse(),
  );
  let epoch = target.epoch;
  let keysRefused = 0;
  return {
    push(chunk, nowMs) {
      if (target.epoch !== epoch) {
        bound.clear();
        epoch = target.epoch;
      }
      now = nowMs;
      reader.push(chunk);
      let n = 0;
      try {
        for (let kind = reader.next(); kind !== undefined; kind = reader.next()) {
          n++;
          if (kind === 'metadata') {
            target.apply(reader.metadata!, nowMs);
            continue;
          }
          const s = bound.current(reader);
          if (s !== null) {
            s.apply(reader.op, reader.value, reader.bigValue);
            s.updatedAt = nowMs;
          }
        }
      } finally {
        // Frames of keys beyond maxKeys are skipped by the reader: refused, and read all the same.
        const skipped = reader.refusedFrames - keysRefused;
        keysRefused = reader.refusedFrames;
        target.refuse(skipped);
        n += skipped;
      }
      return n;
    },
  };
}

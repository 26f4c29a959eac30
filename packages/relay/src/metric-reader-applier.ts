// The fast way to apply a stream: the client's MetricReader recognises each key by its bytes,
// and each key is bound to its relay series once, so a frame costs a parse of its value and an
// update in place, with nothing allocated.
import { MetricReader, type ClientProtocol, type MetricKind } from 'metrics-exporter-tcp/client';
import type { StreamApplier } from './exporter-link.js';
import type { ExporterSeries, RelaySeries } from './store.js';

const KINDS: readonly MetricKind[] = ['counter', 'gauge', 'histogram'];

/**
 * A {@link StreamApplier} over a {@link MetricReader}. Series are bound per key and kind (slot
 * `key.id * 3 + kind`; `null` when refused); the bindings are dropped whenever the exporter's
 * series are (expired or cleared), so a frame never updates a series that left the store.
 */
export function metricReaderApplier(target: ExporterSeries, protocol: ClientProtocol | 'auto'): StreamApplier {
  // Keys beyond the series cap could never become series: remember no more than that.
  const reader = new MetricReader({ protocol, maxKeys: target.maxSeries });
  let bound: (RelaySeries | null | undefined)[] = [];
  let epoch = target.epoch;
  let keysRefused = 0;
  return {
    push(chunk, nowMs) {
      if (target.epoch !== epoch) {
        bound = [];
        epoch = target.epoch;
      }
      reader.push(chunk);
      let n = 0;
      try {
        for (let kind = reader.next(); kind !== undefined; kind = reader.next()) {
          n++;
          if (kind === 'metadata') {
            target.apply(reader.metadata!, nowMs);
            continue;
          }
          const op = reader.op;
          const k = op === 'counterIncrement' || op === 'counterSet' ? 0 : op === 'histogramRecord' ? 2 : 1;
          const slot = reader.key.id * 3 + k;
          let s = bound[slot];
          if (s === undefined) s = bound[slot] = target.seriesFor(KINDS[k]!, reader.key.name, reader.key.labels, nowMs) ?? null;
          else if (s === null) target.refuse();
          if (s !== null) {
            s.apply(op, reader.value, reader.bigValue);
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

// Warms a thread's decoding path up before it reads real exporters.
import { sampleStream, type ClientProtocol } from 'metrics-exporter-tcp/client';
import { applierFor, type DecoderName } from './appliers.js';
import { SeriesBudget } from './budget.js';
import { RelayStore, type StoreLimits } from './store.js';

/**
 * Feeds a made-up stream through a throwaway store with the same decoder, for up to 30 rounds
 * of 3000 frames or 100 ms. Cold, the JIT runs the decoder a tenth as fast, and an exporter's
 * queue for a relay that starts reading a busy app (`bufferSize` frames) could overflow in the
 * first milliseconds.
 */
export function warmUp(decoder: DecoderName, protocol: ClientProtocol | 'auto', limits: StoreLimits): void {
  const sample = sampleStream(protocol === 'auto' ? 'seed' : protocol);
  const store = new RelayStore(limits, new SeriesBudget(1000, 1));
  const applier = applierFor(decoder)(store.of('warm-up'), protocol);
  const end = performance.now() + 100;
  for (let i = 0; i < 30 && performance.now() < end; i++) {
    applier.push(sample, Date.now());
    store.changes();
  }
}

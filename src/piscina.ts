// `metrics-exporter-tcp/piscina`: record from piscina pools (or any worker_threads) without
// boilerplate. Nothing here imports piscina: it only adds to, and reads from, workerData.
import { workerData } from 'node:worker_threads';
import { attach, type Connector } from './app/attach.js';
import type { TcpRecorder } from './app/recorder.js';
import type { Recording } from './app/recording.js';

/** The workerData property the connector travels in. */
export const WORKER_DATA_KEY = 'metricsExporterTcp';

/**
 * Returns `options` (piscina's, or `new Worker`'s) with the recorder's connector (a `TcpRecorder`'s,
 * or a capture's `cap.recorder` from `metrics-exporter-tcp/testing`) added to
 * `workerData`, which must be an object or absent:
 * `new Piscina(withMetrics(recorder, { filename, workerData: { other: 1 } }))`.
 * @throws TypeError if `workerData` is set but not a plain object.
 */
export function withMetrics<T extends object>(recorder: Pick<TcpRecorder, 'connector'>, options: T): T {
  const data = (options as { workerData?: unknown }).workerData ?? {};
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new TypeError('withMetrics() needs workerData to be an object (or absent) to add the connector to');
  }
  return { ...options, workerData: { ...data, [WORKER_DATA_KEY]: recorder.connector() } };
}

let attached: Recording | undefined;

/**
 * In a thread started with {@link withMetrics} options: this thread's recorder (attached on
 * first use, then the same one for the life of the thread).
 * @throws TypeError if the thread's workerData has no connector.
 */
export function metrics(): Recording {
  if (attached === undefined) {
    const connector = (workerData as Record<string, Connector | undefined> | null)?.[WORKER_DATA_KEY];
    if (connector === undefined) {
      throw new TypeError(`metrics(): this thread's workerData has no ${WORKER_DATA_KEY}; start it with withMetrics(recorder, options)`);
    }
    attached = attach(connector);
  }
  return attached;
}

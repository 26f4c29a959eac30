/**
 * Messages between the app side and the transport worker. Every message carries a `t` tag so
 * that foreign messages (e.g. from a watch-mode runner) are recognised and ignored.
 */
import type { ListenAddress, BoundAddress } from './address.js';
import type { RingDescriptor } from './layout.js';
import type { MessagePort } from 'node:worker_threads';

export type MetricKind = 'counter' | 'gauge' | 'histogram';

/**
 * Control messages a producer sends on its own MessagePort. `pos` is the producer's published
 * ring position when the message was sent: the worker applies the message just before the
 * record at `pos`, so a register followed by a record reaches clients in that order.
 */
export type ControlMessage =
  | { t: 'key'; pos: number; id: number; canonical: string; name: string; labels: [string, string][] }
  | { t: 'meta'; pos: number; name: string; kind: MetricKind; unit: string | undefined; description: string | undefined };

/** What the worker is started with (`workerData`). */
export interface WorkerInit {
  readonly ctl: SharedArrayBuffer;
  readonly listen: ListenAddress;
  /** Frames each client may have queued; also the ring limit. */
  readonly bufferSize: number;
  readonly maxClients: number;
  readonly ring: RingDescriptor;
  readonly port: MessagePort;
  /** Control messages to apply before anything else (a restart replays the app's registry). */
  readonly replay: ControlMessage[];
}

/** Parent → worker. */
export type ToWorker = { t: 'close'; timeoutMs: number };

/** Worker → parent. */
export type FromWorker =
  | { t: 'ready'; address: BoundAddress }
  | { t: 'listen-error'; message: string; code: string | undefined; errno: number | undefined; syscall: string | undefined }
  | { t: 'closed' };

/**
 * Messages between the app side and the transport worker. Every message carries a `t` tag so
 * that foreign messages (e.g. from a watch-mode runner) are recognised and ignored.
 */
import type { ListenAddress, BoundAddress } from './address.js';
import type { RingDescriptor } from './layout.js';
import type { MessagePort } from 'node:worker_threads';

export type MetricKind = 'counter' | 'gauge' | 'histogram';

import type { Protocol } from './protocol.js';

export type { Protocol };

/**
 * Control messages a producer sends: on its MessagePort (the recorder's own ring) or on the
 * exporter's BroadcastChannel (rings attached from other threads, tagged with `ring`). `pos` is
 * the producer's published ring position when the message was sent: the worker applies the
 * message just before the record at `pos`, so a register followed by a record reaches clients
 * in that order. `seq` numbers a ring's messages from 0 (it is the ring's sent-control count
 * before this one, wrapping at 2^32): a worker that was handed a ring's first messages by the
 * host skips them when they also come on the channel, and waits for any it has not got.
 */
export type ControlMessage = (
  | {
      t: 'key';
      pos: number;
      id: number;
      canonical: string;
      name: string;
      labels: [string, string][];
      /** With `replayOnConnect`: the state page of keys `id…id+1023`, sent with its first key. */
      statePage?: SharedArrayBuffer;
    }
  | {
      t: 'meta';
      pos: number;
      name: string;
      kind: MetricKind;
      unit: string | undefined;
      description: string | undefined;
      /** A histogram's classic bucket bounds for the Prometheus endpoint, if chosen. */
      buckets?: number[];
    }
) & { ring?: number; seq: number };

/**
 * On the exporter's BroadcastChannel, which the worker and the exporter's host both listen to.
 * Producers in other threads announce their ring with `attach` before any control message; the
 * host keeps what it hears (see `RingDirectory`) for a worker that starts after a crash.
 */
export type ChannelMessage = ControlMessage | { t: 'attach'; ring: number; desc: RingDescriptor };

/**
 * A ring attached from another thread as the host knows it, for a (re)started worker: its
 * descriptor, and its control messages so far (every key announcement, the last metadata of each
 * name), which are `count` messages of the ring's sequence (see `ControlMessage.seq`).
 */
export interface RingRecord {
  readonly ring: number;
  readonly desc: RingDescriptor;
  readonly messages: readonly ControlMessage[];
  readonly count: number;
}

/** The exporter's TLS settings as the worker gets them (checked by the builder). */
export interface ServerTls {
  readonly key: string;
  readonly cert: string;
  readonly ca: readonly string[] | undefined;
  /** Only clients with a certificate signed by `ca` are served. */
  readonly requestCert: boolean;
  readonly handshakeTimeoutMs: number;
}

/** What the worker is started with (`workerData`). */
export interface WorkerInit {
  readonly ctl: SharedArrayBuffer;
  /** Where clients connect; undefined for a capture's worker, which serves no client. */
  readonly listen: ListenAddress | undefined;
  /** Frames each client may have queued; also the ring limit. */
  readonly bufferSize: number;
  readonly maxClients: number;
  /** Most distinct metric names described at once (the `maxKeys` option). */
  readonly maxKeys: number;
  /** Whether each client is sent the in-band drop counter. */
  readonly selfMetrics: boolean;
  /** How long a batch of records may gather before it is sent. */
  readonly flushIntervalMs: number;
  /** How much to lower the worker thread's priority (the `workerNice` option; Linux only). */
  readonly nice: number;
  /** `replayOnConnect`: the exporter's table of totals, and which key has which slot in it. */
  readonly replay: { readonly table: SharedArrayBuffer; readonly slots: readonly (readonly [string, number])[] } | undefined;
  readonly protocol: Protocol;
  readonly ring: RingDescriptor;
  readonly port: MessagePort;
  /** The ring's sent-control count when `port` was made: messages before it went to an older worker. */
  readonly sentBase: number;
  /** Keeps each round's changes to shared memory all or nothing across a crash (see `Journal`). */
  readonly journal: SharedArrayBuffer;
  /** How long `close()`, and a process exit, may spend delivering what is buffered. */
  readonly closeTimeoutMs: number;
  /** TLS on the stream, if the builder asked for it. */
  readonly tls: ServerTls | undefined;
  /** Where to serve the Prometheus endpoint (`GET /metrics`), if the builder asked for it. */
  readonly prometheus: { readonly host: string; readonly port: number } | undefined;
  /** Whether a TCP client that connects is sent the totals first (the table exists for the endpoint too). */
  readonly replayOnConnect: boolean;
  /** Times the host restarted a worker before this one (for the endpoint's figures). */
  readonly restarts: number;
  /** Name of the BroadcastChannel that rings of other threads are announced on. */
  readonly channel: string;
  /** Control messages to apply before anything else (a restart replays the app's registry). */
  readonly restore: ControlMessage[];
  /**
   * For `captureMetrics()`: where the worker answers the asks of the app's thread (see `Ctl.Ask`),
   * which keeps every total and histogram; undefined for an exporter.
   */
  readonly capture: MessagePort | undefined;
}

/** What the app's thread posts with each ask of a capture (see `Ctl.Ask`). */
export interface CaptureAsk {
  /** The ask's number (`Ctl.Ask`). */
  readonly seq: number;
  /** Only this key's series are wanted (its canonical form); all of them if undefined, none if null. */
  readonly key: string | null | undefined;
}

/** A capture worker's answer to an ask. */
export interface CaptureAnswer {
  readonly seq: number;
  /** The series asked for, in no particular order. */
  readonly series: CapturedMetric[];
  /** Records dropped because a ring was full, since the exporter started. */
  readonly ringFull: number;
}

/** What every captured series carries. */
interface CapturedBase {
  readonly name: string;
  /** Label name → value (empty when the key has none). */
  readonly labels: Readonly<Record<string, string>>;
  /** The unit registered for the name, if any. */
  readonly unit?: string;
  /** The description registered for the name, if any. */
  readonly description?: string;
}

/**
 * One series of `captureMetrics()`: a counter's total (a `number` up to 2^53 − 1, a `bigint` beyond,
 * exact to 2^64), a gauge's value, or a histogram's count and sum.
 */
export type CapturedMetric =
  | (CapturedBase & { readonly kind: 'counter'; readonly value: number | bigint })
  | (CapturedBase & { readonly kind: 'gauge'; readonly value: number })
  | (CapturedBase & { readonly kind: 'histogram'; readonly count: number; readonly sum: number });

/** Parent → worker. */
export type ToWorker =
  | { t: 'close'; timeoutMs: number }
  /** The answer to `rings`: every ring attached from other threads that the host knows of. */
  | { t: 'rings'; rings: RingRecord[] };

/** Worker → parent. */
export type FromWorker =
  | { t: 'ready'; address: BoundAddress | undefined; prometheus: BoundAddress | undefined }
  | { t: 'listen-error'; message: string; code: string | undefined; errno: number | undefined; syscall: string | undefined }
  | { t: 'warning'; message: string; code: string }
  /** `replayOnConnect`: the worker gave `canonical` this slot of the replay table (a restart keeps it). */
  | { t: 'slot'; canonical: string; slot: number }
  /** The worker listens on the channel now: it asks for the rings the host knows. */
  | { t: 'rings' }
  /** A ring whose thread is gone has been drained and forgotten: the host can forget it too. */
  | { t: 'released'; ring: number }
  | { t: 'closed' };

import type { BoundAddress } from '../shared/address.js';
import { RingSlot, Stat } from '../shared/layout.js';
import { StatsBlock } from '../shared/stats-block.js';
import type { Connector } from './attach.js';
import { closeOnSignals, closed, flushAtExit } from './process-hooks.js';
import { Recording } from './recording.js';
import type { Registry } from './registry.js';
import type { RingWriter } from './ring-writer.js';
import type { WorkerHost } from './worker-host.js';

// The host of each recorder, for tests (they end its worker abruptly, as a crash would). Not
// reachable from the package: only index.ts is exported, and this is not re-exported there.
const hosts = new WeakMap<TcpRecorder, WorkerHost>();

/** Signals `closeOnSignals()` handles by default: what `kill` and Ctrl-C send. */
const DEFAULT_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/** @internal The worker host behind a recorder. */
export function hostOf(recorder: TcpRecorder): WorkerHost {
  return hosts.get(recorder)!;
}

/** Counters of what the exporter did; all plain numbers. */
export interface ExporterStats {
  /** Records accepted into a ring (only records made while a client is connected are). */
  recorded: number;
  dropped: {
    /** Records refused because a ring was full. */
    ringFull: number;
    /** Frames a client lost because its queue was full (counted once per client), or because close() ran out of time. */
    clientQueue: number;
    /** Records with an invalid value (or a key refused by `maxKeys`). */
    invalid: number;
    /**
     * Metadata frames a client did not get: it was more than 4 MiB behind when they were sent,
     * or close() ran out of time. Counted once per client. Not records.
     */
    metadata: number;
  };
  /** Clients connected now. */
  clients: number;
  /**
   * Connections closed at once because `maxClients` were connected; with TLS, also those whose
   * handshake failed or timed out (never clients: they got nothing and held no slot).
   */
  rejectedClients: number;
  /** Frames written to clients whole, summed over clients: metadata, metrics, and the in-band self metrics (loss reports, fill levels). */
  framesSent: number;
  /** Bytes written to clients, summed over clients. */
  bytesSent: number;
  /** Times the transport worker died and was restarted. */
  workerRestarts: number;
  /** Rings of other threads (see `connector()`) currently attached. */
  attachedThreads: number;
  /** Distinct keys (name + labels) the exporter's worker holds now, over all threads. */
  keys: number;
  /**
   * Times the worker woke up to work (flush intervals, full rings, registrations). With no
   * client, or with a client and no records, it does not grow: the worker sleeps.
   */
  wakeups: number;
}

/** The recorder `TcpBuilder.build()` returns: the recording API plus lifecycle and stats. */
export class TcpRecorder extends Recording {
  private readonly block: StatsBlock;
  private closed: Promise<void> | undefined;

  /** @internal */
  constructor(
    writer: RingWriter,
    registry: Registry,
    private readonly ringHeader: Int32Array,
    private readonly host: WorkerHost,
    private readonly closeTimeoutMs: number,
    private readonly connectorData: Connector,
  ) {
    super(writer, registry);
    this.block = new StatsBlock(connectorData.ctl);
    hosts.set(this, host);
    flushAtExit(this, () => {
      this.writer.publish();
      return this.host.flushAtExit(this.closeTimeoutMs);
    });
  }

  /**
   * Closes the recorder when the process receives one of `signals`, then ends the process as the
   * signal would have (so its exit status still says which signal it was), unless the app has
   * listeners of its own for that signal: ending the process is then theirs to do. Node's default
   * action for SIGTERM and SIGINT ends the process at once, running no 'exit' listener: what was
   * recorded since the last batch was sent is lost without this (or a handler that awaits
   * `close()`). Every recorder that asked for the signal is closed before the process ends. A
   * second signal while closing acts as if this had not been called.
   * @returns a function that removes the listeners
   * @throws TypeError if `signals` is not an array of signal names
   */
  closeOnSignals(signals: readonly NodeJS.Signals[] = DEFAULT_SIGNALS): () => void {
    if (!Array.isArray(signals) || !signals.every((s) => typeof s === 'string' && /^SIG[A-Z0-9]+$/.test(s))) {
      throw new TypeError(`closeOnSignals() takes an array of signal names such as ['SIGTERM'], got ${String(signals)}`);
    }
    return closeOnSignals(this, () => this.close(), signals);
  }

  /**
   * A handle for other threads: pass it in `workerData` or a `postMessage` (no transfer list
   * needed) and call `attach(handle)` there to record into this exporter from that thread.
   */
  connector(): Connector {
    return this.connectorData;
  }

  protected override runtimeScope(): 'process' | 'thread' {
    return 'process';
  }

  /** What was bound: `{ host, port }` (the real port when 0 was asked) or `{ path }`. */
  get address(): BoundAddress {
    return this.host.address!; // undefined only for a capture's recorder, which does not show it
  }

  /** Where the Prometheus endpoint listens (`prometheus()`): `{ host, port }`, the real port when 0 was asked; undefined without one. */
  get prometheusAddress(): { host: string; port: number } | undefined {
    return this.host.prometheusAddress as { host: string; port: number } | undefined;
  }

  /**
   * Live counters, one consistent snapshot of what the worker published. Records still in this
   * thread's ring count as recorded; the worker publishes its own figures after every batch,
   * so they may trail by one batch. After `close()` they are final.
   */
  stats(): ExporterStats {
    const figures = this.block.read();
    const s = (i: Stat): number => figures[i]!;
    const inRing =
      ((Atomics.load(this.ringHeader, RingSlot.Tail) - Atomics.load(this.ringHeader, RingSlot.Head)) | 0) +
      this.writer.unpublished();
    // After close: records threads wrote too late for the worker (one that read "a client is
    // connected" just before it closed, then lost the processor) are recorded and lost by every
    // client that was connected then.
    const late = this.host.late();
    const lateRecords = late === undefined ? 0 : inRing + late.records;
    return {
      recorded: s(Stat.Recorded) + inRing + (late?.records ?? 0),
      dropped: {
        ringFull: s(Stat.RingFull) + (late?.drops ?? 0),
        clientQueue: s(Stat.ClientQueue) + lateRecords * s(Stat.ClientsAtClose),
        invalid: s(Stat.Invalid),
        metadata: s(Stat.MetadataDropped),
      },
      clients: s(Stat.Clients),
      rejectedClients: s(Stat.RejectedClients),
      framesSent: s(Stat.FramesSent),
      bytesSent: s(Stat.BytesSent),
      workerRestarts: this.host.restarts,
      attachedThreads: s(Stat.AttachedThreads),
      keys: s(Stat.Keys),
      wakeups: s(Stat.Wakeups),
    };
  }

  /**
   * Stops accepting clients, sends what the rings hold, flushes clients for up to
   * `closeTimeoutMs` (what is not delivered by then is counted in `dropped`), closes every
   * socket and the listener, and resolves once the worker has exited. Safe to call twice.
   */
  close(): Promise<void> {
    if (this.closed === undefined) {
      for (const c of this.collectors) c.stop();
      this.writer.publish();
      this.closed = this.host.close(this.closeTimeoutMs).then(() => {
        closed(this);
        forgetGlobal(this);
      });
    }
    return this.closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

let globalRecorder: TcpRecorder | undefined;
/** The global recorder is a capture's (`captureMetrics()`). */
let globalCapture = false;

/** @internal The global recorder, if one is installed. */
export function getGlobal(): TcpRecorder | undefined {
  return globalRecorder;
}

/** @internal Whether the global recorder is a capture's (`captureMetrics()`). */
export function capturing(): boolean {
  return globalCapture;
}

/** @internal Makes `r` the global recorder (a capture's, with `capture`); false if one is installed already. */
export function setGlobal(r: TcpRecorder, capture = false): boolean {
  if (globalRecorder !== undefined) return false;
  globalRecorder = r;
  globalCapture = capture;
  return true;
}

function forgetGlobal(r: TcpRecorder): void {
  if (globalRecorder !== r) return;
  globalRecorder = undefined;
  globalCapture = false;
}

import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { formatAddress, type BoundAddress, type ListenAddress } from '../shared/address.js';
import { Ctl, RingSlot, ringViews, untaken } from '../shared/layout.js';
import type { ControlMessage, FromWorker, ToWorker, WorkerInit } from '../shared/messages.js';
import { ExporterError } from '../errors.js';
import { RingDirectory } from './ring-directory.js';

/**
 * The worker's young generation is capped at 2 MB (V8 lets it grow to 16 MB and more): the
 * worker allocates little once it runs (slabs are reused), and the cap keeps 2 to 4 MB of
 * memory off every app, with no measurable cost to its CPU (`npm run bench -- memory cpu`).
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 2 };
/** How much longer than `closeTimeoutMs` the app's thread waits at exit for a worker that does not answer. */
const EXIT_MARGIN_MS = 200;

const WORKER_URL = new URL('../worker/main.js', import.meta.url);

/**
 * Everything the host needs to (re)start the transport worker: the parts of its `WorkerInit`
 * that never change, and a way to get the rest.
 */
export interface HostOptions
  extends Pick<
    WorkerInit,
    | 'ctl'
    | 'listen'
    | 'bufferSize'
    | 'maxClients'
    | 'maxKeys'
    | 'selfMetrics'
    | 'flushIntervalMs'
    | 'nice'
    | 'protocol'
    | 'ring'
    | 'channel'
    | 'journal'
    | 'closeTimeoutMs'
    | 'tls'
    | 'replayOnConnect'
  > {
  /** Where to serve the Prometheus endpoint, if asked (port 0: a free one, kept across restarts). */
  readonly prometheus: { readonly host: string; readonly port: number } | undefined;
  /** `replayOnConnect`: the table of totals (shared with every worker this host starts). */
  readonly replayTable: SharedArrayBuffer | undefined;
  /** Called when a (re)started worker needs a new control port and the registry's state. */
  readonly rebind: (port: MessagePort) => ControlMessage[];
  /** For `captureMetrics()`: the worker answers the app's asks (see `Ctl.Ask`) and listens for no client. */
  readonly capture: boolean;
}

/**
 * Owns the transport worker: starts it, waits until it listens, restarts it if it dies, and
 * stops it. The worker is unref'd, so it never keeps the app's process alive.
 */
export class WorkerHost {
  /** What the listener bound; undefined for a capture's worker, which has none. */
  address: BoundAddress | undefined;
  /** A capture's end of the port its worker answers on (a new one with each worker), read with `receiveMessageOnPort`. */
  answers: MessagePort | undefined;
  /** The Prometheus endpoint's address, if it serves one. */
  prometheusAddress: BoundAddress | undefined;
  restarts = 0;
  private worker!: Worker;
  private exited = false;
  /** The running worker has said it listens. */
  private ready = false;
  /** The rings of other threads, for a worker that starts after a crash. */
  private readonly directory: RingDirectory;
  private startedAt = Date.now();
  private backoffMs = 0;
  private closing: Promise<void> | undefined;
  /** `replayOnConnect`: the slot of each key in the replay table, as the worker said (a restart keeps them). */
  private readonly slots = new Map<string, number>();

  private constructor(private readonly opts: HostOptions) {
    this.directory = new RingDirectory(opts.channel);
  }

  /** Starts the worker and resolves once it listens; rejects with `ExporterError` code `IO`. */
  static async start(opts: HostOptions): Promise<WorkerHost> {
    const host = new WorkerHost(opts);
    host.address = await host.spawn(opts.listen);
    return host;
  }

  private spawn(listen: ListenAddress | undefined): Promise<BoundAddress | undefined> {
    const { port1, port2 } = new MessageChannel();
    let capture: MessagePort | undefined;
    if (this.opts.capture) {
      const answers = new MessageChannel();
      this.answers?.close();
      this.answers = answers.port1;
      capture = answers.port2;
    }
    const restore = this.opts.rebind(port1);
    const sentBase = Atomics.load(ringViews(this.opts.ring.sab).header, RingSlot.ControlSent);
    const { ctl, bufferSize, maxClients, maxKeys, selfMetrics, flushIntervalMs, nice, protocol, ring, channel, replayTable, journal, closeTimeoutMs, tls, replayOnConnect } = this.opts;
    // A restarted worker serves the endpoint where the first one did (its port, if 0 was asked).
    const bound = this.prometheusAddress as { host: string; port: number } | undefined;
    const prometheus = bound ?? this.opts.prometheus;
    const replay = replayTable === undefined ? undefined : { table: replayTable, slots: [...this.slots] };
    const init: WorkerInit = {
      ...{ ctl, listen, bufferSize, maxClients, maxKeys, selfMetrics, flushIntervalMs, nice, protocol, ring, channel, journal, closeTimeoutMs, tls },
      ...{ prometheus, replayOnConnect, restarts: this.restarts },
      ...{ port: port2, sentBase, restore, replay, capture },
    };
    const transferList = capture === undefined ? [port2] : [port2, capture];
    const worker = new Worker(WORKER_URL, { name: 'metrics-exporter-tcp', workerData: init, transferList, resourceLimits: WORKER_LIMITS });
    this.worker = worker;
    this.exited = false;
    this.ready = false;
    return new Promise<BoundAddress | undefined>((resolve, reject) => {
      let ready = false;
      worker.on('message', (msg: FromWorker) => {
        if (msg?.t === 'rings') {
          const reply: ToWorker = { t: 'rings', rings: this.directory.snapshot() };
          worker.postMessage(reply);
        } else if (msg?.t === 'released') {
          this.directory.release(msg.ring);
        } else if (msg?.t === 'ready') {
          ready = this.ready = true;
          this.prometheusAddress = msg.prometheus;
          // Held while starting (the app awaits it); from now on it never keeps the process
          // alive, unless close() is waiting for it.
          if (this.closing === undefined) worker.unref();
          resolve(msg.address);
        } else if (msg?.t === 'listen-error') {
          const cause = Object.assign(new Error(msg.message), { code: msg.code, errno: msg.errno, syscall: msg.syscall });
          reject(new ExporterError('IO', `cannot listen on ${formatAddress(listen!)}: ${msg.message}`, { cause })); // a capture's worker never listens
        } else if (msg?.t === 'warning') {
          process.emitWarning(msg.message, { code: msg.code });
        } else if (msg?.t === 'slot') {
          this.slots.set(msg.canonical, msg.slot);
        }
      });
      // An 'error' event with no listener would be thrown into the app: always listen.
      worker.on('error', (err) => {
        if (!ready) reject(new ExporterError('IO', `transport worker failed to start: ${err.message}`, { cause: err }));
      });
      worker.on('exit', () => {
        if (this.worker !== worker) return;
        this.exited = true;
        if (!ready) reject(new ExporterError('IO', 'the transport worker exited while starting'));
        else if (this.closing === undefined) this.restart();
      });
    });
  }

  /**
   * The worker died on its own: nothing is thrown into the app. Recording pauses (no clients
   * are connected any more), a new worker binds the same address and gets the registry's
   * keys and metadata, and clients can reconnect.
   */
  private restart(): void {
    Atomics.store(new Int32Array(this.opts.ctl), Ctl.Clients, 0);
    this.restarts++;
    process.emitWarning(`metrics-exporter-tcp: the transport worker exited unexpectedly; restarting it`, {
      code: 'MTCP_WORKER_RESTART',
    });
    this.respawn();
  }

  /** Starts a new worker after the back-off; tries again (later) if it cannot start. */
  private respawn(): void {
    // A worker that ran a while starts the back-off afresh; one that keeps dying waits longer.
    this.backoffMs = Date.now() - this.startedAt > 10_000 ? 0 : Math.min(5000, Math.max(50, this.backoffMs * 2));
    const timer = setTimeout(() => {
      if (this.closing !== undefined) return;
      this.startedAt = Date.now();
      this.spawn(this.address).catch((err: unknown) => {
        process.emitWarning(`metrics-exporter-tcp: could not restart the transport worker: ${String(err)}`, {
          code: 'MTCP_WORKER_RESTART',
        });
        if (this.closing === undefined) this.respawn();
      });
    }, this.backoffMs);
    timer.unref();
  }

  /** @internal The running worker thread (tests end it abruptly, as a crash would). */
  get thread(): Worker {
    return this.worker;
  }

  /**
   * Once closed: what threads recorded too late for the worker (after its last look at the rings),
   * over every ring it was reading (the recorder's own: ring-full drops only, its records are
   * counted by the recorder). Undefined before.
   */
  late(): { records: number; drops: number } | undefined {
    if (this.closing === undefined || !this.exited) return undefined;
    const late = { records: 0, drops: untaken(this.opts.ring).drops };
    for (const desc of this.directory.rings()) {
      const u = untaken(desc);
      late.records += u.records;
      late.drops += u.drops;
    }
    return late;
  }

  /** @internal Whether the worker is serving (it has started listening and not exited). */
  get serving(): boolean {
    return this.ready && !this.exited;
  }

  /**
   * The app's process is exiting without `close()` (its thread runs only synchronous code now):
   * asks the worker to deliver what was recorded to the connected clients, as `close()` would.
   * Returns how to wait for it, blocking this thread, at most `timeoutMs` from now and a little
   * more; undefined when there is nothing to wait for (no client connected: nothing was recorded
   * for anyone; or the worker is not running). A `close()` under way is waited for the same way.
   */
  flushAtExit(timeoutMs: number): (() => void) | undefined {
    if (this.exited || !this.ready) return undefined;
    const ctl = new Int32Array(this.opts.ctl);
    if (this.closing === undefined) {
      if (Atomics.load(ctl, Ctl.Clients) === 0) return undefined;
      Atomics.store(ctl, Ctl.Exit, 1);
      Atomics.add(ctl, Ctl.Doorbell, 1);
      Atomics.notify(ctl, Ctl.Doorbell);
    }
    const end = Date.now() + timeoutMs + EXIT_MARGIN_MS;
    return () => {
      for (let left = end - Date.now(); Atomics.load(ctl, Ctl.Flushed) === 0 && left > 0; left = end - Date.now()) {
        Atomics.wait(ctl, Ctl.Flushed, 0, left);
      }
    };
  }

  /** Asks the worker to drain and flush within `timeoutMs`, then waits for it to exit. */
  close(timeoutMs: number): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const worker = this.worker;
      if (this.exited) {
        this.directory.close();
        this.answers?.close();
        return resolve();
      }
      // The app awaits this: keep the process alive until the worker is gone.
      worker.ref();
      // If the worker cannot finish (it is stuck), do not wait forever.
      const guard = setTimeout(() => void worker.terminate(), timeoutMs + 2000);
      guard.unref();
      worker.once('exit', () => {
        clearTimeout(guard);
        this.directory.close();
        this.answers?.close();
        resolve();
      });
      const msg: ToWorker = { t: 'close', timeoutMs };
      worker.postMessage(msg);
    });
    return this.closing;
  }
}

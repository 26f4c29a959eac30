// Spreads the relay's exporters over reader threads (worker threads: the main thread reads
// none, so HTTP and OTLP never hold up reading), up to a limit and never more threads than
// exporters, and collects what changed on each into the main thread's mirror.
import { Worker } from 'node:worker_threads';
import { SeriesBudget } from './budget.js';
import type { RelayMirror } from './mirror.js';
import type { ReaderChanges, ReaderSettings } from './reader.js';

/** What the main thread tells a reader thread. */
export type ToReader = { op: 'add'; address: string; owners?: readonly number[] } | { op: 'remove'; address: string } | { op: 'changes'; id: number } | { op: 'stop' };
/** What a reader thread tells the main thread. */
export type FromReader = { op: 'log'; line: string } | { op: 'changes'; id: number; changes: ReaderChanges } | { op: 'stopped' };

/** A reader in a worker thread; if the thread dies, its series budget is given back and a new one takes its exporters over. */
class ThreadReader {
  /** Exporters it reads now, with the owners their socket may have (for sockets a glob found). */
  readonly addresses = new Map<string, readonly number[] | undefined>();
  private worker!: Worker;
  private readonly pending = new Map<number, (c: ReaderChanges | undefined) => void>();
  private nextId = 0;
  private stopping: Promise<void> | undefined;
  private stopped: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly settings: ReaderSettings,
    readonly slot: number,
    private readonly mirror: RelayMirror,
    private readonly log: (line: string) => void,
  ) {
    this.start();
  }

  private start(): void {
    const worker = new Worker(new URL('./reader-thread.js', import.meta.url), { workerData: { settings: this.settings, slot: this.slot } });
    this.worker = worker;
    worker.on('message', (m: FromReader) => {
      if (m.op === 'log') this.log(m.line);
      else if (m.op === 'changes') this.settle(m.id, m.changes);
      else this.stopped?.();
    });
    worker.on('error', (err) => this.log(`relay: a reader thread failed: ${err.stack ?? err.message}`));
    worker.on('exit', (code) => {
      for (const id of [...this.pending.keys()]) this.settle(id, undefined);
      this.stopped?.();
      if (this.stopping !== undefined) return;
      this.log(`relay: a reader thread exited (code ${code}); a new one reads its ${this.addresses.size} exporter(s)`);
      this.mirror.dropThread(this.slot);
      new SeriesBudget(this.settings.maxSeries, 0, this.settings.budget, 0, this.settings.maxBytes).release(this.slot);
      this.start();
      for (const [address, owners] of this.addresses) this.worker.postMessage({ op: 'add', address, owners } satisfies ToReader);
    });
  }

  private settle(id: number, c: ReaderChanges | undefined): void {
    this.pending.get(id)?.(c);
    this.pending.delete(id);
  }

  add(address: string, owners: readonly number[] | undefined): void {
    this.addresses.set(address, owners);
    this.worker.postMessage({ op: 'add', address, owners } satisfies ToReader);
  }

  remove(address: string): void {
    this.addresses.delete(address);
    this.worker.postMessage({ op: 'remove', address } satisfies ToReader);
  }

  /** What changed since the last call; `undefined` once the thread is gone. */
  changes(): Promise<ReaderChanges | undefined> {
    if (this.closing !== undefined) return Promise.resolve(undefined);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.worker.postMessage({ op: 'changes', id } satisfies ToReader);
    });
  }

  /** Stops reading; what it read stays in the mirror. */
  stop(): Promise<void> {
    this.stopping ??= new Promise((resolve) => {
      this.stopped = resolve;
      this.worker.postMessage({ op: 'stop' } satisfies ToReader);
    });
    return this.stopping;
  }

  /** Stops reading, and ends the thread. */
  close(): Promise<void> {
    this.closing ??= this.stop().then(() => this.worker.terminate().then(() => {}));
    return this.closing;
  }
}

/**
 * The relay's reader threads (at most `maxThreads`, which the {@link SeriesBudget} in `settings`
 * has slots for). An exporter stays with the thread that first read it (so a socket path that
 * goes and comes back is never read twice); a new one goes to a new thread while there are fewer
 * than `maxThreads` and every thread has an exporter, else to the least loaded.
 */
export class ReaderPool {
  private readonly readers: ThreadReader[] = [];
  private readonly owner = new Map<string, ThreadReader>();
  private collecting: Promise<void> | undefined;

  constructor(
    private readonly settings: ReaderSettings,
    private readonly maxThreads: number,
    private readonly mirror: RelayMirror,
    private readonly log: (line: string) => void,
  ) {}

  /** Threads reading exporters now. */
  get threads(): number {
    return this.readers.length;
  }

  /** Starts reading `address`; `owners`: for a socket a glob found, the uids it may belong to (checked before each connection). */
  add(address: string, owners?: readonly number[]): void {
    if (this.owner.get(address)?.addresses.has(address)) return;
    let r = this.owner.get(address);
    if (r === undefined) {
      if (this.readers.length < this.maxThreads && this.readers.every((x) => x.addresses.size > 0)) {
        r = new ThreadReader(this.settings, this.readers.length, this.mirror, this.log);
        this.readers.push(r);
      } else {
        r = this.readers.reduce((a, b) => (b.addresses.size < a.addresses.size ? b : a));
      }
      this.owner.set(address, r);
    }
    r.add(address, owners);
  }

  remove(address: string): void {
    const r = this.owner.get(address);
    if (r?.addresses.has(address)) r.remove(address);
  }

  /**
   * Brings the mirror up to date with every thread. Calls while one is under way share it (a
   * burst of scrapes costs the threads one message each).
   */
  collect(): Promise<void> {
    this.collecting ??= Promise.all(this.readers.map(async (r) => [r.slot, await r.changes()] as const)).then((all) => {
      this.collecting = undefined;
      for (const [slot, c] of all) if (c !== undefined) this.mirror.apply(slot, c);
    });
    return this.collecting;
  }

  /** Stops reading every exporter; the mirror keeps what was read. */
  async stop(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.stop()));
  }

  /** Stops reading, and ends the threads. */
  async close(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.close()));
  }
}

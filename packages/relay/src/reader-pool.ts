// Spreads the relay's exporters over threads: the main thread reads the first ones, worker
// threads the others, up to a limit and never more threads than exporters. Snapshots of every
// thread are merged into one.
import { Worker } from 'node:worker_threads';
import { SeriesBudget } from './budget.js';
import { Reader, type ReaderSettings, type ReaderSnapshot } from './reader.js';

/** What the main thread tells a reader thread. */
export type ToReader = { op: 'add' | 'remove'; address: string } | { op: 'snapshot'; id: number } | { op: 'stop' };
/** What a reader thread tells the main thread. */
type FromReader = { op: 'log'; line: string } | { op: 'snapshot'; id: number; snapshot: ReaderSnapshot } | { op: 'stopped' };

/** A reader on some thread. */
interface ReaderHandle {
  add(address: string): void;
  remove(address: string): void;
  snapshot(): Promise<ReaderSnapshot>;
  /** Stops reading; snapshots still answer, with what was read. */
  stop(): Promise<void>;
  /** Ends the thread. */
  close(): Promise<void>;
}

const EMPTY: ReaderSnapshot = { exporters: [], decodeErrors: 0, refused: 0 };

/** A reader in a worker thread; if the thread dies, its series budget is given back and a new one takes its exporters over. */
class ThreadReader implements ReaderHandle {
  private worker!: Worker;
  private readonly addresses = new Set<string>();
  private readonly pending = new Map<number, (s: ReaderSnapshot) => void>();
  private nextId = 0;
  private stopping: Promise<void> | undefined;
  private stopped: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly settings: ReaderSettings,
    private readonly slot: number,
    private readonly log: (line: string) => void,
  ) {
    this.start();
  }

  private start(): void {
    const worker = new Worker(new URL('./reader-thread.js', import.meta.url), { workerData: { settings: this.settings, slot: this.slot } });
    this.worker = worker;
    worker.on('message', (m: FromReader) => {
      if (m.op === 'log') this.log(m.line);
      else if (m.op === 'snapshot') this.settle(m.id, m.snapshot);
      else this.stopped?.();
    });
    worker.on('error', (err) => this.log(`relay: a reader thread failed: ${err.stack ?? err.message}`));
    worker.on('exit', (code) => {
      for (const id of [...this.pending.keys()]) this.settle(id, EMPTY);
      this.stopped?.();
      if (this.stopping !== undefined) return;
      this.log(`relay: a reader thread exited (code ${code}); a new one reads its ${this.addresses.size} exporter(s)`);
      new SeriesBudget(this.settings.maxSeries, 0, this.settings.budget).release(this.slot);
      this.start();
      for (const a of this.addresses) this.worker.postMessage({ op: 'add', address: a } satisfies ToReader);
    });
  }

  private settle(id: number, s: ReaderSnapshot): void {
    this.pending.get(id)?.(s);
    this.pending.delete(id);
  }

  add(address: string): void {
    this.addresses.add(address);
    this.worker.postMessage({ op: 'add', address } satisfies ToReader);
  }

  remove(address: string): void {
    this.addresses.delete(address);
    this.worker.postMessage({ op: 'remove', address } satisfies ToReader);
  }

  snapshot(): Promise<ReaderSnapshot> {
    if (this.closing !== undefined) return Promise.resolve(EMPTY);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.worker.postMessage({ op: 'snapshot', id } satisfies ToReader);
    });
  }

  stop(): Promise<void> {
    this.stopping ??= new Promise((resolve) => {
      this.stopped = resolve;
      this.worker.postMessage({ op: 'stop' } satisfies ToReader);
    });
    return this.stopping;
  }

  close(): Promise<void> {
    this.closing ??= this.stop().then(() => this.worker.terminate().then(() => {}));
    return this.closing;
  }
}

/** The main thread's own reader. */
class LocalReader implements ReaderHandle {
  private readonly reader: Reader;
  constructor(settings: ReaderSettings, log: (line: string) => void) {
    this.reader = new Reader(settings, 0, log);
  }
  add(address: string): void {
    this.reader.add(address);
  }
  remove(address: string): void {
    void this.reader.remove(address);
  }
  async snapshot(): Promise<ReaderSnapshot> {
    return this.reader.snapshot();
  }
  stop(): Promise<void> {
    return this.reader.close();
  }
  close(): Promise<void> {
    return this.reader.close();
  }
}

/** Merges the snapshots of several readers. */
export function mergeSnapshots(parts: readonly ReaderSnapshot[]): ReaderSnapshot {
  return {
    exporters: parts.flatMap((p) => p.exporters),
    decodeErrors: parts.reduce((n, p) => n + p.decodeErrors, 0),
    refused: parts.reduce((n, p) => n + p.refused, 0),
  };
}

/**
 * The relay's readers (at most `maxThreads`, which the {@link SeriesBudget} in `settings` has
 * slots for). An exporter stays with the thread that first read it (so a socket path
 * that goes and comes back is never read twice); a new one goes to a new thread while there
 * are fewer than `maxThreads` and every thread has an exporter, else to the least loaded.
 */
export class ReaderPool {
  private readonly readers: { handle: ReaderHandle; active: number }[] = [];
  private readonly owner = new Map<string, { handle: ReaderHandle; active: number }>();
  private readonly active = new Set<string>();

  constructor(
    private readonly settings: ReaderSettings,
    private readonly maxThreads: number,
    private readonly log: (line: string) => void,
  ) {}

  /** Threads reading exporters now. */
  get threads(): number {
    return this.readers.length;
  }

  add(address: string): void {
    if (this.active.has(address)) return;
    let r = this.owner.get(address);
    if (r === undefined) {
      if (this.readers.length < this.maxThreads && this.readers.every((x) => x.active > 0)) {
        const slot = this.readers.length;
        const handle = slot === 0 ? new LocalReader(this.settings, this.log) : new ThreadReader(this.settings, slot, this.log);
        r = { handle, active: 0 };
        this.readers.push(r);
      } else {
        r = this.readers.reduce((a, b) => (b.active < a.active ? b : a));
      }
      this.owner.set(address, r);
    }
    this.active.add(address);
    r.active++;
    r.handle.add(address);
  }

  remove(address: string): void {
    const r = this.owner.get(address);
    if (r === undefined || !this.active.delete(address)) return;
    r.active--;
    r.handle.remove(address);
  }

  async snapshot(): Promise<ReaderSnapshot> {
    return mergeSnapshots(await Promise.all(this.readers.map((r) => r.handle.snapshot())));
  }

  /** Stops reading every exporter; snapshots still answer, with what was read. */
  async stop(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.handle.stop()));
  }

  /** Stops reading, and ends the threads. */
  async close(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.handle.close()));
  }
}

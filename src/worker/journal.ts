import { JOURNAL_ENTRY, JOURNAL_HEADER_BYTES } from '../shared/layout.js';

/** What a journal entry changes (the first of its doubles). */
export const enum Entry {
  /** A ring's head and the ring-full drops taken: ring id, head, drops taken. */
  Head = 1,
  /** A replay slot: slot, counter low word, counter high word, gauge, kinds. */
  Slot,
  /** What was folded of a key's state: ring id, key id, counter, gauge sets, gauge delta. */
  Fold,
  /** The figures that follow the rings: recorded, ring full, invalid. */
  Figures,
}

/** Where a journal's entries are written. */
export interface JournalTargets {
  head(ring: number, head: number, fullTaken: number): void;
  slot(slot: number, lo: number, hi: number, gauge: number, kinds: number): void;
  fold(ring: number, id: number, counter: number, sets: number, delta: number): void;
}

/** The figures a journal has committed: where a restarted worker counts from. */
export interface CommittedFigures {
  recorded: number;
  ringFull: number;
  invalid: number;
}

/** Int32 slots of the header: 1 while a commit is being applied, and its entry count. */
const STATE = 0;
const COUNT = 1;
/** Double slots of the header: the committed figures. */
const RECORDED = 1;
const RING_FULL = 2;
const INVALID = 3;

/**
 * Makes each commit's changes to shared memory all or nothing across a crash of the worker.
 *
 * A round changes memory that outlives the worker: ring heads (which hand slots back to the
 * producers), the ring-full drops taken, `replayOnConnect`'s totals and what it folded of each
 * thread's state, and the `recorded`, `ringFull` and `invalid` figures. A worker that died
 * between two of those writes left a restarted one to read some records again, counting them
 * twice in the totals, or to have lost their figures. So a round keeps its changes to itself and
 * commits them, ring by ring: it writes each as an absolute value into the journal, marks the
 * journal full (the commit point), writes them to their places, and marks it empty. A worker
 * that starts and finds it full writes them again (absolute values: twice is once); one that
 * finds it empty has only the records of an unfinished round to read again, which nothing
 * shared counts yet.
 */
export class Journal {
  private readonly i32: Int32Array;
  private readonly header: Float64Array;
  private readonly entries: Float64Array;
  private n = 0;

  constructor(
    sab: SharedArrayBuffer,
    private readonly targets: JournalTargets,
  ) {
    this.i32 = new Int32Array(sab, 0, 2);
    this.header = new Float64Array(sab, 0, JOURNAL_HEADER_BYTES / 8);
    this.entries = new Float64Array(sab, JOURNAL_HEADER_BYTES);
  }

  /** The figures as last committed. */
  committed(): CommittedFigures {
    const h = this.header;
    return { recorded: h[RECORDED]!, ringFull: h[RING_FULL]!, invalid: h[INVALID]! };
  }

  /** Adds an entry to the next commit. */
  put(kind: Entry, a: number, b: number, c: number, d = 0, e = 0): void {
    const at = this.n * JOURNAL_ENTRY;
    // The pipeline's budgets bound a commit (see `journalBytes`): overflowing is a bug.
    if (at + JOURNAL_ENTRY > this.entries.length) throw new RangeError(`metrics-exporter-tcp: journal overflow (${this.n} entries)`);
    const x = this.entries;
    x[at] = kind;
    x[at + 1] = a;
    x[at + 2] = b;
    x[at + 3] = c;
    x[at + 4] = d;
    x[at + 5] = e;
    this.n++;
  }

  /** Commits the entries put since the last commit: from here on, a restarted worker applies them. */
  commit(): void {
    if (this.n === 0) return;
    Atomics.store(this.i32, COUNT, this.n);
    Atomics.store(this.i32, STATE, 1); // the commit point (the store orders the entries before it)
    this.apply(this.n);
    Atomics.store(this.i32, STATE, 0);
    this.n = 0;
  }

  /** At a worker's start: applies a commit its predecessor died in the middle of. @returns whether there was one */
  recover(): boolean {
    if (Atomics.load(this.i32, STATE) !== 1) return false;
    this.apply(Atomics.load(this.i32, COUNT));
    Atomics.store(this.i32, STATE, 0);
    return true;
  }

  private apply(n: number): void {
    const x = this.entries;
    const t = this.targets;
    for (let i = 0, at = 0; i < n; i++, at += JOURNAL_ENTRY) {
      switch (x[at]) {
        case Entry.Head:
          t.head(x[at + 1]!, x[at + 2]!, x[at + 3]!);
          break;
        case Entry.Slot:
          t.slot(x[at + 1]!, x[at + 2]!, x[at + 3]!, x[at + 4]!, x[at + 5]!);
          break;
        case Entry.Fold:
          t.fold(x[at + 1]!, x[at + 2]!, x[at + 3]!, x[at + 4]!, x[at + 5]!);
          break;
        case Entry.Figures:
          this.header[RECORDED] = x[at + 1]!;
          this.header[RING_FULL] = x[at + 2]!;
          this.header[INVALID] = x[at + 3]!;
          break;
      }
    }
  }
}

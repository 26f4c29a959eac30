import { Ctl, STAT_COUNT } from './layout.js';

const WORD = 2 ** 32;

/**
 * The figures the worker publishes for `stats()`, in the control block. The worker is the only
 * writer: it makes the sequence number odd, stores each figure as two Int32 words (figures stay
 * below 2^53), and makes it even again, all with Atomics and without allocating (BigInt64
 * stores would allocate a BigInt per figure). A reader retries until it has read the same even
 * sequence number before and after the figures, so it always gets one consistent snapshot:
 * figures that were published together are read together.
 */
export class StatsBlock {
  private readonly words: Int32Array;

  constructor(ctl: SharedArrayBuffer) {
    this.words = new Int32Array(ctl, Ctl.Stats * 4, 1 + 2 * STAT_COUNT);
  }

  /** Writer: stores every figure of `values` (indexed by `Stat`) as one snapshot. */
  write(values: Float64Array): void {
    const w = this.words;
    // Odd while writing (also if a worker that died mid-write left it odd).
    const odd = Atomics.load(w, 0) | 1;
    Atomics.store(w, 0, odd);
    for (let i = 0; i < STAT_COUNT; i++) {
      const v = values[i]!;
      Atomics.store(w, 1 + 2 * i, v % WORD | 0);
      Atomics.store(w, 2 + 2 * i, Math.floor(v / WORD));
    }
    Atomics.store(w, 0, odd + 1);
  }

  /**
   * Reader: one consistent snapshot, indexed by `Stat`. A write takes a microsecond; if
   * the sequence stays odd (a worker died mid-write) it gives up after a while and returns the
   * figures as they are.
   */
  read(): number[] {
    const w = this.words;
    const out = new Array<number>(STAT_COUNT);
    for (let tries = 0; ; tries++) {
      const before = Atomics.load(w, 0);
      for (let i = 0; i < STAT_COUNT; i++) out[i] = (Atomics.load(w, 1 + 2 * i) >>> 0) + Atomics.load(w, 2 + 2 * i) * WORD;
      if (((before & 1) === 0 && Atomics.load(w, 0) === before) || tries === 100_000) return out;
    }
  }
}

// The relay's cap on series, shared by its threads through a SharedArrayBuffer.

const SLOTS = { series: 0, metadata: 1 } as const;

/**
 * How many series, and how many metric names with metadata, the relay still takes, over all
 * of its threads: each thread makes one from the same shared memory (`from(shared)`), and
 * takes or gives back with atomic adds, so the cap holds exactly across threads.
 */
export class SeriesBudget {
  private readonly used: Int32Array;

  /**
   * @param max the most of each kind, over all threads.
   * @param shared what {@link SeriesBudget.shared} returned on another thread; a new budget
   *   when absent.
   */
  constructor(
    readonly max: number,
    shared?: SharedArrayBuffer,
  ) {
    this.used = new Int32Array(shared ?? new SharedArrayBuffer(8));
  }

  /** The memory to hand another thread. */
  get shared(): SharedArrayBuffer {
    return this.used.buffer as SharedArrayBuffer;
  }

  /** Takes one of `kind`; false (and nothing taken) when the cap is reached. */
  take(kind: keyof typeof SLOTS): boolean {
    if (Atomics.add(this.used, SLOTS[kind], 1) < this.max) return true;
    Atomics.sub(this.used, SLOTS[kind], 1);
    return false;
  }

  /** Gives back `n` of `kind`. */
  give(kind: keyof typeof SLOTS, n: number): void {
    if (n > 0) Atomics.sub(this.used, SLOTS[kind], n);
  }
}

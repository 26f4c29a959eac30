// The relay's cap on series, shared by its threads through a SharedArrayBuffer.

const KINDS = { series: 0, metadata: 1 } as const;
type Kind = keyof typeof KINDS;
/** Where the count of give-backs is. */
const FREED = 2;
/** Int32s before the first slot's: the totals, and FREED. */
const HEADER = 3;

/**
 * How many series, and how many metric names with metadata, the relay still takes, over all
 * of its threads. Each thread makes one over the same shared memory with a slot of its own, and
 * takes or gives back with atomic adds, so the cap holds exactly across threads; what a thread
 * held is known per slot, so when it dies {@link SeriesBudget.release} gives it all back. Every
 * give-back is counted ({@link SeriesBudget.freed}), so a thread that refused something knows
 * when to try again.
 *
 * Layout (Int32): the totals `[series, metadata]`, the give-backs, then `[series, metadata]` per slot.
 */
export class SeriesBudget {
  private readonly used: Int32Array;

  /**
   * @param max the most of each kind, over all threads.
   * @param slots how many threads share it (with `shared` absent: a new budget for that many).
   * @param shared what {@link SeriesBudget.shared} returned on another thread.
   * @param slot this thread's slot, from 0 to `slots - 1`.
   */
  constructor(
    readonly max: number,
    slots: number,
    shared?: SharedArrayBuffer,
    private readonly slot = 0,
  ) {
    this.used = new Int32Array(shared ?? new SharedArrayBuffer(4 * (HEADER + 2 * slots)));
  }

  /** The memory to hand another thread. */
  get shared(): SharedArrayBuffer {
    return this.used.buffer as SharedArrayBuffer;
  }

  /** How many times any thread gave something back (it wraps; compare for change only). */
  get freed(): number {
    return Atomics.load(this.used, FREED);
  }

  /** How many of `kind` all threads hold. */
  held(kind: Kind): number {
    return Atomics.load(this.used, KINDS[kind]);
  }

  /** Takes one of `kind`; false (and nothing taken) when the cap is reached. */
  take(kind: Kind): boolean {
    const k = KINDS[kind];
    if (Atomics.add(this.used, k, 1) >= this.max) {
      Atomics.sub(this.used, k, 1);
      return false;
    }
    Atomics.add(this.used, HEADER + 2 * this.slot + k, 1);
    return true;
  }

  /** Gives back `n` of `kind`. */
  give(kind: Kind, n: number): void {
    if (n <= 0) return;
    const k = KINDS[kind];
    Atomics.sub(this.used, HEADER + 2 * this.slot + k, n);
    Atomics.sub(this.used, k, n);
    Atomics.add(this.used, FREED, 1);
  }

  /** Gives back everything `slot` holds (its thread is gone). */
  release(slot: number): void {
    for (const k of Object.values(KINDS)) Atomics.sub(this.used, k, Atomics.exchange(this.used, HEADER + 2 * slot + k, 0));
    Atomics.add(this.used, FREED, 1);
  }
}

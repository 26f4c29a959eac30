// The relay's caps on series and on bytes, shared by its threads through a SharedArrayBuffer.

const KINDS = { series: 0, metadata: 1, bytes: 2 } as const;
type Kind = keyof typeof KINDS;
/** Where the count of give-backs is. */
const FREED = 3;
/** Int32s before the first slot's: the totals, and FREED. */
const HEADER = 4;
const PER_SLOT = 3;

/**
 * How many series, how many metric names with metadata, and how many bytes of their text the
 * relay still takes, over all of its threads. Each thread makes one over the same shared memory
 * with a slot of its own, and takes or gives back with atomic adds, so the caps hold exactly
 * across threads; what a thread held is known per slot, so when it dies
 * {@link SeriesBudget.release} gives it all back. Every give-back is counted
 * ({@link SeriesBudget.freed}), so a thread that refused something knows when to try again.
 *
 * Layout (Int32): the totals `[series, metadata, bytes]`, the give-backs, then the same three per slot.
 */
export class SeriesBudget {
  private readonly used: Int32Array;

  /**
   * @param max the most series, and the most metric names with metadata, over all threads.
   * @param slots how many threads share it (with `shared` absent: a new budget for that many).
   * @param shared what {@link SeriesBudget.shared} returned on another thread.
   * @param slot this thread's slot, from 0 to `slots - 1`.
   * @param maxBytes the most bytes, over all threads (at most 2^31 − 1).
   */
  constructor(
    readonly max: number,
    slots: number,
    shared?: SharedArrayBuffer,
    private readonly slot = 0,
    readonly maxBytes = 2 ** 31 - 1,
  ) {
    this.used = new Int32Array(shared ?? new SharedArrayBuffer(4 * (HEADER + PER_SLOT * slots)));
  }

  /** The memory to hand another thread. */
  get shared(): SharedArrayBuffer {
    return this.used.buffer as SharedArrayBuffer;
  }

  /** How many times any thread gave something back (it wraps; compare for change only). */
  get freed(): number {
    return Atomics.load(this.used, FREED);
  }

  /** Takes `n` of `kind`; false (and nothing taken) when that would pass the cap. */
  take(kind: Kind, n = 1): boolean {
    const k = KINDS[kind];
    if (Atomics.add(this.used, k, n) + n > (kind === 'bytes' ? this.maxBytes : this.max)) {
      Atomics.sub(this.used, k, n);
      return false;
    }
    Atomics.add(this.used, HEADER + PER_SLOT * this.slot + k, n);
    return true;
  }

  /** Gives back `n` of `kind`. */
  give(kind: Kind, n: number): void {
    if (n <= 0) return;
    const k = KINDS[kind];
    Atomics.sub(this.used, HEADER + PER_SLOT * this.slot + k, n);
    Atomics.sub(this.used, k, n);
    Atomics.add(this.used, FREED, 1);
  }

  /** Gives back everything `slot` holds (its thread is gone). */
  release(slot: number): void {
    for (const k of Object.values(KINDS)) Atomics.sub(this.used, k, Atomics.exchange(this.used, HEADER + PER_SLOT * slot + k, 0));
    Atomics.add(this.used, FREED, 1);
  }
}

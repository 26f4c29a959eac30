/**
 * Memory frames are encoded into, reused once nothing refers to it: allocating a new megabyte
 * for every megabyte sent made V8 collect garbage for "external memory pressure" twice a
 * second at 1 M records/s, on the worker and on the platform's helper threads.
 */
export class Slab<T extends Uint8Array | Uint32Array> {
  /** Chunks cut from it that someone still uses. */
  users = 0;
  /** The encoder still writes into it. */
  current = true;

  constructor(
    readonly mem: T,
    private readonly pool: SlabPool<T>,
  ) {}

  /** A chunk of it is no longer used. */
  release(): void {
    if (--this.users === 0 && !this.current) this.pool.put(this);
  }

  /** The encoder moves on to another slab. */
  retire(): void {
    this.current = false;
    if (this.users === 0) this.pool.put(this);
  }
}

/** Free slabs of one standard size, a few at most. */
export class SlabPool<T extends Uint8Array | Uint32Array> {
  private readonly free: Slab<T>[] = [];

  constructor(
    private readonly make: (size: number) => T,
    private readonly size: number,
    private readonly keep = 4,
  ) {}

  /** A slab of at least `min` units (the standard size, reused if one is free, unless more is needed). */
  take(min: number): Slab<T> {
    const reused = min <= this.size ? this.free.pop() : undefined;
    if (reused !== undefined) {
      reused.current = true;
      return reused;
    }
    return new Slab(this.make(Math.max(this.size, min)), this);
  }

  put(slab: Slab<T>): void {
    if (slab.mem.length === this.size && this.free.length < this.keep) this.free.push(slab);
  }
}

/**
 * A batch of encoded frames: bytes that every client shares, and where each frame ends so that
 * a client's queue can drop whole frames from its front. Whoever keeps it takes a
 * {@link use} and gives it back with {@link release}; when the last one does, the slabs it was
 * cut from can be reused.
 */
export class Chunk {
  private users = 1;

  /**
   * @param ends `ends[i]` is the offset in `bytes` just past frame i
   * @param slabs where `bytes` and `ends` live, if they are to be reused
   */
  constructor(
    readonly bytes: Uint8Array,
    readonly ends: Uint32Array,
    private readonly slabs?: { readonly bytes: Slab<Uint8Array>; readonly ends: Slab<Uint32Array> },
  ) {
    if (slabs !== undefined) {
      slabs.bytes.users++;
      slabs.ends.users++;
    }
  }

  /** A chunk of its own holding `frames`, e.g. metadata frames. */
  static of(...frames: Uint8Array[]): Chunk {
    if (frames.length === 1) return new Chunk(frames[0]!, Uint32Array.of(frames[0]!.length));
    const ends = new Uint32Array(frames.length);
    let at = 0;
    frames.forEach((f, i) => (ends[i] = at += f.length));
    const bytes = new Uint8Array(at);
    frames.forEach((f, i) => bytes.set(f, ends[i]! - f.length));
    return new Chunk(bytes, ends);
  }

  use(): void {
    this.users++;
  }

  release(): void {
    if (--this.users !== 0 || this.slabs === undefined) return;
    this.slabs.bytes.release();
    this.slabs.ends.release();
  }
}

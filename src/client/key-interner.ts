// Interns metric keys by their raw wire bytes (Metric.name and Metric.labels fields), so a
// frame of a known key is recognised by hashing and comparing bytes, with nothing decoded.

/** A metric key the reader has seen: its name and labels, decoded once. */
export interface MetricKey {
  /** Dense, from 0 in the order first seen: index arrays of your own with it. */
  readonly id: number;
  readonly name: string;
  /** Label names in ascending order. */
  readonly labels: Readonly<Record<string, string>>;
}

const EMPTY_SLOT = -1;
/** Entries of the cache of recent keys by fingerprint. */
const RECENT = 4096;

/**
 * An open-addressing hash table from byte strings (given as two spans of one buffer) to
 * {@link MetricKey}s. Keys' bytes live in one arena; nothing is allocated on a hit.
 *
 * In front of it, a direct-mapped cache indexed by a fingerprint of a few of the key's bytes
 * (its length and three 4-byte words) remembers the last key seen there: a hit costs one
 * comparison of the bytes instead of hashing them all and then comparing.
 */
export class KeyInterner {
  readonly keys: MetricKey[] = [];
  /** Key ids by hash slot, or EMPTY_SLOT. */
  private slots = new Int32Array(1024).fill(EMPTY_SLOT);
  private arena = new Uint8Array(16 * 1024);
  private arenaView: DataView = new DataView(this.arena.buffer);
  private used = 0;
  private starts = new Int32Array(256);
  private lengths = new Int32Array(256);
  private hashes = new Int32Array(256);
  /** A random seed per table, so a sender cannot aim at collisions. */
  private readonly seed = (Math.random() * 0x100000000) | 0;
  /** Key ids (+1; 0 for none) by fingerprint. */
  private readonly recent = new Int32Array(RECENT);
  /** The hash of the last {@link lookup} that missed, for {@link add}. */
  private missed = 0;

  get size(): number {
    return this.keys.length;
  }

  /** Bytes of the keys held (their name and label fields as they were on the wire). */
  get bytes(): number {
    return this.used;
  }

  /** Forgets every key: ids start again from 0. */
  clear(): void {
    this.keys.length = 0;
    this.slots = new Int32Array(1024).fill(EMPTY_SLOT);
    this.arena = new Uint8Array(16 * 1024);
    this.arenaView = new DataView(this.arena.buffer);
    this.used = 0;
    this.recent.fill(0);
  }

  /** The key whose bytes are `buf[a, aEnd) ++ buf[b, bEnd)`; `undefined` if new. */
  lookup(buf: Uint8Array, view: DataView, a: number, aEnd: number, b: number, bEnd: number): MetricKey | undefined {
    const len = aEnd - a + bEnd - b;
    // The fingerprint: the length, the last word of each span, and the middle word of the labels.
    let f = Math.imul(len, 0x9e3779b1);
    if (aEnd - a >= 4) f ^= view.getInt32(aEnd - 4, true);
    if (bEnd - b >= 4) f = Math.imul(f, 0x85ebca6b) ^ view.getInt32(bEnd - 4, true) ^ view.getInt32(b + ((bEnd - b - 4) >> 1), true);
    f = (f ^ (f >>> 13) ^ (f >>> 22)) & (RECENT - 1);
    const guess = this.recent[f]! - 1;
    if (guess >= 0 && this.lengths[guess] === len && this.holds(guess, buf, view, a, aEnd, b, bEnd)) return this.keys[guess];
    const h = finish(mix(buf, view, b, bEnd, mix(buf, view, a, aEnd, this.seed)));
    const mask = this.slots.length - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const id = this.slots[i]!;
      if (id === EMPTY_SLOT) {
        this.missed = h;
        return undefined;
      }
      if (this.hashes[id] === h && this.lengths[id] === len && this.holds(id, buf, view, a, aEnd, b, bEnd)) {
        this.recent[f] = id + 1;
        return this.keys[id];
      }
    }
  }

  /**
   * Adds a key with bytes `buf[a, aEnd) ++ buf[b, bEnd)`, right after a {@link lookup} of
   * those bytes missed.
   */
  add(buf: Uint8Array, a: number, aEnd: number, b: number, bEnd: number, name: string, labels: Readonly<Record<string, string>>): MetricKey {
    const h = this.missed;
    const id = this.keys.length;
    const aLen = aEnd - a;
    const len = aLen + bEnd - b;
    if (id === this.starts.length) {
      this.starts = grow(this.starts);
      this.lengths = grow(this.lengths);
      this.hashes = grow(this.hashes);
    }
    if (this.used + len > this.arena.length) {
      const arena = new Uint8Array(Math.max(2 * this.arena.length, this.used + len));
      arena.set(this.arena.subarray(0, this.used));
      this.arena = arena;
      this.arenaView = new DataView(arena.buffer);
    }
    this.arena.set(buf.subarray(a, aEnd), this.used);
    this.arena.set(buf.subarray(b, bEnd), this.used + aLen);
    this.starts[id] = this.used;
    this.lengths[id] = len;
    this.hashes[id] = h;
    this.used += len;
    const key: MetricKey = { id, name, labels };
    this.keys.push(key);
    if (2 * this.keys.length > this.slots.length) this.rehash(2 * this.slots.length);
    else this.place(id);
    return key;
  }

  /** Whether key `id`'s bytes (of the same length) are `buf[a, aEnd) ++ buf[b, bEnd)`. */
  private holds(id: number, buf: Uint8Array, view: DataView, a: number, aEnd: number, b: number, bEnd: number): boolean {
    const at = this.starts[id]!;
    return same(buf, view, a, this.arena, this.arenaView, at, aEnd - a) && same(buf, view, b, this.arena, this.arenaView, at + aEnd - a, bEnd - b);
  }

  private place(id: number): void {
    const mask = this.slots.length - 1;
    let i = this.hashes[id]! & mask;
    while (this.slots[i] !== EMPTY_SLOT) i = (i + 1) & mask;
    this.slots[i] = id;
  }

  private rehash(size: number): void {
    this.slots = new Int32Array(size).fill(EMPTY_SLOT);
    for (let id = 0; id < this.keys.length; id++) this.place(id);
  }
}

function grow(a: Int32Array): Int32Array<ArrayBuffer> {
  const b = new Int32Array(2 * a.length);
  b.set(a);
  return b;
}

/** Mixes `buf[i, end)` into `h`, four bytes at a time. */
function mix(buf: Uint8Array, view: DataView, i: number, end: number, h: number): number {
  for (; i + 4 <= end; i += 4) {
    h = Math.imul(h ^ view.getInt32(i, true), 0x5bd1e995);
    h ^= h >>> 15;
  }
  for (; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h;
}

function finish(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Whether `x[i, i + n)` equals `y[j, j + n)`, compared eight bytes at a time (two words, one branch). */
function same(x: Uint8Array, xv: DataView, i: number, y: Uint8Array, yv: DataView, j: number, n: number): boolean {
  const end = i + n;
  for (; i + 8 <= end; i += 8, j += 8) {
    if (((xv.getInt32(i, true) ^ yv.getInt32(j, true)) | (xv.getInt32(i + 4, true) ^ yv.getInt32(j + 4, true))) !== 0) return false;
  }
  if (i + 4 <= end) {
    if (xv.getInt32(i, true) !== yv.getInt32(j, true)) return false;
    i += 4;
    j += 4;
  }
  for (; i < end; i++, j++) if (x[i] !== y[j]) return false;
  return true;
}

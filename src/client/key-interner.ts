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

/**
 * An open-addressing hash table from byte strings (given as two spans of one buffer) to
 * {@link MetricKey}s. Keys' bytes live in one arena; nothing is allocated on a hit.
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

  get size(): number {
    return this.keys.length;
  }

  /** Hash of `buf[a, aEnd) ++ buf[b, bEnd)`. */
  hash(buf: Uint8Array, view: DataView, a: number, aEnd: number, b: number, bEnd: number): number {
    return finish(mix(buf, view, b, bEnd, mix(buf, view, a, aEnd, this.seed)));
  }

  /** The key whose bytes are `buf[a, aEnd) ++ buf[b, bEnd)`, with hash `h`; `undefined` if new. */
  find(buf: Uint8Array, view: DataView, a: number, aEnd: number, b: number, bEnd: number, h: number): MetricKey | undefined {
    const mask = this.slots.length - 1;
    const aLen = aEnd - a;
    const len = aLen + bEnd - b;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const id = this.slots[i]!;
      if (id === EMPTY_SLOT) return undefined;
      if (this.hashes[id] !== h || this.lengths[id] !== len) continue;
      const at = this.starts[id]!;
      if (same(buf, view, a, this.arena, this.arenaView, at, aLen) && same(buf, view, b, this.arena, this.arenaView, at + aLen, len - aLen)) {
        return this.keys[id]!;
      }
    }
  }

  /** Adds a key (not present, see {@link find}) with bytes `buf[a, aEnd) ++ buf[b, bEnd)` and hash `h`. */
  add(buf: Uint8Array, a: number, aEnd: number, b: number, bEnd: number, h: number, name: string, labels: Readonly<Record<string, string>>): MetricKey {
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

/** Whether `x[i, i + n)` equals `y[j, j + n)`, compared four bytes at a time. */
function same(x: Uint8Array, xv: DataView, i: number, y: Uint8Array, yv: DataView, j: number, n: number): boolean {
  const end = i + n;
  for (; i + 4 <= end; i += 4, j += 4) if (xv.getInt32(i, true) !== yv.getInt32(j, true)) return false;
  for (; i < end; i++, j++) if (x[i] !== y[j]) return false;
  return true;
}

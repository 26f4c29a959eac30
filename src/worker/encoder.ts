import type { Protocol } from '../shared/messages.js';
import type { KeyEntry } from './keys.js';

import { Chunk, SlabPool } from './chunk.js';

export { Chunk };


/** A gauge update's kind, an index into the tag tables below. */
export const enum GaugeOp {
  Set = 0,
  Increment = 1,
  Decrement = 2,
}

// Wire tags (field number << 3 | wire type).
const EVENT_METRIC = 0x12; // Event.metric, length-delimited
// seed: Metric.counter / .gauge / .histogram are messages holding the value.
const SEED_COUNTER = 0x22; // Metric.counter (4)
const SEED_GAUGE = 0x2a; // Metric.gauge (5)
const SEED_HISTOGRAM = 0x32; // Metric.histogram (6)
const SEED_VALUE_VARINT = 0x08; // Counter.value (1, varint)
const SEED_VALUE_DOUBLE = 0x09; // Histogram.value (1, fixed64)
const SEED_GAUGE_TAGS = [0x09, 0x11, 0x19]; // Gauge.absolute (1), .increment (2), .decrement (3)
// observer-0.11: Metric.operation is a oneof of scalars.
const OBS_INCREMENT_COUNTER = 0x20; // (4, varint)
const OBS_GAUGE_TAGS = [0x41, 0x31, 0x39]; // set_gauge (8), increment_gauge (6), decrement_gauge (7)
const OBS_RECORD_HISTOGRAM = 0x49; // (9, fixed64)

// Shapes of a frame's prefix (everything before the value bytes), for reusing it.
const SHAPE_SEED_COUNTER = 0; // + Counter's length (0, or 2–11)
const SHAPE_OBS_COUNTER = 16; // + the value's varint length (1–10)
const SHAPE_GAUGE = 32; // + GaugeOp
const SHAPE_HISTOGRAM = 48;
const SHAPE_EMPTY_HISTOGRAM = 49; // seed, +0

/** Bytes per encoding slab, and frame ends per ends slab. */
const SLAB_BYTES = 1 << 20;
const ENDS_SLAB = 1 << 14;
/**
 * A batch this large is full (see {@link FrameEncoder.full}): half a slab, so that a batch
 * moved to a fresh slab when its own runs out always fits a standard one. Batches larger than
 * a slab were moved into new, larger slabs, allocated round after round.
 */
export const BATCH_BYTES = SLAB_BYTES >> 1;

/**
 * `TypedArray.prototype.set`, called directly: optimised code looked `set` up on the slab with a
 * generic property load (the LoadIC builtin) on every frame, 6 % of the worker at 1 M records/s.
 */
const typedArraySet = Uint8Array.prototype.set;

/** How many bytes `v` (an integer from 0 to 2^53) takes as a varint. */
export function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Writes `v` (an integer from 0 to 2^53) as a varint at `pos`; returns the position after it. */
export function putVarint(buf: Uint8Array, pos: number, v: number): number {
  while (v >= 128) {
    buf[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
}

function varint64Size(lo: number, hi: number): number {
  let n = 1;
  while (hi !== 0 || lo >= 128) {
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
    n++;
  }
  return n;
}

/** Bytes a timestamp takes at most: tag, length, and two tagged varints. */
const TS_MAX = 2 + 1 + 10 + 1 + 5;

/**
 * Numbers a batch, so that a key's cached frame prefix (see {@link KeyEntry}) is reused only
 * in the batch (its timestamp) and encoder that wrote it: shared by every encoder.
 */
let batches = 0;

/**
 * Encodes metric frames straight into shared slabs, byte for byte what
 * `sizeDelimitedEncode(EventSchema, …)` writes with the protocol's schema (and what the Rust
 * crates' prost code writes): the length prefix, `Event.metric`, then the key's cached name,
 * the batch's timestamp, the key's cached labels and the value. The clock is read once per
 * batch ({@link begin}).
 *
 * Within a batch, every frame of a key up to its value is the same for the same shape of value
 * (op and value length): the first such frame is written piece by piece and remembered, later
 * ones copy it in one `TypedArray.set` and add the value. Three `set` calls per frame (name,
 * timestamp, labels) were half the worker's time at 1 M records/s.
 */
export class FrameEncoder {
  // Frames are written straight into a slab; a finished batch is a view of it, never a copy,
  // and the next batch continues after it. A new slab is taken only when one is full (the old
  // one lives on while clients still hold its chunks). Copying each batch into a fresh buffer
  // cost the worker a third of its time, mostly in page faults on the new memory.
  private readonly byteSlabs = new SlabPool<Uint8Array>((n) => Buffer.allocUnsafeSlow(n), SLAB_BYTES);
  private readonly endsSlabs = new SlabPool<Uint32Array>((n) => new Uint32Array(n), ENDS_SLAB);
  private slab = this.byteSlabs.take(SLAB_BYTES);
  private buf = this.slab.mem;
  /**
   * `buf.length` and `ends.length`, kept as numbers: reading `length` of a Buffer (a Uint8Array
   * subclass) per record cost a generic property load in optimised code.
   */
  private bufEnd = this.buf.length;
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  /** Where the current batch starts in `buf`. */
  private start = 0;
  private pos = 0;
  /** Frame ends of the current batch, relative to `start`, in a slab of their own. */
  private endsSlab = this.endsSlabs.take(ENDS_SLAB);
  private ends = this.endsSlab.mem;
  private endsEnd = this.ends.length;
  private endsStart = 0;
  private endsPos = 0;
  /** `Metric.timestamp` of the batch, encoded: `tsLen` bytes. */
  private readonly ts = new Uint8Array(TS_MAX);
  private tsLen = 0;
  /** This batch's number (see {@link batches}). */
  private stamp = 0;
  private readonly seed: boolean;

  constructor(protocol: Protocol = 'seed') {
    this.seed = protocol === 'seed';
  }

  /** Starts a batch: reads the clock once and encodes `Metric.timestamp` for all its frames. */
  begin(nowMs: number = Date.now()): void {
    this.rewind();
    const seconds = Math.max(0, Math.floor(nowMs / 1000));
    const nanos = Math.min(999_999_999, Math.floor((nowMs - seconds * 1000) * 1e6));
    // Field 2 of Metric, a Timestamp: seconds (1) and nanos (2), each left out when zero.
    const ts = this.ts;
    let n = 2;
    if (seconds !== 0) {
      ts[n++] = 0x08;
      n = putVarint(ts, n, seconds);
    }
    if (nanos !== 0) {
      ts[n++] = 0x10;
      n = putVarint(ts, n, nanos);
    }
    ts[0] = 0x12;
    ts[1] = n - 2;
    this.tsLen = n;
    this.stamp = ++batches;
  }

  /** A counter increment of `hi * 2^32 + lo` (two unsigned 32-bit halves, so u64 is exact). */
  counter(k: KeyEntry, lo: number, hi: number): void {
    const n = varint64Size(lo, hi);
    if (this.seed) {
      // proto3 leaves a zero Counter.value out: the message is then empty.
      const inner = lo === 0 && hi === 0 ? 0 : 1 + n;
      if (!this.reuse(k, SHAPE_SEED_COUNTER + inner, 10)) {
        this.head(k, 2 + inner);
        this.byte(SEED_COUNTER);
        this.byte(inner);
        if (inner !== 0) this.byte(SEED_VALUE_VARINT);
        this.remember(k, SHAPE_SEED_COUNTER + inner);
      }
      if (inner === 0) return this.end();
    } else if (!this.reuse(k, SHAPE_OBS_COUNTER + n, 10)) {
      this.head(k, 1 + n); // a oneof member is written even when zero
      this.byte(OBS_INCREMENT_COUNTER);
      this.remember(k, SHAPE_OBS_COUNTER + n);
    }
    while (hi !== 0 || lo >= 128) {
      this.byte((lo & 0x7f) | 0x80);
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    this.byte(lo);
    this.end();
  }

  /** A gauge update. Oneof members are always written, zero included. */
  gauge(k: KeyEntry, op: GaugeOp, v: number): void {
    if (!this.reuse(k, SHAPE_GAUGE + op, 8)) {
      if (this.seed) {
        this.head(k, 11);
        this.byte(SEED_GAUGE);
        this.byte(9);
        this.byte(SEED_GAUGE_TAGS[op]!);
      } else {
        this.head(k, 9);
        this.byte(OBS_GAUGE_TAGS[op]!);
      }
      this.remember(k, SHAPE_GAUGE + op);
    }
    this.double(v);
    this.end();
  }

  /**
   * A histogram value. In the seed format proto3 leaves out +0; -0 is written, as protobuf-es
   * and C++ protobuf do (prost drops it too, so the seed sent -0 as +0).
   */
  histogram(k: KeyEntry, v: number): void {
    if (this.seed && Object.is(v, 0)) {
      if (!this.reuse(k, SHAPE_EMPTY_HISTOGRAM, 0)) {
        this.head(k, 2);
        this.byte(SEED_HISTOGRAM);
        this.byte(0);
        this.remember(k, SHAPE_EMPTY_HISTOGRAM);
      }
      return this.end();
    }
    if (!this.reuse(k, SHAPE_HISTOGRAM, 8)) {
      if (this.seed) {
        this.head(k, 11);
        this.byte(SEED_HISTOGRAM);
        this.byte(9);
        this.byte(SEED_VALUE_DOUBLE);
      } else {
        this.head(k, 9);
        this.byte(OBS_RECORD_HISTOGRAM);
      }
      this.remember(k, SHAPE_HISTOGRAM);
    }
    this.double(v);
    this.end();
  }

  /** The batch has reached {@link BATCH_BYTES}: the caller should finish it before encoding more. */
  get full(): boolean {
    return this.pos - this.start >= BATCH_BYTES;
  }

  /** Bytes of frames in the current batch so far. */
  get batchBytes(): number {
    return this.pos - this.start;
  }

  /** The current batch's number: a key whose `stamp` equals it has a prefix valid in this batch. */
  get batch(): number {
    return this.stamp;
  }

  /**
   * Where the next frame byte and frame end go, as addresses modulo 8 (bits 0–2: the byte's,
   * bits 3–5: the end's). A copy from shared memory (`FrameKernel`) into the slabs is done word
   * by word only when source and target are aligned alike, else byte by byte: 2.5 GB/s
   * against 10.
   */
  get alignment(): number {
    return ((this.buf.byteOffset + this.pos) & 7) | (((this.ends.byteOffset + 4 * this.endsPos) & 7) << 3);
  }

  /**
   * Appends frames encoded elsewhere (`FrameKernel`): their bytes, and where each ends counted
   * from the start of this batch.
   */
  append(bytes: Uint8Array, ends: Uint32Array): void {
    this.room(bytes.length);
    typedArraySet.call(this.buf, bytes, this.pos);
    this.pos += bytes.length;
    if (this.endsPos + ends.length > this.endsEnd) this.moveEnds(ends.length);
    this.ends.set(ends, this.endsPos);
    this.endsPos += ends.length;
  }

  /** The frames written since the last call, as a chunk (a view: nothing is copied). */
  finish(): Chunk | null {
    if (this.endsPos === this.endsStart) return null;
    const chunk = new Chunk(this.buf.subarray(this.start, this.pos), this.ends.subarray(this.endsStart, this.endsPos), {
      bytes: this.slab,
      ends: this.endsSlab,
    });
    this.start = this.pos;
    this.endsStart = this.endsPos;
    return chunk;
  }

  /**
   * Starts over at the front of the current slabs when no chunk cut from them is in use (every
   * client took its bytes, the usual case): each batch is then written over the last one's
   * memory, still in the core's caches, instead of walking through a megabyte that evicts the
   * app thread's data from them.
   */
  private rewind(): void {
    if (this.start === 0 || this.slab.users !== 0 || this.endsSlab.users !== 0 || this.pos !== this.start) return;
    this.start = this.pos = 0;
    this.endsStart = this.endsPos = 0;
  }

  /** Length prefix, `Event.metric` header, name, timestamp and labels; `valueLen` follows. */
  private head(k: KeyEntry, valueLen: number): void {
    const metricLen = k.name.length + this.tsLen + k.labels.length + valueLen;
    const eventLen = 1 + varintSize(metricLen) + metricLen;
    this.room(varintSize(eventLen) + eventLen);
    k.at = this.pos;
    this.varint(eventLen);
    this.byte(EVENT_METRIC);
    this.varint(metricLen);
    this.bytes(k.name);
    for (let i = 0; i < this.tsLen; i++) this.buf[this.pos++] = this.ts[i]!;
    this.bytes(k.labels);
  }

  /**
   * Writes `k`'s frame up to its value by copying the one written earlier in this batch, if
   * there is one of the same `shape`; `valueLen` bytes of value follow.
   */
  private reuse(k: KeyEntry, shape: number, valueLen: number): boolean {
    if (k.stamp !== this.stamp || k.shape !== shape) return false;
    this.room(k.prefix.length + valueLen);
    this.bytes(k.prefix);
    return true;
  }

  /**
   * Remembers the frame just written (from `k.at` to here) as `k`'s prefix for `shape`, in an
   * array of its own: `set` from it is a fast builtin, where `copyWithin` inside the slab was a
   * call into the runtime that cost a fifth of the worker's time at 1 M records/s. Its array is
   * replaced only when the prefix's length changes.
   */
  private remember(k: KeyEntry, shape: number): void {
    const len = this.pos - k.at;
    if (k.prefix.length !== len) k.prefix = new Uint8Array(len);
    const prefix = k.prefix;
    const buf = this.buf;
    for (let i = 0, at = k.at; i < len; i++) prefix[i] = buf[at + i]!;
    k.shape = shape;
    k.stamp = this.stamp;
  }

  private end(): void {
    if (this.endsPos === this.endsEnd) this.moveEnds(1);
    this.ends[this.endsPos++] = this.pos - this.start;
  }

  /** Moves the current batch's ends to the front of another slab with room for `n` more. */
  private moveEnds(n: number): void {
    const used = this.endsPos - this.endsStart;
    const next = this.endsSlabs.take(used + n > ENDS_SLAB ? 2 * (used + n) : used + n);
    next.mem.set(this.ends.subarray(this.endsStart, this.endsPos));
    this.endsSlab.retire();
    this.endsSlab = next;
    this.ends = next.mem;
    this.endsEnd = next.mem.length;
    this.endsPos = used;
    this.endsStart = 0;
  }

  /**
   * Makes room for `n` more bytes. Kept apart from {@link move} so that this test is inlined per
   * frame: V8 did not inline the two together, and the call cost 3 % of the worker.
   */
  private room(n: number): void {
    if (this.pos + n > this.bufEnd) this.move(n);
  }

  /** Moves the current batch to another slab with room for `n` more bytes. */
  private move(n: number): void {
    const used = this.pos - this.start;
    const slab = this.byteSlabs.take(used + n > SLAB_BYTES ? 2 * (used + n) : used + n);
    const next = slab.mem;
    next.set(this.buf.subarray(this.start, this.pos));
    this.slab.retire();
    this.slab = slab;
    this.buf = next;
    this.bufEnd = next.length;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
    this.start = 0;
    this.pos = used;
  }

  private byte(b: number): void {
    this.buf[this.pos++] = b;
  }

  private bytes(b: Uint8Array): void {
    typedArraySet.call(this.buf, b, this.pos);
    this.pos += b.length;
  }

  private varint(v: number): void {
    this.pos = putVarint(this.buf, this.pos, v);
  }

  private double(v: number): void {
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }
}

import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import type { Protocol } from '../shared/messages.js';
import type { KeyEntry } from './keys.js';

/**
 * A batch of encoded frames: one buffer that every client shares, plus where each frame ends
 * so that a client's queue can drop whole frames from its front.
 */
export interface Chunk {
  readonly bytes: Uint8Array;
  /** `ends[i]` is the offset in `bytes` just past frame i. */
  readonly ends: Uint32Array;
}


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

/** Bytes per encoding slab, and frame ends per ends slab. */
const SLAB_BYTES = 1 << 20;
const ENDS_SLAB = 1 << 14;

function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
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

/**
 * Encodes metric frames straight into shared slabs, byte for byte what
 * `sizeDelimitedEncode(EventSchema, …)` writes with the protocol's schema (and what the Rust
 * crates' prost code writes): the length prefix, `Event.metric`, then the key's cached name,
 * the batch's timestamp, the key's cached labels and the value. The clock is read once per batch ({@link begin}).
 */
export class FrameEncoder {
  // Frames are written straight into a slab; a finished batch is a view of it, never a copy,
  // and the next batch continues after it. A new slab is taken only when one is full (the old
  // one lives on while clients still hold its chunks). Copying each batch into a fresh buffer
  // cost the worker a third of its time, mostly in page faults on the new memory.
  private buf = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  /** Where the current batch starts in `buf`. */
  private start = 0;
  private pos = 0;
  /** Frame ends of the current batch, relative to `start`, in a slab of their own. */
  private ends = new Uint32Array(ENDS_SLAB);
  private endsStart = 0;
  private endsPos = 0;
  private ts: Uint8Array = new Uint8Array(0);
  private readonly seed: boolean;

  constructor(protocol: Protocol = 'seed') {
    this.seed = protocol === 'seed';
  }

  /** Starts a batch: reads the clock once and encodes `Metric.timestamp` for all its frames. */
  begin(nowMs: number = Date.now()): void {
    const seconds = Math.floor(nowMs / 1000);
    const nanos = Math.min(999_999_999, Math.floor((nowMs - seconds * 1000) * 1e6));
    const w = new BinaryWriter().tag(2, WireType.LengthDelimited).fork();
    if (seconds !== 0) w.tag(1, WireType.Varint).int64(seconds);
    if (nanos !== 0) w.tag(2, WireType.Varint).int32(nanos);
    this.ts = w.join().finish();
  }

  /** A counter increment of `hi * 2^32 + lo` (two unsigned 32-bit halves, so u64 is exact). */
  counter(k: KeyEntry, lo: number, hi: number): void {
    const n = varint64Size(lo, hi);
    if (this.seed) {
      // proto3 leaves a zero Counter.value out: the message is then empty.
      const inner = lo === 0 && hi === 0 ? 0 : 1 + n;
      this.head(k, 2 + inner);
      this.byte(SEED_COUNTER);
      this.byte(inner);
      if (inner === 0) return this.end();
      this.byte(SEED_VALUE_VARINT);
    } else {
      this.head(k, 1 + n); // a oneof member is written even when zero
      this.byte(OBS_INCREMENT_COUNTER);
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
    if (this.seed) {
      this.head(k, 11);
      this.byte(SEED_GAUGE);
      this.byte(9);
      this.byte(SEED_GAUGE_TAGS[op]!);
    } else {
      this.head(k, 9);
      this.byte(OBS_GAUGE_TAGS[op]!);
    }
    this.double(v);
    this.end();
  }

  /**
   * A histogram value. In the seed format proto3 leaves out +0; -0 is written, as protobuf-es
   * and C++ protobuf do (prost drops it too, so the seed sent -0 as +0).
   */
  histogram(k: KeyEntry, v: number): void {
    if (!this.seed) {
      this.head(k, 9);
      this.byte(OBS_RECORD_HISTOGRAM);
    } else if (Object.is(v, 0)) {
      this.head(k, 2);
      this.byte(SEED_HISTOGRAM);
      this.byte(0);
      return this.end();
    } else {
      this.head(k, 11);
      this.byte(SEED_HISTOGRAM);
      this.byte(9);
      this.byte(SEED_VALUE_DOUBLE);
    }
    this.double(v);
    this.end();
  }

  /** The frames written since the last call, as a chunk (a view: nothing is copied). */
  finish(): Chunk | null {
    if (this.endsPos === this.endsStart) return null;
    const chunk = { bytes: this.buf.subarray(this.start, this.pos), ends: this.ends.subarray(this.endsStart, this.endsPos) };
    this.start = this.pos;
    this.endsStart = this.endsPos;
    return chunk;
  }

  /** Length prefix, `Event.metric` header, name, timestamp and labels; `valueLen` follows. */
  private head(k: KeyEntry, valueLen: number): void {
    const metricLen = k.name.length + this.ts.length + k.labels.length + valueLen;
    const eventLen = 1 + varintSize(metricLen) + metricLen;
    this.reserve(varintSize(eventLen) + eventLen);
    this.varint(eventLen);
    this.byte(EVENT_METRIC);
    this.varint(metricLen);
    this.bytes(k.name);
    this.bytes(this.ts);
    this.bytes(k.labels);
  }

  private end(): void {
    if (this.endsPos === this.ends.length) {
      // Move the current batch's ends to the front of a new slab.
      const next = new Uint32Array(Math.max(ENDS_SLAB, 2 * (this.endsPos - this.endsStart)));
      next.set(this.ends.subarray(this.endsStart, this.endsPos));
      this.endsPos -= this.endsStart;
      this.endsStart = 0;
      this.ends = next;
    }
    this.ends[this.endsPos++] = this.pos - this.start;
  }

  /** Makes room for `n` more bytes, moving the current batch to a new slab if need be. */
  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const used = this.pos - this.start;
    const next = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, 2 * (used + n)));
    this.buf.copy(next, 0, this.start, this.pos);
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
    this.start = 0;
    this.pos = used;
  }

  private byte(b: number): void {
    this.buf[this.pos++] = b;
  }

  private bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  private varint(v: number): void {
    while (v >= 128) {
      this.buf[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  private double(v: number): void {
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }
}

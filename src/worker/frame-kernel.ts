import { frameKernelWasm } from '../gen/frame_kernel_wasm.js';
import type { Protocol } from '../shared/messages.js';
import { LITTLE_ENDIAN, RECORD_BYTES } from '../shared/layout.js';
import { BATCH_BYTES, type FrameEncoder } from './encoder.js';
import type { KeyEntry } from './keys.js';
import type { RingReader } from './ring-reader.js';

/** Why {@link FrameKernel.encode} stopped (the statuses of frame-kernel.wat). */
export const enum KernelStop {
  /** Every record was encoded. */
  Done = 0,
  /** The record it stopped at needs the JavaScript encoder. */
  NeedsEncoder = 1,
  /** The batch is full: the caller finishes it before encoding more. */
  BatchFull = 3,
}
/** frame-kernel.wat's status for "the output area is full": handled inside {@link FrameKernel.encode}. */
const OUT_FULL = 2;

/**
 * Bytes of a key table entry: two slots (a key whose records alternate between two shapes, like
 * a gauge going up and down, has both) of epoch, shape, prefix address, prefix length (all i32).
 * With one slot, every record of such a key went back to the encoder.
 */
const ENTRY_BYTES = 32;
/** Entries of the smallest key table. */
const MIN_TABLE = 64;
/** Frame bytes the kernel writes before handing them to the encoder (from up to 7 bytes in, for alignment). */
const OUT_BYTES = 256 << 10;
/** Frame ends it writes before handing them over (an end per frame, frames at least 4 bytes; 8 more for alignment). */
const ENDS_BYTES = OUT_BYTES + 8;
/**
 * The longest prefix the kernel learns: one frame must fit its output area at any alignment (7
 * bytes in) with the longest value (10). A longer prefix could never be written, and the kernel
 * would stop for room on it again and again; its key's records stay with the encoder. (A key
 * can be as long as 64 labels of 1024 three-byte characters each: about 400 KB.)
 */
const MAX_PREFIX = OUT_BYTES - 7 - 10;
/** Room for this batch's key prefixes. A prefix that does not fit is not learned: its key's records take the JavaScript encoder for the rest of the batch. */
const ARENA_BYTES = 1 << 20;
const PAGE = 65536;
/** Epochs start over (and every table is cleared) before the i32 epoch would wrap. */
const EPOCH_LIMIT = 0x7fffffff;

/**
 * The part of the WebAssembly JavaScript API used here: TypeScript declares it with the DOM
 * library, which this project does not load. (`--jitless` leaves it undefined.)
 */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
declare const WebAssembly:
  | {
      readonly Module: new (bytes: Uint8Array) => object;
      readonly Instance: new (module: object) => { readonly exports: Record<string, unknown> };
    }
  | undefined;

/** A ring's key table: its local key ids' prefixes, in the kernel's memory. */
interface Table {
  at: number;
  cap: number;
}

/**
 * The drain loop's common case, in WebAssembly (`frame-kernel.wat`): a record of a key whose
 * frame prefix the encoder wrote earlier in the batch becomes a frame with one `memory.copy` of
 * that prefix and the value's bytes, with no JavaScript per record. At 1 M records/s the
 * JavaScript path spent about 60 ns a record on validation, calls and `TypedArray.set`, most
 * of the worker's time.
 *
 * The {@link FrameEncoder} stays the only place frames are built and the owner of the batch:
 * a record the kernel cannot take (the first of its key and shape in the batch, an invalid
 * value, an unknown key) stops the kernel, the pipeline gives it to the encoder, and then
 * {@link learn}s the prefix the encoder remembered for its key. The kernel writes frames into its
 * own memory and appends them to the encoder's batch each time it stops, so frames stay in order.
 *
 * Its memory is the worker's alone: the records of a run are copied in (one `set`, 16 bytes
 * each), since a WebAssembly instance reads only its own memory and the rings are the app's. It
 * is a shared memory all the same: V8 copied out of a non-shared one into the slabs at 1.7 GB/s,
 * out of a shared one at 10.
 *
 * Memory layout: the status words, the records of a run, frame ends, frames, the batch's
 * prefixes (an arena emptied every batch), then the rings' key tables.
 */
export class FrameKernel {
  private readonly memory: WasmMemory;
  private readonly run: (...args: number[]) => number;
  private readonly seed: number;
  private readonly recsAt: number;
  private readonly endsAt: number;
  private readonly outAt: number;
  private readonly arenaAt: number;
  private readonly tablesAt: number;
  private u8!: Uint8Array;
  private i32!: Int32Array;
  private u32!: Uint32Array;
  private f64!: Float64Array;
  /** The batch's number: table entries of other epochs are stale. */
  private epoch = 0;
  private arenaPos = 0;
  private tablesEnd: number;
  private readonly tables = new Map<RingReader, Table>();
  /** Freed tables by log2 of their entry count, for reuse. */
  private readonly freeTables: number[][] = [];
  /** Why the last {@link encode} stopped. */
  stop: KernelStop = KernelStop.Done;

  /**
   * The kernel, or undefined where it cannot run: without WebAssembly (`--jitless`), or on a
   * big-endian host (WebAssembly memory is little-endian; the rings are in the host's order).
   * The pipeline then encodes every record in JavaScript.
   * @param records most records encoded in one run
   */
  static create(protocol: Protocol, records: number): FrameKernel | undefined {
    if (typeof WebAssembly !== 'object' || !LITTLE_ENDIAN) return undefined;
    try {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(frameKernelWasm, 'base64')));
      return new FrameKernel(instance.exports, protocol, records);
    } catch {
      return undefined;
    }
  }

  private constructor(exports: Record<string, unknown>, protocol: Protocol, records: number) {
    this.memory = exports['memory'] as WasmMemory;
    this.run = exports['encode'] as (...args: number[]) => number;
    this.seed = protocol === 'seed' ? 1 : 0;
    this.recsAt = 64;
    this.endsAt = this.recsAt + records * RECORD_BYTES;
    this.outAt = this.endsAt + ENDS_BYTES;
    this.arenaAt = this.outAt + OUT_BYTES;
    this.tablesAt = this.tablesEnd = this.arenaAt + ARENA_BYTES;
    if (!this.reserve(this.tablesAt)) throw new RangeError('no memory for the frame kernel');
  }

  /** Starts a batch: every prefix learned before belongs to an earlier one. */
  begin(): void {
    this.arenaPos = this.arenaAt;
    if (++this.epoch < EPOCH_LIMIT) return;
    this.u8.fill(0, this.tablesAt, this.tablesEnd);
    this.epoch = 1;
  }

  /** Copies `n` records of `ring`, from ring position `h`, into the kernel's memory. */
  load(ring: RingReader, h: number, n: number): void {
    const { f64, mask } = ring.views;
    const from = (h & mask) * 2;
    const to = this.recsAt / 8;
    const first = Math.min(n, mask + 1 - (h & mask)); // up to the end of the ring
    this.f64.set(f64.subarray(from, from + first * 2), to);
    if (first < n) this.f64.set(f64.subarray(0, (n - first) * 2), to + first * 2);
  }

  /**
   * Encodes the loaded records from index `from` up to `to` and appends their frames to the
   * encoder's batch. Returns the index it stopped at; {@link stop} says why.
   */
  encode(ring: RingReader, from: number, to: number, encoder: FrameEncoder): number {
    const table = this.tables.get(ring);
    const i32 = this.i32;
    let i = from;
    for (;;) {
      // Frames and ends are written aligned as they will be in the encoder's slabs (see `alignment`).
      const align = encoder.alignment;
      const outAt = this.outAt + (align & 7);
      const endsAt = this.endsAt + (align >> 3);
      i = this.run(this.recsAt, i, to, table?.at ?? 0, table?.cap ?? 0, this.epoch, this.seed, outAt, this.arenaAt, endsAt, this.outAt, encoder.batchBytes, BATCH_BYTES);
      const out = i32[0]!;
      const ends = i32[1]!;
      if (ends !== endsAt) encoder.append(this.u8.subarray(outAt, out), this.u32.subarray(endsAt / 4, ends / 4));
      const status = i32[2]!;
      if (status !== OUT_FULL) {
        this.stop = status as KernelStop;
        return i;
      }
    }
  }

  /**
   * After the encoder wrote a record of `key` (local id `id` in `ring`): lets the kernel write
   * the key's later records of this batch, of the same shape, from the prefix the encoder
   * remembered.
   */
  learn(ring: RingReader, id: number, key: KeyEntry | undefined, encoder: FrameEncoder): void {
    if (key === undefined || key.stamp !== encoder.batch) return;
    let entry = this.entry(ring, id);
    if (entry < 0) return; // no memory for its table: the encoder keeps taking its records
    const i32 = this.i32;
    const epoch = this.epoch;
    if (i32[entry] === epoch && i32[entry + 1] === key.shape) return; // known already
    if (i32[entry + 4] === epoch && i32[entry + 5] === key.shape) return;
    const len = key.prefix.length;
    if (len > MAX_PREFIX || this.arenaPos + len > this.arenaAt + ARENA_BYTES) return;
    // The first slot unless it holds another shape of this batch; the second is then replaced.
    if (i32[entry] === epoch) entry += 4;
    this.u8.set(key.prefix, this.arenaPos);
    i32[entry] = epoch;
    i32[entry + 1] = key.shape;
    i32[entry + 2] = this.arenaPos;
    i32[entry + 3] = len;
    this.arenaPos += len;
  }

  /** Local id `id` of `ring` was given to another key. */
  forget(ring: RingReader, id: number): void {
    const table = this.tables.get(ring);
    if (table === undefined || id >= table.cap) return;
    const entry = (table.at + id * ENTRY_BYTES) / 4;
    this.i32[entry] = this.i32[entry + 4] = 0;
  }

  /** `ring` is gone: its table is freed. */
  drop(ring: RingReader): void {
    const table = this.tables.get(ring);
    if (table === undefined) return;
    this.tables.delete(ring);
    (this.freeTables[Math.log2(table.cap)] ??= []).push(table.at);
  }

  /** The i32 index of `ring`'s entry for `id`, its table made or grown to hold it; -1 if the memory cannot grow. */
  private entry(ring: RingReader, id: number): number {
    let table = this.tables.get(ring);
    if (table === undefined || id >= table.cap) {
      let cap = MIN_TABLE;
      while (cap <= id) cap *= 2;
      const at = this.allocate(cap);
      if (at < 0) return -1;
      if (table !== undefined) this.drop(ring); // its entries are only a cache: not copied
      table = { at, cap };
      this.tables.set(ring, table);
    }
    return (table.at + id * ENTRY_BYTES) / 4;
  }

  /** A zeroed table of `cap` entries: a freed one, or new memory; -1 if the memory cannot grow. */
  private allocate(cap: number): number {
    const bytes = cap * ENTRY_BYTES;
    let at = this.freeTables[Math.log2(cap)]?.pop();
    if (at === undefined) {
      if (!this.reserve(this.tablesEnd + bytes)) return -1;
      at = this.tablesEnd;
      this.tablesEnd += bytes;
    }
    this.u8.fill(0, at, at + bytes); // a table freed in this batch holds this epoch's entries
    return at;
  }

  /**
   * Grows the memory to at least `bytes` and (re)makes the views of it; false if it cannot grow
   * (past its maximum, 1 GiB, or the system refused).
   */
  private reserve(bytes: number): boolean {
    const have = this.memory.buffer.byteLength;
    if (bytes > have) {
      try {
        this.memory.grow(Math.ceil((bytes - have) / PAGE));
      } catch {
        return false;
      }
    }
    if (this.u8 !== undefined && this.u8.buffer === this.memory.buffer) return true;
    const b = this.memory.buffer;
    this.u8 = new Uint8Array(b);
    this.i32 = new Int32Array(b);
    this.u32 = new Uint32Array(b);
    this.f64 = new Float64Array(b);
    return true;
  }
}

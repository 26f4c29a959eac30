// The client's fast decoder: reads a length-delimited stream of either wire format frame by
// frame, recognising each metric's key by its raw bytes and decoding only timestamp and value.
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { ClientError } from './errors.js';
import { toClientEvent, type ClientEvent, type MetadataEvent, type MetricEvent, type MetricOp } from './events.js';
import { DEFAULT_MAX_FRAME_BYTES, FrameCursor } from './frame-cursor.js';
import { KeyInterner, type MetricKey } from './key-interner.js';
import { DEFAULT_MAX_KEY_BYTES, MAX_KEY_FRAME_BYTES, MAX_LABELS, MAX_NAME_LENGTH, keyTooLarge, maxUtf8Bytes, metadataTooLarge } from './limits.js';
import { detectProtocol, parseProtocol, type ClientProtocol } from './protocol.js';

export type { MetricKey };

/** The default {@link MetricReaderOptions.maxKeys}. */
export const DEFAULT_MAX_KEYS = 65_536;

/** Options of a {@link MetricReader}. */
export interface MetricReaderOptions {
  /**
   * The wire format. Default `'seed'`. `'auto'` tells from the first metric frame after each
   * {@link MetricReader.restart} (metadata frames are the same in both).
   */
  readonly protocol?: ClientProtocol | 'auto';
  /**
   * The most distinct keys (name + labels, as sent) remembered. Frames of further keys are
   * skipped without being decoded and counted in {@link MetricReader.refusedFrames}, so a
   * sender inventing names without end cannot grow memory without limit. Default 65 536
   * (the exporter's own `maxKeys` default is 10 000); `Infinity` for no limit.
   */
  readonly maxKeys?: number;
  /**
   * The most bytes of keys remembered (their name and label fields as sent). Frames of further
   * keys are skipped like those past `maxKeys`, and counted in {@link MetricReader.refusedFrames}
   * (and {@link MetricReader.refusedForBytes}). Default 16 MiB; `Infinity` for no limit.
   */
  readonly maxKeyBytes?: number;
  /** The largest frame accepted, in bytes. Default 16 MiB. */
  readonly maxFrameBytes?: number;
  /**
   * Skip a frame over `maxFrameBytes` as it streams in (nothing of it is held) and count it in
   * {@link MetricReader.tooLargeFrames}, instead of failing the stream with `FRAME_TOO_LARGE`:
   * for tools that read exporters they do not control. A length prefix over protobuf's 2 GiB
   * still fails. Default `false`.
   */
  readonly skipOversized?: boolean;
}

/** What {@link MetricReader.next} moved to. */
export type FrameKind = 'metric' | 'metadata';

// Wire tags (field number << 3 | wire type).
const EVENT_METRIC = 0x12;
const NAME = 0x0a;
const TIMESTAMP = 0x12;
const LABEL = 0x1a;
const SECONDS = 0x08;
const NANOS = 0x10;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const MAX_SAFE_BIG = BigInt(MAX_SAFE);
/** The longest a name or label field (tag, length, string) can be with its string within the limits. */
const MAX_FIELD_BYTES = 3 + maxUtf8Bytes(MAX_NAME_LENGTH);
/** What a key's bytes say of the limits (see `keySize`). */
const WITHIN = 0;
const MAYBE = 1;
const OVER = 2;
type KeySize = typeof WITHIN | typeof MAYBE | typeof OVER;

/**
 * A cursor over the metric stream an exporter sends: {@link push} each chunk as it arrives
 * (cut anywhere), then call {@link next} until it returns `undefined`. After `'metric'`, the
 * frame is in {@link key}, {@link op}, {@link value} (and {@link bigValue}), and the timestamp
 * fields; after `'metadata'`, in {@link metadata}. Everything is overwritten by the next call.
 *
 * Frames of one key repeat the same name and label bytes, so a key is interned by those bytes
 * (hashed and compared, never decoded again) and a metric frame costs a parse of its timestamp
 * and value: nothing is allocated per frame once every key was seen (a chunk costs one
 * `DataView`). Decoding agrees with protobuf-es `fromBinary` for every input: anything other
 * than the usual layout (one name, one timestamp, adjacent labels, one value, nothing
 * unknown) is decoded by `fromBinary` itself, as is the first frame of every key.
 *
 * ```ts
 * const reader = new MetricReader({ protocol: 'seed' });
 * const totals: number[] = []; // by key id
 * socket.on('data', (chunk) => {
 *   reader.push(chunk);
 *   for (let k; (k = reader.next()) !== undefined; ) {
 *     if (k === 'metric' && reader.op === 'counterIncrement') totals[reader.key.id] = (totals[reader.key.id] ?? 0) + reader.value;
 *   }
 * });
 * ```
 *
 * A malformed stream throws a `ClientError` (`FRAME_TOO_LARGE`, `BAD_LENGTH` or `DECODE`) from
 * `next()`, after the frames before it; every later call throws it again.
 */
export class MetricReader {
  /** After `'metric'`: the frame's key (the same object for every frame of it). */
  key: MetricKey = { id: -1, name: '', labels: {} };
  /** After `'metric'`: what was done (see {@link MetricOp}). */
  op: MetricOp['type'] = 'counterIncrement';
  /**
   * After `'metric'`: the value. Counters: exact up to 2^53 − 1; a larger one (a uint64 on the
   * wire) is here rounded and exact in {@link bigValue}.
   */
  value = 0;
  /** After a counter op: its exact value when it is above 2^53 − 1, else `undefined`. */
  bigValue: bigint | undefined = undefined;
  /** After `'metric'`: whether the frame has a timestamp; then {@link seconds} and {@link nanos} hold it. */
  hasTimestamp = false;
  /** Seconds since the Unix epoch (exact up to 2^53; {@link event} has the exact int64). */
  seconds = 0;
  nanos = 0;
  /** After `'metadata'`: the registration. */
  metadata: MetadataEvent | undefined = undefined;
  /**
   * Frames skipped because their key was new and {@link MetricReaderOptions.maxKeys} keys, or
   * {@link MetricReaderOptions.maxKeyBytes} bytes of keys, are held.
   */
  refusedFrames = 0;
  /** Of {@link refusedFrames}, those refused for `maxKeyBytes`. */
  refusedForBytes = 0;
  /** The largest frame accepted, in bytes. */
  readonly maxFrameBytes: number;
  /** The most keys remembered. */
  readonly maxKeys: number;
  /** The most bytes of keys remembered. */
  readonly maxKeyBytes: number;

  private readonly cursor: FrameCursor;
  private readonly keys = new KeyInterner();
  /** Chunks are copied here (one memcpy) so that one DataView serves them all: nothing per chunk. */
  private own = new Uint8Array(64 * 1024);
  private ownView = new DataView(this.own.buffer);
  private readonly protocol: ClientProtocol | 'auto';
  /** With `'auto'`: the format seen since the last restart, once a metric frame told. */
  private detected: ClientProtocol | undefined;
  private secondsBig: bigint | undefined;
  private failure: ClientError | undefined;
  /** Frames over the limits on names, labels and descriptions (those over maxFrameBytes are the cursor's). */
  private tooLarge = 0;
  /** Read position within the frame being parsed. */
  private p = 0;
  // The key's spans in the frame being parsed: the name field and the run of label fields.
  private nameStart = 0;
  private nameEnd = 0;
  private labelsStart = 0;
  private labelsEnd = 0;
  // The last timestamp parsed: its length, words (see timestamp()) and values.
  private tsLen = 0;
  private readonly tsWords = new Int32Array(3);
  private tsSeconds = 0;
  private tsNanos = 0;

  /** @throws TypeError for an unknown protocol; RangeError for a bad `maxKeys`, `maxKeyBytes` or `maxFrameBytes`. */
  constructor(options: MetricReaderOptions = {}) {
    this.protocol = parseProtocol(options.protocol ?? 'seed');
    this.cursor = new FrameCursor(options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, options.skipOversized ?? false);
    this.maxFrameBytes = this.cursor.maxFrameBytes;
    this.maxKeys = positiveOrInfinity('maxKeys', options.maxKeys ?? DEFAULT_MAX_KEYS);
    this.maxKeyBytes = positiveOrInfinity('maxKeyBytes', options.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES);
  }

  /** Distinct keys remembered. */
  get keyCount(): number {
    return this.keys.size;
  }

  /** Bytes of the keys remembered (their name and label fields as sent). */
  get keyBytes(): number {
    return this.keys.bytes;
  }

  /**
   * Frames skipped because something in them was over the exporter's limits (see `limits.ts`:
   * a name or label over 1024 characters, more than 64 labels, a unit or description over
   * 4096), or, with `skipOversized`, the frame was over `maxFrameBytes`. None of it is kept.
   */
  get tooLargeFrames(): number {
    return this.tooLarge + this.cursor.skippedFrames;
  }

  /**
   * Forgets every key (a tool that forgot their series makes room): later frames intern their
   * keys afresh, with new ids, so whatever is indexed by `key.id` must be cleared too.
   */
  forgetKeys(): void {
    this.keys.clear();
  }

  /** Bytes of an unfinished frame held (its length prefix included); 0 between frames. */
  get pendingBytes(): number {
    return this.cursor.pendingBytes;
  }

  /**
   * Takes the next chunk of the stream (copied: `chunk` is yours again at once).
   * @throws TypeError when the previous chunk was not read to its end; the stream's error if
   *   it failed.
   */
  push(chunk: Uint8Array): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.cursor.unread) this.cursor.push(chunk); // throws the misuse
    if (chunk.length > this.own.length) {
      this.own = new Uint8Array(chunk.length);
      this.ownView = new DataView(this.own.buffer);
    }
    this.own.set(chunk);
    this.cursor.push(this.own, this.ownView, chunk.length);
  }

  /**
   * Moves to the next frame of the chunk: `'metric'` or `'metadata'`, or `undefined` once the
   * chunk is used up.
   * @throws ClientError when the stream is malformed.
   */
  next(): FrameKind | undefined {
    if (this.failure !== undefined) throw this.failure;
    const c = this.cursor;
    try {
      while (c.next()) {
        const kind = this.read(c.buf, c.view, c.start, c.end);
        if (kind !== undefined) return kind;
      }
    } catch (err) {
      this.failure = err as ClientError;
      throw err;
    }
    return undefined;
  }

  /** The current frame as a typed event (a new object). */
  event(): ClientEvent {
    if (this.metadata !== undefined) return this.metadata;
    const type = this.op;
    const op = (
      type === 'counterIncrement' || type === 'counterSet' ? { type, value: this.bigValue ?? BigInt(this.value) } : { type, value: this.value }
    ) as MetricOp;
    const e: MetricEvent = { kind: 'metric', name: this.key.name, labels: { ...this.key.labels }, op };
    if (this.hasTimestamp) e.timestamp = { seconds: this.secondsBig ?? BigInt(this.seconds), nanos: this.nanos };
    return e;
  }

  /**
   * A new connection starts: an unfinished frame is dropped and, with `'auto'`, the format is
   * told afresh. Known keys are kept (their bytes mean the same in both formats).
   */
  restart(): void {
    this.cursor.restart();
    this.detected = undefined;
  }

  /** Reads one frame; `undefined` when it was refused (see {@link refusedFrames}, {@link tooLargeFrames}). */
  private read(buf: Uint8Array, view: DataView, start: number, end: number): FrameKind | undefined {
    const seed = this.seedFormat(buf, start, end);
    this.metadata = undefined;
    if (!this.parse(buf, view, start, end, seed)) return this.readSlowly(buf.subarray(start, end), seed);
    let key = this.keys.lookup(buf, view, this.nameStart, this.nameEnd, this.labelsStart, this.labelsEnd);
    if (key === undefined) {
      // The first frame of a key goes through fromBinary: it checks the name and labels (UTF-8,
      // map entries) and decodes them, once. A key over the limits by its bytes alone is never
      // decoded; one its bytes leave in doubt is, to tell (before a full reader refuses it).
      // (No closure here: a closure over this function's locals would cost an allocation per frame.)
      const size = this.keySize(buf);
      if (size === OVER) return this.skipTooLarge();
      let ev: MetricEvent | undefined;
      if (size === MAYBE && keyTooLarge((ev = decodeMetric(buf, start, end, seed)).name, ev.labels)) return this.skipTooLarge();
      if (this.noRoomFor(this.nameEnd - this.nameStart + this.labelsEnd - this.labelsStart)) return undefined;
      ev ??= decodeMetric(buf, start, end, seed);
      key = this.keys.add(buf, this.nameStart, this.nameEnd, this.labelsStart, this.labelsEnd, ev.name, sorted(ev.labels));
    }
    this.key = key;
    return 'metric';
  }

  /** Whether a new key of `bytes` bytes is past `maxKeys` or `maxKeyBytes`: then its frame is counted as refused. */
  private noRoomFor(bytes: number): boolean {
    const forBytes = this.keys.bytes + bytes > this.maxKeyBytes;
    if (!forBytes && this.keys.size < this.maxKeys) return false;
    this.refusedFrames++;
    if (forBytes) this.refusedForBytes++;
    return true;
  }

  /**
   * What the bytes of the key parsed by {@link parse} say of the limits: {@link OVER} when its
   * name, or a label entry, is longer than any within the limits can be (or there are more
   * than 64 labels), {@link WITHIN} when every string is 1024 bytes at most (so 1024
   * characters at most), else {@link MAYBE}: it takes decoding to tell.
   */
  private keySize(buf: Uint8Array): KeySize {
    // A field is its tag, a length of at most 2 bytes (a string within the limits is under 16 KiB), the string.
    const name = this.nameEnd - this.nameStart;
    if (name > MAX_FIELD_BYTES) return OVER;
    let size: KeySize = name > MAX_NAME_LENGTH ? MAYBE : WITHIN;
    let labels = 0;
    for (this.p = this.labelsStart; this.p < this.labelsEnd; labels++) {
      this.p++; // the label field's tag
      const n = this.varint(buf, this.labelsEnd); // an entry: a name field and a value field
      if (labels >= MAX_LABELS || n > 2 * MAX_FIELD_BYTES) return OVER;
      if (n > MAX_NAME_LENGTH) size = MAYBE;
      this.p += n;
    }
    return size;
  }

  private skipTooLarge(): undefined {
    this.tooLarge++;
    return undefined;
  }

  /** A frame in another layout than the usual, decoded with `fromBinary`. */
  private readSlowly(frame: Uint8Array, seed: boolean): FrameKind | undefined {
    // Longer than any frame within the limits can be: never decoded.
    if (frame.length > MAX_KEY_FRAME_BYTES) return this.skipTooLarge();
    const ev = toClientEvent(frame, seed ? 'seed' : 'observer-0.11');
    if (ev.kind === 'metadata') {
      if (metadataTooLarge(ev)) return this.skipTooLarge();
      this.metadata = ev;
      return 'metadata';
    }
    if (keyTooLarge(ev.name, ev.labels)) return this.skipTooLarge();
    // Interned by a canonical encoding of the name and labels (the frame's own may be spread).
    const w = new BinaryWriter().tag(1, WireType.LengthDelimited).string(ev.name);
    const labels = sorted(ev.labels);
    for (const k in labels) w.tag(3, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(k).tag(2, WireType.LengthDelimited).string(labels[k]!).join();
    const bytes = w.finish();
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = bytes.length;
    let key = this.keys.lookup(bytes, view, 0, n, n, n);
    if (key === undefined) {
      if (this.noRoomFor(n)) return undefined;
      key = this.keys.add(bytes, 0, n, n, n, ev.name, labels);
    }
    this.key = key;
    this.op = ev.op.type;
    const v = ev.op.value;
    this.value = Number(v);
    this.bigValue = typeof v === 'bigint' && v > MAX_SAFE_BIG ? v : undefined;
    this.hasTimestamp = ev.timestamp !== undefined;
    const s = ev.timestamp?.seconds ?? 0n;
    this.seconds = Number(s);
    this.secondsBig = s > MAX_SAFE_BIG || s < -MAX_SAFE_BIG ? s : undefined;
    this.nanos = ev.timestamp?.nanos ?? 0;
    return 'metric';
  }

  private seedFormat(buf: Uint8Array, start: number, end: number): boolean {
    if (this.protocol !== 'auto') return this.protocol === 'seed';
    this.detected ??= detectProtocol(buf.subarray(start, end));
    return this.detected !== 'observer-0.11'; // undecided: metadata decodes the same either way
  }

  /**
   * Parses a metric frame in the usual layout: `Event.metric` holding one name field, at most
   * one timestamp (seconds and nanos at most once each), label fields next to each other, and
   * one value field of `seed`'s format, in any order. `false` for anything else.
   */
  private parse(buf: Uint8Array, view: DataView, start: number, end: number, seed: boolean): boolean {
    if (end - start < 2 || buf[start] !== EVENT_METRIC) return false;
    this.p = start + 1;
    const len = this.varint(buf, end);
    if (len < 0 || this.p + len !== end) return false;
    let hasName = false;
    let hasLabels = false;
    let hasValue = false;
    this.nameStart = this.nameEnd = this.labelsStart = this.labelsEnd = 0;
    this.hasTimestamp = false;
    this.seconds = 0;
    this.nanos = 0;
    this.secondsBig = undefined;
    this.bigValue = undefined;
    while (this.p < end) {
      const at = this.p;
      const tag = buf[this.p++]!;
      if (tag === NAME || tag === LABEL) {
        const n = this.varint(buf, end);
        if (n < 0 || this.p + n > end) return false;
        this.p += n;
        if (tag === NAME) {
          if (hasName) return false;
          hasName = true;
          this.nameStart = at;
          this.nameEnd = this.p;
        } else if (!hasLabels) {
          hasLabels = true;
          this.labelsStart = at;
          this.labelsEnd = this.p;
        } else if (this.labelsEnd === at) {
          this.labelsEnd = this.p;
        } else {
          return false;
        }
      } else if (tag === TIMESTAMP) {
        if (this.hasTimestamp || !this.timestamp(buf, view, end)) return false;
      } else {
        if (hasValue || !(seed ? this.seedValue(buf, view, tag, end) : this.observerValue(buf, view, tag, end))) return false;
        hasValue = true;
      }
    }
    return hasValue;
  }

  /**
   * `Metric.timestamp` after its tag. Frames of one batch carry the same timestamp bytes: a
   * timestamp of 4 to 12 bytes equal to the last one parsed (compared as three overlapping
   * 4-byte words) is not parsed again.
   */
  private timestamp(buf: Uint8Array, view: DataView, end: number): boolean {
    const n = this.varint(buf, end);
    if (n < 0 || this.p + n > end) return false;
    const e = this.p + n;
    const known = n >= 4 && n <= 12;
    let w0 = 0;
    let w1 = 0;
    let w2 = 0;
    if (known) {
      w0 = view.getInt32(this.p, true);
      w1 = n >= 8 ? view.getInt32(this.p + 4, true) : 0;
      w2 = view.getInt32(e - 4, true);
      if (n === this.tsLen && w0 === this.tsWords[0] && w1 === this.tsWords[1] && w2 === this.tsWords[2]) {
        this.seconds = this.tsSeconds;
        this.nanos = this.tsNanos;
        this.hasTimestamp = true;
        this.p = e;
        return true;
      }
    }
    let seconds = false;
    let nanos = false;
    while (this.p < e) {
      const tag = buf[this.p++]!;
      const v = this.varint(buf, e);
      if (v < 0) return false;
      if (tag === SECONDS && !seconds) {
        seconds = true;
        this.seconds = v;
      } else if (tag === NANOS && !nanos && v <= 0x7fffffff) {
        nanos = true;
        this.nanos = v;
      } else {
        return false;
      }
    }
    this.hasTimestamp = true;
    if (known) {
      this.tsLen = n;
      this.tsWords[0] = w0;
      this.tsWords[1] = w1;
      this.tsWords[2] = w2;
      this.tsSeconds = this.seconds;
      this.tsNanos = this.nanos;
    }
    return true;
  }

  /** The seed's `Counter`, `Gauge` or `Histogram` message after its tag. */
  private seedValue(buf: Uint8Array, view: DataView, tag: number, end: number): boolean {
    const p = this.p;
    if (tag === 0x22) {
      // Counter { uint64 value = 1 }; empty when the value is 0.
      this.op = 'counterIncrement';
      const n = this.varint(buf, end);
      if (n === 0) {
        this.value = 0;
        return true;
      }
      const e = this.p + n;
      if (n < 0 || e > end || buf[this.p++] !== 0x08) return false;
      return this.u64(buf, e) && this.p === e;
    }
    if (tag === 0x2a) {
      // Gauge { oneof { double absolute = 1; increment = 2; decrement = 3 } }
      if (p + 10 > end || buf[p] !== 9) return false;
      const t = buf[p + 1];
      if (t === 0x09) this.op = 'gaugeSet';
      else if (t === 0x11) this.op = 'gaugeIncrement';
      else if (t === 0x19) this.op = 'gaugeDecrement';
      else return false;
      this.value = view.getFloat64(p + 2, true);
      this.p = p + 10;
      return true;
    }
    if (tag === 0x32) {
      // Histogram { double value = 1 }; empty when the value is +0.
      this.op = 'histogramRecord';
      if (p < end && buf[p] === 0) {
        this.value = 0;
        this.p = p + 1;
        return true;
      }
      if (p + 10 > end || buf[p] !== 9 || buf[p + 1] !== 0x09) return false;
      this.value = view.getFloat64(p + 2, true);
      this.p = p + 10;
      return true;
    }
    return false;
  }

  /** observer-0.11's `operation` after its tag. */
  private observerValue(buf: Uint8Array, view: DataView, tag: number, end: number): boolean {
    if (tag === 0x20 || tag === 0x28) {
      this.op = tag === 0x20 ? 'counterIncrement' : 'counterSet';
      return this.u64(buf, end);
    }
    if (tag === 0x31) this.op = 'gaugeIncrement';
    else if (tag === 0x39) this.op = 'gaugeDecrement';
    else if (tag === 0x41) this.op = 'gaugeSet';
    else if (tag === 0x49) this.op = 'histogramRecord';
    else return false;
    if (this.p + 8 > end) return false;
    this.value = view.getFloat64(this.p, true);
    this.p += 8;
    return true;
  }

  /** A varint of at most 5 bytes at `p` (a length, seconds, nanos); -1 if longer or cut. */
  private varint(buf: Uint8Array, end: number): number {
    const p = this.p;
    if (p < end) {
      const b = buf[p]!;
      if (b < 0x80) {
        this.p = p + 1;
        return b;
      }
    }
    return this.longVarint(buf, end);
  }

  private longVarint(buf: Uint8Array, end: number): number {
    let p = this.p;
    let v = 0;
    for (let mul = 1; mul <= 0x10000000 && p < end; mul *= 128) {
      const b = buf[p++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) {
        this.p = p;
        return v;
      }
    }
    return -1;
  }

  /** A uint64 varint into {@link value} and {@link bigValue}; `false` if cut or over 64 bits. */
  private u64(buf: Uint8Array, end: number): boolean {
    let p = this.p;
    let v = 0;
    // Up to 7 bytes (49 bits) a number is exact; longer ones (values from 2^49) are rare.
    for (let mul = 1; mul <= 2 ** 42 && p < end; mul *= 128) {
      const b = buf[p++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) {
        this.p = p;
        this.value = v;
        return true;
      }
    }
    if (p - this.p < 7) return false;
    let big = BigInt(v);
    for (let i = 7n; i < 10n && p < end; i++) {
      const b = buf[p++]!;
      if (i === 9n && b > 1) return false;
      big += BigInt(b & 0x7f) << (7n * i);
      if (b < 0x80) {
        this.p = p;
        this.value = Number(big);
        this.bigValue = big > MAX_SAFE_BIG ? big : undefined;
        return true;
      }
    }
    return false;
  }
}

/** The metric frame `buf[start, end)`, decoded with `fromBinary`. */
function decodeMetric(buf: Uint8Array, start: number, end: number, seed: boolean): MetricEvent {
  return toClientEvent(buf.subarray(start, end), seed ? 'seed' : 'observer-0.11') as MetricEvent;
}

function positiveOrInfinity(name: string, n: number): number {
  if (n !== Number.POSITIVE_INFINITY && (!Number.isSafeInteger(n) || n <= 0)) throw new RangeError(`${name} must be a positive integer or Infinity, got ${n}`);
  return n;
}

/** `labels` with their names in ascending order. */
function sorted(labels: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

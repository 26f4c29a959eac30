// Walks a length-delimited byte stream frame by frame, without allocating per frame.
import { ClientError } from './errors.js';

/** The default limit on one frame: 16 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** A uint64 varint takes at most 10 bytes. */
const MAX_VARINT_BYTES = 10;
/** No protobuf message is larger (2 GiB): a longer length prefix is never a frame, even to skip. */
const MAX_MESSAGE_BYTES = 2 ** 31;

const EMPTY = new Uint8Array(0);

/**
 * A cursor over a stream of frames, each a varint length prefix followed by that many bytes
 * (what `sizeDelimitedEncode` writes). {@link push} a chunk, then call {@link next} until it
 * returns `false`; after each `true`, the frame body is `buf[start, end)` (with `view` over
 * the same bytes), valid until the next call.
 *
 * A frame that lies within one chunk is read in place; a frame split across chunks is copied
 * into a carry buffer that is kept and reused (it grows to the largest split frame seen, at
 * most `maxFrameBytes`). After it throws, the stream is unusable: every later call throws the
 * same error.
 *
 * With `skipOversized`, a frame over `maxFrameBytes` (but within protobuf's 2 GiB) is not an
 * error: its bytes are passed over as they arrive, nothing of it held, and counted in
 * {@link skippedFrames}.
 */
export class FrameCursor {
  /** The largest frame body accepted, in bytes. */
  readonly maxFrameBytes: number;
  /** Frames passed over because they were larger than `maxFrameBytes` (with `skipOversized`). */
  skippedFrames = 0;
  /** The current frame's bytes: the chunk, or the carry buffer. */
  buf: Uint8Array = EMPTY;
  /** A DataView over `buf` (offsets are `buf`'s). */
  view: DataView = new DataView(EMPTY.buffer);
  /** The current frame body is `buf[start, end)`. */
  start = 0;
  end = 0;
  private chunk: Uint8Array = EMPTY;
  private chunkView: DataView = this.view;
  private pos = 0;
  /** Where the bytes pushed end in `chunk`. */
  private chunkEnd = 0;
  private len = 0;
  private lenBytes = 0;
  private carry: Uint8Array = EMPTY;
  private carryView: DataView = this.view;
  /** Length of the frame being assembled in `carry`, or -1. */
  private carrying = -1;
  private filled = 0;
  /** Bytes of an oversized frame still to pass over. */
  private skipping = 0;
  private failure: ClientError | undefined;

  /** @throws RangeError unless `maxFrameBytes` is a positive safe integer. */
  constructor(
    maxFrameBytes = DEFAULT_MAX_FRAME_BYTES,
    private readonly skipOversized = false,
  ) {
    if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes <= 0) {
      throw new RangeError(`maxFrameBytes must be a positive integer, got ${maxFrameBytes}`);
    }
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes of an unfinished frame held (its length prefix included); 0 between frames and while skipping one. */
  get pendingBytes(): number {
    return this.lenBytes + (this.carrying >= 0 ? this.filled : 0);
  }

  /** Whether the last chunk pushed still has bytes that {@link next} has not walked. */
  get unread(): boolean {
    return this.pos < this.chunkEnd;
  }

  /**
   * Takes the next chunk of the stream: `chunk[0, end)`, with `view` a DataView over `chunk`
   * (pass one that you keep, with a buffer that you reuse, and nothing is allocated). Do not
   * change those bytes until {@link next} returned `false` for them.
   * @throws TypeError when the previous chunk was not read to its end; the stream's error
   *   if it failed.
   */
  push(chunk: Uint8Array, view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength), end = chunk.length): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.unread) throw new TypeError('push() before next() returned false for the previous chunk');
    this.chunk = chunk;
    this.chunkView = view;
    this.chunkEnd = end;
    this.pos = 0;
  }

  /**
   * Moves to the next complete frame of the chunk; `false` once the chunk is used up (the
   * start of a frame it cut is kept for the next chunk).
   * @throws ClientError `FRAME_TOO_LARGE` when a length prefix exceeds `maxFrameBytes`, or
   *   `BAD_LENGTH` when it is longer than 10 bytes.
   */
  next(): boolean {
    if (this.failure !== undefined) throw this.failure;
    const chunk = this.chunk;
    const end = this.chunkEnd;
    let pos = this.pos;
    while (pos < end) {
      if (this.skipping > 0) {
        const n = Math.min(this.skipping, end - pos);
        pos += n;
        this.skipping -= n;
        continue;
      }
      if (this.carrying >= 0) {
        const n = Math.min(this.carrying - this.filled, end - pos);
        // A short piece is copied byte by byte: subarray() would allocate a view.
        if (n < 256) for (let i = 0; i < n; i++) this.carry[this.filled + i] = chunk[pos + i]!;
        else this.carry.set(chunk.subarray(pos, pos + n), this.filled);
        this.filled += n;
        pos += n;
        if (this.filled < this.carrying) continue;
        this.pos = pos;
        this.at(this.carry, this.carryView, 0, this.carrying);
        this.carrying = -1;
        this.filled = 0;
        return true;
      }
      const b = chunk[pos++]!;
      this.len += (b & 0x7f) * 2 ** (7 * this.lenBytes++);
      // Later bytes only add to the length, so this can fail before the prefix ends.
      if (this.len > (this.skipOversized ? MAX_MESSAGE_BYTES : this.maxFrameBytes)) {
        throw this.fail('FRAME_TOO_LARGE', `a frame announces ${this.len} bytes or more, over ${this.skipOversized ? "protobuf's 2 GiB" : `maxFrameBytes (${this.maxFrameBytes})`}`);
      }
      if (b >= 0x80) {
        if (this.lenBytes === MAX_VARINT_BYTES) throw this.fail('BAD_LENGTH', 'a length prefix is longer than 10 bytes');
        continue;
      }
      const len = this.len;
      this.len = 0;
      this.lenBytes = 0;
      if (len > this.maxFrameBytes) {
        this.skippedFrames++;
        this.skipping = len;
        continue;
      }
      if (end - pos >= len) {
        this.pos = pos + len;
        this.at(chunk, this.chunkView, pos, pos + len);
        return true;
      }
      if (this.carry.length < len) {
        this.carry = new Uint8Array(Math.min(this.maxFrameBytes, Math.max(len, 2 * this.carry.length)));
        this.carryView = new DataView(this.carry.buffer);
      }
      this.carrying = len;
      this.filled = 0;
    }
    this.pos = pos;
    return false;
  }

  /** Forgets an unfinished frame and the rest of the chunk: a new connection starts. */
  restart(): void {
    this.chunk = EMPTY;
    this.chunkEnd = 0;
    this.pos = 0;
    this.len = 0;
    this.lenBytes = 0;
    this.carrying = -1;
    this.filled = 0;
    this.skipping = 0;
  }

  private at(buf: Uint8Array, view: DataView, start: number, end: number): void {
    this.buf = buf;
    this.view = view;
    this.start = start;
    this.end = end;
  }

  private fail(code: 'FRAME_TOO_LARGE' | 'BAD_LENGTH', message: string): ClientError {
    this.carrying = -1;
    this.failure = new ClientError(code, message);
    return this.failure;
  }
}

import { ClientError } from './errors.js';

/** The default {@link FrameDecoder} limit on one frame: 16 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** A uint64 varint takes at most 10 bytes. */
const MAX_VARINT_BYTES = 10;

/**
 * Splits a byte stream into frames, each a varint length prefix followed by that many bytes
 * (what `sizeDelimitedEncode` writes). Feed it chunks as they arrive, cut anywhere.
 *
 * A frame that lies within one chunk is returned as a view of that chunk (no copy); a frame
 * split across chunks is copied once into a buffer of its exact size, allocated when its
 * length is known. So it holds at most `maxFrameBytes` bytes, plus up to 10 bytes of a length
 * prefix that it keeps as a number.
 *
 * After it throws, the stream is unusable: every later `push()` throws the same error.
 */
export class FrameDecoder {
  /** The largest frame body accepted, in bytes. */
  readonly maxFrameBytes: number;
  private len = 0;
  private lenBytes = 0;
  private body: Uint8Array | undefined;
  private filled = 0;
  private failure: ClientError | undefined;

  /** @throws RangeError unless `maxFrameBytes` is a positive safe integer. */
  constructor(maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {
    if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes <= 0) {
      throw new RangeError(`maxFrameBytes must be a positive integer, got ${maxFrameBytes}`);
    }
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes of an unfinished frame held (its length prefix included); 0 between frames. */
  get pendingBytes(): number {
    return this.lenBytes + this.filled;
  }

  /**
   * Takes the next chunk of the stream and returns the frame bodies it completes, in order,
   * appended to `frames` if given. They may be views of `chunk`: do not reuse `chunk` while
   * you need them.
   * @throws ClientError `FRAME_TOO_LARGE` when a length prefix exceeds `maxFrameBytes`, or
   *   `BAD_LENGTH` when it is longer than 10 bytes. Frames the chunk completed before that are
   *   in `frames` then, if you passed it.
   */
  push(chunk: Uint8Array, frames: Uint8Array[] = []): Uint8Array[] {
    if (this.failure !== undefined) throw this.failure;
    const end = chunk.length;
    let pos = 0;
    while (pos < end) {
      if (this.body !== undefined) {
        const n = Math.min(this.body.length - this.filled, end - pos);
        this.body.set(chunk.subarray(pos, pos + n), this.filled);
        this.filled += n;
        pos += n;
        if (this.filled === this.body.length) {
          frames.push(this.body);
          this.body = undefined;
          this.filled = 0;
        }
        continue;
      }
      const b = chunk[pos++]!;
      this.len += (b & 0x7f) * 2 ** (7 * this.lenBytes++);
      // Later bytes only add to the length, so this can fail before the prefix ends.
      if (this.len > this.maxFrameBytes) {
        throw this.fail('FRAME_TOO_LARGE', `a frame announces ${this.len} bytes or more, over maxFrameBytes (${this.maxFrameBytes})`);
      }
      if (b >= 0x80) {
        if (this.lenBytes === MAX_VARINT_BYTES) throw this.fail('BAD_LENGTH', 'a length prefix is longer than 10 bytes');
        continue;
      }
      const len = this.len;
      this.len = 0;
      this.lenBytes = 0;
      if (end - pos >= len) {
        frames.push(chunk.subarray(pos, pos + len));
        pos += len;
      } else {
        this.body = new Uint8Array(len);
      }
    }
    return frames;
  }

  private fail(code: 'FRAME_TOO_LARGE' | 'BAD_LENGTH', message: string): ClientError {
    this.body = undefined;
    this.failure = new ClientError(code, message);
    return this.failure;
  }
}

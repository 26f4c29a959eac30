import { DEFAULT_MAX_FRAME_BYTES, FrameCursor } from './frame-cursor.js';

export { DEFAULT_MAX_FRAME_BYTES };

/**
 * Splits a byte stream into frames, each a varint length prefix followed by that many bytes
 * (what `sizeDelimitedEncode` writes), returned as byte arrays. Feed it chunks as they arrive,
 * cut anywhere. ({@link MetricReader} reads metric frames without making an array per frame.)
 *
 * A frame that lies within one chunk is returned as a view of that chunk (no copy); a frame
 * split across chunks is returned as a copy of its own. It holds at most `maxFrameBytes` bytes
 * of an unfinished frame, plus up to 10 bytes of a length prefix that it keeps as a number.
 *
 * After it throws, the stream is unusable: every later `push()` throws the same error. With
 * `skipOversized`, a frame over `maxFrameBytes` is passed over (nothing of it held) and counted
 * in {@link skippedFrames} instead.
 */
export class FrameDecoder {
  private readonly cursor: FrameCursor;

  /** @throws RangeError unless `maxFrameBytes` is a positive safe integer. */
  constructor(maxFrameBytes = DEFAULT_MAX_FRAME_BYTES, skipOversized = false) {
    this.cursor = new FrameCursor(maxFrameBytes, skipOversized);
  }

  /** Frames passed over because they were larger than `maxFrameBytes` (with `skipOversized`). */
  get skippedFrames(): number {
    return this.cursor.skippedFrames;
  }

  /** The largest frame body accepted, in bytes. */
  get maxFrameBytes(): number {
    return this.cursor.maxFrameBytes;
  }

  /** Bytes of an unfinished frame held (its length prefix included); 0 between frames. */
  get pendingBytes(): number {
    return this.cursor.pendingBytes;
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
    const c = this.cursor;
    c.push(chunk);
    while (c.next()) frames.push(c.buf === chunk ? chunk.subarray(c.start, c.end) : c.buf.slice(c.start, c.end));
    return frames;
  }
}

import type { Socket } from 'node:net';
import type { Chunk } from '../encoder.js';
import type { Counters } from '../stats.js';

/**
 * Bytes a client's socket may hold before we stop handing it frames. Frames given to the
 * socket are always written whole; what waits beyond this stays in the client's queue, where
 * it can be dropped (oldest first) without tearing a frame.
 */
const SOCKET_HIGH_WATER = 256 * 1024;
/**
 * Metadata goes straight to the socket (it is never dropped for queue space), but a client
 * that stopped reading while names are registered again and again must not grow the socket's
 * buffer without bound: past this much unsent data, metadata for it is dropped and counted.
 */
const DIRECT_LIMIT = 4 * 1024 * 1024;

/** Frames of one chunk that this client has not handed to its socket yet. */
interface Pending {
  readonly chunk: Chunk;
  /** Index of the first frame still to send. */
  first: number;
}

function frameStart(chunk: Chunk, i: number): number {
  return i === 0 ? 0 : chunk.ends[i - 1]!;
}

/**
 * One connected client: a bounded queue of frames (drop oldest when full, the seed's rule),
 * written to the socket in large batches (one `writev` for many chunks).
 */
export class Client {
  private readonly queue: Pending[] = [];
  private queueHead = 0;
  /** Frames in the queue. */
  private queued = 0;
  /** Frames handed to the socket whose write has not completed. */
  private inFlight = 0;
  private closed = false;

  constructor(
    readonly socket: Socket,
    private readonly limit: number,
    private readonly counters: Counters,
    private readonly onGone: (c: Client) => void,
  ) {
    socket.setNoDelay(true);
    // Whatever a client sends is read and thrown away, so it can never fill our memory.
    socket.resume();
    socket.on('drain', () => this.pump());
    socket.on('error', () => this.gone());
    socket.on('close', () => this.gone());
  }

  /** Writes frames that must not be dropped (metadata) straight to the socket, in order. */
  sendDirect(bytes: Uint8Array, frames: number): void {
    if (this.closed) return;
    if (this.socket.writableLength > DIRECT_LIMIT) {
      this.counters.clientQueue += frames;
      this.counters.changed();
      return;
    }
    this.write(bytes, frames);
  }

  /** Queues a chunk's frames, dropping the oldest queued frames beyond the limit. */
  enqueue(chunk: Chunk): void {
    if (this.closed) return;
    this.queue.push({ chunk, first: 0 });
    this.queued += chunk.ends.length;
    if (this.queued > this.limit) this.dropOldest(this.queued - this.limit);
    this.pump();
  }

  /** True when everything queued has been written to the kernel. */
  get idle(): boolean {
    return this.queued === 0 && this.inFlight === 0;
  }

  /** Frames not delivered yet (queued or still in the socket's buffer). */
  get undelivered(): number {
    return this.queued + this.inFlight;
  }

  /** Ends the connection gracefully (after what the socket holds is sent). */
  end(): void {
    this.socket.end();
  }

  /** Closes at once; what is not delivered is counted as dropped. */
  destroy(): void {
    this.socket.destroy();
  }

  private dropOldest(n: number): void {
    this.counters.clientQueue += n;
    this.counters.changed();
    this.queued -= n;
    while (n > 0) {
      const p = this.queue[this.queueHead]!;
      const left = p.chunk.ends.length - p.first;
      if (left <= n) {
        n -= left;
        this.shift();
      } else {
        p.first += n;
        n = 0;
      }
    }
  }

  private shift(): void {
    this.queue[this.queueHead++] = undefined as unknown as Pending;
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    } else if (this.queueHead >= 1024 && this.queueHead * 2 >= this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  /** Hands queued frames to the socket while it has room; corked so that they go out together. */
  private pump(): void {
    if (this.closed || this.queued === 0 || this.socket.writableLength >= SOCKET_HIGH_WATER) return;
    this.socket.cork();
    while (this.queued > 0 && this.socket.writableLength < SOCKET_HIGH_WATER) {
      const p = this.queue[this.queueHead]!;
      const frames = p.chunk.ends.length - p.first;
      this.shift();
      this.queued -= frames;
      this.write(p.chunk.bytes.subarray(frameStart(p.chunk, p.first)), frames);
    }
    this.socket.uncork();
  }

  private write(bytes: Uint8Array, frames: number): void {
    this.inFlight += frames;
    this.socket.write(bytes, (err) => {
      this.inFlight -= frames;
      if (err) return;
      this.counters.framesSent += frames;
      this.counters.bytesSent += bytes.length;
      this.counters.changed();
    });
  }

  private gone(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.queueHead = 0;
    this.queued = 0;
    this.onGone(this);
  }
}

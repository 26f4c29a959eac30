import type { Socket } from 'node:net';
import type { Chunk } from '../chunk.js';
import type { Counters } from '../stats.js';
import { Loss, REPORT_EVERY_MS, type LossReport } from './loss-report.js';

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

/** What a span's frames are, which decides the figure they count in if they are lost. */
const enum Kind {
  /** Records: lost ones count in `dropped.clientQueue`. */
  Metric,
  /** Lost ones count in `dropped.metadata`. */
  Metadata,
  /** State frames (the in-band drop counter, replayed totals): not records, counted nowhere if lost. */
  State,
}

/** Frames of one chunk from `first` on: waiting in the queue, or written and not completed. */
interface Span {
  readonly chunk: Chunk;
  first: number;
  readonly kind: Kind;
}

function frameStart(chunk: Chunk, i: number): number {
  return i === 0 ? 0 : chunk.ends[i - 1]!;
}

/**
 * Bytes handed to `socket` that the kernel has not taken yet: what the stream still buffers
 * (not yet given to libuv) plus libuv's write queue. Node reports completed writes a loop
 * iteration late, so their callbacks cannot tell this at a given moment; these two internals
 * can (`_writableState.writelen`, `_handle.writeQueueSize`, both in Node since v12). Without
 * them, everything not completed counts as unsent.
 */
function unsentBytes(socket: Socket): number {
  const state = (socket as unknown as { _writableState?: { writing?: boolean; writelen?: number } })._writableState;
  const queue = (socket as unknown as { _handle?: { writeQueueSize?: number } | null })._handle?.writeQueueSize;
  if (typeof queue !== 'number' || typeof state?.writelen !== 'number') return socket.writableLength;
  return socket.writableLength - (state.writing === true ? state.writelen : 0) + queue;
}

/** What a client needs from the transport. */
export interface ClientContext {
  /** Metric frames the client's queue holds at most. */
  readonly limit: number;
  readonly counters: Counters;
  /** Encodes the in-band drop counter; null when self metrics are off. */
  readonly report: LossReport | null;
  /** The time, in ms since the epoch. */
  readonly now: () => number;
  /** Call the client's {@link Client.reportLoss} again at `at` (the clock of `now`). */
  readonly wakeAt: (at: number) => void;
  readonly onGone: (c: Client) => void;
}

/**
 * One connected client: a bounded queue of frames (drop oldest when full, the seed's rule),
 * written to the socket in large batches, with exact accounting: every frame is delivered
 * whole and counted in `framesSent`, or counted once as dropped.
 */
export class Client {
  /** Metric frames not handed to the socket yet. */
  private readonly queue: Span[] = [];
  private queueHead = 0;
  private queued = 0;
  /** Writes handed to the socket whose completion has not been reported, oldest first. */
  private readonly flight: Span[] = [];
  private flightHead = 0;
  private closed = false;
  /** The exporter gave up on it (close() deadline): later completions count nothing. */
  private abandoned = false;
  /** Records lost and not reported to it yet, indexed by {@link Loss}. */
  private readonly lost = new Float64Array(3);
  private lossPending = false;
  private described = false;
  private reportedAt = Number.NEGATIVE_INFINITY;
  private directLimit = DIRECT_LIMIT;
  private readonly written = (err?: Error | null): void => this.completed(err);

  constructor(
    readonly socket: Socket,
    private readonly ctx: ClientContext,
  ) {
    socket.setNoDelay(true);
    // Whatever a client sends is read and thrown away, so it can never fill our memory.
    socket.resume();
    socket.on('drain', () => this.pump());
    socket.on('error', () => this.gone());
    socket.on('close', () => this.gone());
  }

  /**
   * Sends the metadata a new client gets first. The limit on direct writes then counts from
   * the end of it: a large replay does not make the client lose the metadata that follows.
   */
  replay(chunk: Chunk): void {
    this.directLimit = DIRECT_LIMIT + chunk.bytes.length;
    this.sendDirect(chunk);
  }

  /** Sends the totals a new client gets after the metadata (`replayOnConnect`); takes over the chunk's use. */
  sendState(chunk: Chunk): void {
    if (this.closed) return chunk.release();
    this.write({ chunk, first: 0, kind: Kind.State });
  }

  /** Writes frames that are not dropped for queue space (metadata) straight to the socket, in order. */
  sendDirect(chunk: Chunk): void {
    if (this.closed) return;
    if (this.socket.writableLength > this.directLimit) {
      this.ctx.counters.metadataDropped += chunk.ends.length;
      this.ctx.counters.changed();
      return;
    }
    chunk.use();
    this.write({ chunk, first: 0, kind: Kind.Metadata });
  }

  /**
   * Queues a chunk's frames and gives the socket what it takes; then, if more than the limit
   * still wait, drops the oldest. A client that keeps up never loses a frame, however large
   * the batch.
   */
  enqueue(chunk: Chunk): void {
    if (this.closed) return;
    chunk.use();
    this.queue.push({ chunk, first: 0, kind: Kind.Metric });
    this.queued += chunk.ends.length;
    this.pump();
    if (this.queued > this.ctx.limit) this.dropOldest(this.queued - this.ctx.limit);
  }

  /** Adds to what this client lost; it is told in-band, at most every REPORT_EVERY_MS. */
  noteLoss(reason: Loss, n: number): void {
    if (this.closed || this.ctx.report === null || n === 0) return;
    this.lost[reason] += n;
    if (this.lossPending) return;
    this.lossPending = true;
    this.ctx.wakeAt(this.reportedAt + REPORT_EVERY_MS);
  }

  /** Sends the pending loss report if it is due and the socket has room (else asks to be called again). */
  reportLoss(): void {
    if (!this.lossPending || this.closed || this.abandoned) return;
    if (this.socket.writableLength >= SOCKET_HIGH_WATER) return; // 'drain' pumps, and reports, later
    this.writeReport(false);
  }

  /** True when every frame has been written to the kernel. */
  get idle(): boolean {
    return this.queued === 0 && this.flight.length === this.flightHead;
  }

  /** Sends what loss is left to report, whatever the time, then ends the connection once the socket has written it. */
  end(): void {
    if (this.lossPending && !this.closed) {
      this.socket.cork();
      this.writeReport(true);
      this.socket.uncork();
    }
    this.socket.end();
  }

  /**
   * Gives up on the client (close() ran out of time) and closes the connection. Frames it will
   * never get are counted as dropped: those still queued, and those handed to the socket that
   * the kernel has not wholly taken. A frame the kernel took only part of reaches the client
   * cut (its decoder sees the connection end inside a frame) and is counted as dropped.
   */
  abandon(): void {
    if (this.abandoned || this.closed) {
      this.socket.destroy();
      return;
    }
    this.abandoned = true;
    const c = this.ctx.counters;
    c.clientQueue += this.queued;
    let inFlight = 0;
    for (let i = this.flightHead; i < this.flight.length; i++) inFlight += spanBytes(this.flight[i]!);
    let accepted = Math.max(0, inFlight - unsentBytes(this.socket));
    for (let i = this.flightHead; i < this.flight.length; i++) {
      const { chunk, first, kind } = this.flight[i]!;
      const base = frameStart(chunk, first);
      for (let f = first; f < chunk.ends.length; f++) {
        const size = chunk.ends[f]! - (f === first ? base : chunk.ends[f - 1]!);
        if (size <= accepted) {
          accepted -= size;
          c.framesSent++;
          c.bytesSent += size;
        } else {
          accepted = 0; // a cut frame, then nothing after it
          if (kind === Kind.Metric) c.clientQueue++;
          else if (kind === Kind.Metadata) c.metadataDropped++;
        }
      }
    }
    c.changed();
    this.releaseAll();
    this.socket.destroy();
  }

  private dropOldest(n: number): void {
    this.ctx.counters.clientQueue += n;
    this.ctx.counters.changed();
    this.noteLoss(Loss.ClientQueue, n);
    this.queued -= n;
    while (n > 0) {
      const p = this.queue[this.queueHead]!;
      const left = p.chunk.ends.length - p.first;
      if (left <= n) {
        n -= left;
        this.shiftQueue();
        p.chunk.release();
      } else {
        p.first += n;
        n = 0;
      }
    }
  }

  private shiftQueue(): void {
    this.queueHead = shift(this.queue, this.queueHead);
  }

  /** Hands queued frames to the socket while it has room; corked so that they go out in one write. */
  private pump(): void {
    if (this.closed || this.abandoned || this.socket.writableLength >= SOCKET_HIGH_WATER) return;
    if (this.queued === 0 && !this.lossPending) return;
    this.socket.cork();
    if (this.lossPending) this.writeReport(false);
    while (this.queued > 0 && this.socket.writableLength < SOCKET_HIGH_WATER) {
      const p = this.queue[this.queueHead]!;
      this.shiftQueue();
      this.queued -= p.chunk.ends.length - p.first;
      this.write(p);
    }
    this.socket.uncork();
  }

  /** Writes the in-band drop counter (and, the first time, its metadata) if due, or if `force`. */
  private writeReport(force: boolean): void {
    const report = this.ctx.report!;
    const now = this.ctx.now();
    if (!force && now - this.reportedAt < REPORT_EVERY_MS) {
      this.ctx.wakeAt(this.reportedAt + REPORT_EVERY_MS);
      return;
    }
    const chunk = report.encode(this.lost, now);
    this.lost.fill(0);
    this.lossPending = false;
    this.reportedAt = now;
    if (chunk === null) return;
    if (!this.described) {
      this.described = true;
      report.metadata.use();
      this.write({ chunk: report.metadata, first: 0, kind: Kind.State });
    }
    this.write({ chunk, first: 0, kind: Kind.State }); // the encoder's use passes to this client
  }

  /** Hands a span to the socket; it is released when the write completes or the client goes. */
  private write(span: Span): void {
    this.flight.push(span);
    this.socket.write(span.chunk.bytes.subarray(frameStart(span.chunk, span.first)), this.written);
  }

  /** A write completed (callbacks come in the order of the writes). */
  private completed(err: Error | null | undefined): void {
    if (this.closed || this.abandoned) return;
    const span = this.flight[this.flightHead]!;
    this.flightHead = shift(this.flight, this.flightHead);
    span.chunk.release();
    if (err) return; // the socket failed: 'error' removes the client
    const c = this.ctx.counters;
    c.framesSent += span.chunk.ends.length - span.first;
    c.bytesSent += spanBytes(span);
    c.changed();
  }

  private gone(): void {
    if (this.closed) return;
    this.closed = true;
    this.releaseAll();
    this.ctx.onGone(this);
  }

  /** Lets go of every chunk queued or in flight (their memory is reused: nothing of them is sent after this). */
  private releaseAll(): void {
    for (let i = this.queueHead; i < this.queue.length; i++) this.queue[i]!.chunk.release();
    for (let i = this.flightHead; i < this.flight.length; i++) this.flight[i]!.chunk.release();
    this.queue.length = 0;
    this.queueHead = 0;
    this.queued = 0;
    this.flight.length = 0;
    this.flightHead = 0;
  }
}

function spanBytes(s: Span): number {
  return s.chunk.bytes.length - frameStart(s.chunk, s.first);
}

/** Removes the head of a queue kept as an array and a head index; returns the new head index. */
function shift<T>(queue: T[], head: number): number {
  queue[head++] = undefined as unknown as T;
  if (head === queue.length) {
    queue.length = 0;
    return 0;
  }
  if (head >= 1024 && head * 2 >= queue.length) {
    queue.splice(0, head);
    return 0;
  }
  return head;
}

import { writeSync, writevSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { Chunk } from '../chunk.js';
import type { Counters } from '../stats.js';
import type { FillReport, RingPeak } from './fill-report.js';
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
/**
 * Over TLS, frames are written in pieces of at most this much, one at a time: each piece is one
 * TLS record (the protocol's largest), so a piece the kernel has not wholly taken when the client
 * is abandoned is one the client cannot decrypt, and what the client receives is exactly the
 * pieces counted as written.
 */
const TLS_PIECE = 16_384;

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
  /** The first frame not yet sent (wholly). */
  first: number;
  /** The first byte not yet sent: frame `first`'s start, or inside it after a partial write. */
  start: number;
  readonly kind: Kind;
}

function span(chunk: Chunk, kind: Kind): Span {
  return { chunk, first: 0, start: 0, kind };
}

function frameStart(chunk: Chunk, i: number): number {
  return i === 0 ? 0 : chunk.ends[i - 1]!;
}

/** The bytes of a span not sent yet (the whole chunk, without a new view, when nothing was). */
function unsent(s: Span): Uint8Array {
  return s.start === 0 ? s.chunk.bytes : s.chunk.bytes.subarray(s.start);
}

/**
 * The socket's file descriptor, for writing to it directly; -1 where there is none (Windows,
 * or the socket is closed: it is read at each write, never kept, as a closed fd is reused).
 */
function socketFd(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
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
  /** Encodes the in-band fill levels; null when self metrics are off. */
  readonly fill: FillReport | null;
  /** The time, in ms since the epoch. */
  readonly now: () => number;
  /** Call the client's {@link Client.report} again at `at` (the clock of `now`). */
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
  /** Spans to write, gathered while {@link cork}ed: they go out in one system call. */
  private readonly batch: Span[] = [];
  private batchBytes = 0;
  /** The views of a batch, for `writev` (reused). */
  private readonly views: Uint8Array[] = [];
  private corks = 0;
  private closed = false;
  /** The exporter gave up on it (close() deadline): later completions count nothing. */
  private abandoned = false;
  /** Records lost and not reported to it yet, indexed by {@link Loss}. */
  private readonly lost = new Float64Array(3);
  private lossPending = false;
  private described = false;
  /**
   * Fill levels by thread: the largest ring peak of the windows not reported to it yet, the
   * latest window's peak, and the last value reported.
   */
  private readonly ringsPending = new Map<number, number>();
  private readonly ringsLatest = new Map<number, number>();
  private readonly ringsSent = new Map<number, number>();
  /** Whether a window ended since its last report (`ringsLatest` holds that window's peaks). */
  private windowSeen = false;
  private fillPending = false;
  private fillDescribed = false;
  /** The most frames its queue held at once since its last fill report, and what that report said (-1: none yet). */
  private queuePeak = 0;
  private queueSent = -1;
  /** When it was last sent a report (loss, fill levels, or both): at most one per REPORT_EVERY_MS. */
  private reportedAt = Number.NEGATIVE_INFINITY;
  private directLimit = DIRECT_LIMIT;
  /** Whether batches may be written straight to the socket's file descriptor: never over TLS. */
  private readonly direct: boolean;
  /** Over TLS: bytes of the spans in flight not written yet, and the piece being written, if any. */
  private flightBytes = 0;
  private piece = 0;
  private readonly pieceWritten = (err?: Error | null): void => this.wrotePiece(err);
  private readonly written = (err?: Error | null): void => this.completed(err);

  constructor(
    readonly socket: Socket,
    private readonly ctx: ClientContext,
  ) {
    // A TLS socket's writes go through its stream (and not `instanceof TLSSocket`: node:tls is
    // loaded only by the exporters that serve TLS).
    this.direct = (socket as { encrypted?: boolean }).encrypted !== true;
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
    this.write(span(chunk, Kind.State));
  }

  /** Writes frames that are not dropped for queue space (metadata) straight to the socket, in order. */
  sendDirect(chunk: Chunk): void {
    if (this.closed) return;
    if (this.pending() > this.directLimit) {
      this.ctx.counters.metadataDropped += chunk.ends.length;
      this.ctx.counters.changed();
      return;
    }
    chunk.use();
    this.write(span(chunk, Kind.Metadata));
  }

  /**
   * Queues a chunk's frames and gives the socket what it takes; then, if more than the limit
   * still wait, drops the oldest. A client that keeps up never loses a frame, however large
   * the batch.
   */
  enqueue(chunk: Chunk): void {
    if (this.closed) return;
    chunk.use();
    this.queue.push(span(chunk, Kind.Metric));
    this.queued += chunk.ends.length;
    this.pump();
    if (this.queued > this.queuePeak) this.queuePeak = Math.min(this.queued, this.ctx.limit);
    if (this.queued > this.ctx.limit) this.dropOldest(this.queued - this.ctx.limit);
  }

  /** Adds to what this client lost; it is told in-band, at most every REPORT_EVERY_MS. */
  noteLoss(reason: Loss, n: number): void {
    if (this.closed || this.ctx.report === null || n === 0) return;
    this.lost[reason] += n;
    if (this.lossPending) return;
    this.lossPending = true;
    if (!this.fillPending) this.ctx.wakeAt(this.reportedAt + REPORT_EVERY_MS);
  }

  /**
   * The rings' peaks over the window that just ended: the client is told, with its own queue's
   * peak, in its next report, what changed since its last. Windows it could not be told of (a
   * report went out less than an interval ago, or its socket was full) are reported as one,
   * their largest peak, and then the latest window's, so that the last value it holds is current.
   * Rings of one thread are reported as one: the largest of their peaks.
   */
  noteFill(peaks: readonly RingPeak[]): void {
    if (this.closed || this.ctx.fill === null) return;
    const latest = this.ringsLatest;
    latest.clear();
    this.windowSeen = true;
    for (let i = 0; i < peaks.length; i++) {
      const { thread, peak } = peaks[i]!;
      latest.set(thread, Math.max(latest.get(thread) ?? 0, peak));
      this.ringsPending.set(thread, Math.max(this.ringsPending.get(thread) ?? 0, peak));
    }
    if (this.fillPending) return;
    this.fillPending = true;
    if (!this.lossPending) this.ctx.wakeAt(this.reportedAt + REPORT_EVERY_MS);
  }

  /** Whether its queue has held frames that its fill levels have not reported yet. */
  get queueUnsettled(): boolean {
    return this.queued > 0 || this.queuePeak > 0 || this.queueSent > 0;
  }

  /** Sends the pending report if it is due and the socket has room (else asks to be called again). */
  report(): void {
    if (!(this.lossPending || this.fillPending) || this.closed || this.abandoned) return;
    if (this.pending() >= SOCKET_HIGH_WATER) return; // 'drain' pumps, and reports, later
    this.writeReport(false);
  }

  /** True when every frame has been written to the kernel. */
  get idle(): boolean {
    return this.queued === 0 && this.flight.length === this.flightHead && this.batch.length === 0;
  }

  /** Gathers what is written until {@link uncork}, to write it in one system call. */
  cork(): void {
    this.corks++;
  }

  uncork(): void {
    if (--this.corks > 0) return;
    // When the kernel takes a whole batch at once, no 'drain' follows: hand over more right away.
    while (this.flush() && this.queued > 0 && !this.abandoned) {
      this.corks++;
      this.fill();
      this.corks--;
    }
  }

  /** Sends what loss is left to report, whatever the time, then ends the connection once the socket has written it. */
  end(): void {
    if (this.lossPending && !this.closed) {
      this.cork();
      this.writeReport(true);
      this.uncork();
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
    let accepted: number;
    if (this.direct) {
      let inFlight = 0;
      for (let i = this.flightHead; i < this.flight.length; i++) inFlight += spanBytes(this.flight[i]!);
      accepted = Math.max(0, inFlight - unsentBytes(this.socket));
    } else {
      // Over TLS, the piece being written reaches the client if the kernel has all of its record.
      accepted = this.piece > 0 && rawQueue(this.socket) === 0 ? this.piece : 0;
    }
    for (let i = this.flightHead; i < this.flight.length; i++) {
      const { chunk, first, start, kind } = this.flight[i]!;
      for (let f = first; f < chunk.ends.length; f++) {
        const size = chunk.ends[f]! - (f === first ? start : chunk.ends[f - 1]!);
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
        p.start = frameStart(p.chunk, p.first);
        n = 0;
      }
    }
  }

  private shiftQueue(): void {
    this.queueHead = shift(this.queue, this.queueHead);
  }

  /** Bytes written and not yet taken by the kernel, and bytes gathered to write. */
  private pending(): number {
    return (this.direct ? this.socket.writableLength : this.flightBytes) + this.batchBytes;
  }

  /** Hands queued frames to the socket while it has room, in one write. */
  private pump(): void {
    if (this.closed || this.abandoned || this.pending() >= SOCKET_HIGH_WATER) return;
    const due = this.lossPending || this.fillPending;
    if (this.queued === 0 && !due) return;
    this.cork();
    if (due) this.writeReport(false);
    this.fill();
    this.uncork();
  }

  /** Moves frames from the queue to the batch while the socket has room. */
  private fill(): void {
    while (this.queued > 0 && this.pending() < SOCKET_HIGH_WATER) {
      const p = this.queue[this.queueHead]!;
      this.shiftQueue();
      this.queued -= p.chunk.ends.length - p.first;
      this.write(p);
    }
  }

  /** Writes what is pending of the in-band drop counter and fill levels, if due, or if `force`. */
  private writeReport(force: boolean): void {
    const now = this.ctx.now();
    if (!force && now - this.reportedAt < REPORT_EVERY_MS) {
      this.ctx.wakeAt(this.reportedAt + REPORT_EVERY_MS);
      return;
    }
    this.reportedAt = now;
    if (this.lossPending) this.writeLoss(now);
    if (this.fillPending) this.writeFill(now);
  }

  /** Writes the in-band drop counter (and, the first time, its metadata). */
  private writeLoss(now: number): void {
    const report = this.ctx.report!;
    const chunk = report.encode(this.lost, now);
    this.lost.fill(0);
    this.lossPending = false;
    if (chunk === null) return;
    if (!this.described) {
      this.described = true;
      report.metadata.use();
      this.write(span(report.metadata, Kind.State));
    }
    this.write(span(chunk, Kind.State)); // the encoder's use passes to this client
  }

  /**
   * Writes the fill levels that changed since this client's last report (the first time, their
   * metadata and the buffer size).
   */
  private writeFill(now: number): void {
    const fill = this.ctx.fill!;
    this.fillPending = false;
    fill.begin(now, !this.fillDescribed);
    const { ringsPending: pending, ringsLatest: latest, ringsSent: sent } = this;
    const settle: number[] = [];
    for (const [thread, peak] of pending) {
      if (sent.get(thread) !== peak) fill.ring(thread, peak);
      sent.set(thread, peak);
      // Merged windows showed their largest peak: the latest window's follows if it differs (a
      // thread absent from the latest window has no ring any more: it holds nothing).
      const latestPeak = this.windowSeen ? (latest.get(thread) ?? 0) : peak;
      if (latestPeak !== peak) settle.push(thread, latestPeak);
    }
    pending.clear();
    // A thread with no ring, last reported empty, is forgotten.
    if (this.windowSeen) for (const [thread, peak] of sent) if (peak === 0 && !latest.has(thread)) sent.delete(thread);
    this.windowSeen = false;
    latest.clear();
    for (let i = 0; i < settle.length; i += 2) pending.set(settle[i]!, settle[i + 1]!);
    if (pending.size > 0) {
      this.fillPending = true;
      this.ctx.wakeAt(now + REPORT_EVERY_MS);
    }
    const queue = Math.max(this.queuePeak, Math.min(this.queued, this.ctx.limit));
    this.queuePeak = Math.min(this.queued, this.ctx.limit);
    if (queue !== this.queueSent) {
      this.queueSent = queue;
      fill.queuePeak(queue);
    }
    const chunk = fill.finish();
    if (chunk === null) return;
    if (!this.fillDescribed) {
      this.fillDescribed = true;
      fill.metadata.use();
      this.write(span(fill.metadata, Kind.State));
    }
    this.write(span(chunk, Kind.State));
  }

  /** Writes a span (when uncorked); it is released once written or when the client goes. */
  private write(s: Span): void {
    this.batch.push(s);
    this.batchBytes += spanBytes(s);
    if (this.corks === 0) this.flush();
  }

  /**
   * Writes the batch. While the socket's stream holds nothing, straight to its file descriptor
   * with one `write`/`writev`: Node's stream machinery (a request object, a completion tick and,
   * corked, an array of buffers per write) cost a third of a wake-up at low rates, and what the
   * kernel takes is sent at once. What it does not take, and everything once the stream holds
   * something (order), goes through the stream, which reports completion and errors.
   * @returns true if the kernel took the whole batch
   */
  private flush(): boolean {
    const batch = this.batch;
    if (batch.length === 0) return false;
    if (!this.direct) {
      for (const s of batch) this.flight.push(s);
      this.flightBytes += this.batchBytes;
      batch.length = 0;
      this.batchBytes = 0;
      this.writePiece();
      return false;
    }
    let i = 0;
    const fd = this.direct && this.socket.writableLength === 0 && this.socket.writable ? socketFd(this.socket) : -1;
    if (fd >= 0) i = this.writeDirect(fd);
    const all = i === batch.length;
    for (; i < batch.length; i++) {
      const s = batch[i]!;
      this.flight.push(s);
      this.socket.write(unsent(s), this.written);
    }
    batch.length = 0;
    this.batchBytes = 0;
    return all;
  }

  /**
   * Writes the batch to `fd` (non-blocking, as libuv opened it); counts and releases what the
   * kernel took whole. A span taken in part keeps its unsent bytes (`start`).
   * @returns the index of the first span not wholly written
   */
  private writeDirect(fd: number): number {
    const batch = this.batch;
    let n: number;
    try {
      if (batch.length === 1) {
        n = writeSync(fd, unsent(batch[0]!));
      } else {
        for (let j = 0; j < batch.length; j++) this.views.push(unsent(batch[j]!));
        n = writevSync(fd, this.views);
      }
    } catch {
      n = 0; // EAGAIN (the socket is full) or a failed socket: the stream writes it, or reports the error
    } finally {
      this.views.length = 0;
    }
    if (n === 0) return 0;
    let i = 0;
    for (; i < batch.length; i++) {
      const size = spanBytes(batch[i]!);
      this.wrote(batch[i]!, Math.min(n, size));
      if (n < size) break;
      n -= size;
    }
    this.ctx.counters.changed();
    return i;
  }

  /**
   * Counts `n` bytes of span `s` as taken by the kernel: the frames they complete are sent; the
   * span is released once it is all written, or keeps its unsent bytes (`start`).
   */
  private wrote(s: Span, n: number): void {
    const c = this.ctx.counters;
    c.bytesSent += n;
    if (n < spanBytes(s)) {
      s.start += n;
      const first = s.first;
      while (s.chunk.ends[s.first]! <= s.start) s.first++;
      c.framesSent += s.first - first;
      return;
    }
    c.framesSent += s.chunk.ends.length - s.first;
    s.chunk.release();
  }

  /** Over TLS: writes the next piece of the spans in flight, unless one is being written. */
  private writePiece(): void {
    if (this.piece > 0 || this.flightHead === this.flight.length) return;
    const bytes = unsent(this.flight[this.flightHead]!);
    this.piece = Math.min(bytes.length, TLS_PIECE);
    this.socket.write(this.piece === bytes.length ? bytes : bytes.subarray(0, this.piece), this.pieceWritten);
  }

  /** Over TLS: a piece was written (encrypted, and taken by the kernel). */
  private wrotePiece(err: Error | null | undefined): void {
    const n = this.piece;
    this.piece = 0;
    if (this.closed || this.abandoned || err) return; // a failed socket: 'error' removes the client
    const s = this.flight[this.flightHead]!;
    if (n === spanBytes(s)) this.flightHead = shift(this.flight, this.flightHead);
    this.wrote(s, n);
    this.flightBytes -= n;
    this.ctx.counters.changed();
    this.writePiece();
    this.pump();
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
    // The socket has written everything it was handed: refill it from the queue. 'drain' alone
    // is not enough: it follows only a write that went past the stream's high-water mark, and
    // the leftover of a direct write is often smaller, which left the queue waiting for the
    // next record however long that took.
    if (this.flightHead === 0 && this.flight.length === 0) this.pump();
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
    for (const s of this.batch) s.chunk.release();
    this.batch.length = 0;
    this.batchBytes = 0;
    this.queue.length = 0;
    this.queueHead = 0;
    this.queued = 0;
    this.flight.length = 0;
    this.flightHead = 0;
    this.flightBytes = 0;
  }
}

/** Over TLS: bytes of encrypted records the kernel has not taken, queued on the TCP socket underneath. */
function rawQueue(socket: Socket): number {
  const q = (socket as unknown as { _parent?: { _handle?: { writeQueueSize?: unknown } | null } })._parent?._handle?.writeQueueSize;
  return typeof q === 'number' ? q : Number.POSITIVE_INFINITY;
}

function spanBytes(s: Span): number {
  return s.chunk.bytes.length - s.start;
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

import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import {
  RingSlot,
  STATE_BYTES,
  STATE_PAGE_KEYS,
  State,
  ringViews,
  unpublishedRecords,
  wakeMark,
  type RingDescriptor,
  type RingViews,
  type StateViews,
} from '../shared/layout.js';
import type { ControlMessage } from '../shared/messages.js';
import type { KeyEntry } from './keys.js';

/** The journal's id of the recorder's own ring (other threads' rings have ids >= 0). */
export const MAIN_RING = -1;

/** `replayOnConnect`: what the worker has folded of one key's state (see `State`). */
export interface Folded {
  counter: number;
  sets: number;
  delta: number;
}

/**
 * The consumer end of one producer's ring, with that producer's control messages and its
 * local key ids. Only the transport worker touches it.
 *
 * Control messages reach it either synchronously from a MessagePort ({@link pull}) or
 * asynchronously from the BroadcastChannel ({@link deliver}). Either way the producer counts
 * what it sent in the ring header, so the reader knows when some are still in flight and
 * stops before the records that may follow them.
 *
 * What the worker changes in the ring's shared memory (its head, the drops it took, what it
 * folded of the state pages) is kept here until the round commits it through the journal
 * ({@link persist}, {@link persistFold}): a worker that dies in between leaves no trace of it.
 */
export class RingReader {
  readonly views: RingViews;
  /** Local key id → entry, filled by the producer's `key` messages. */
  readonly keys: KeyEntry[] = [];
  /** `replayOnConnect`: the producer's state pages (see `State`), by key id / `STATE_PAGE_KEYS`. */
  readonly statePages: StateViews[] = [];
  /** `replayOnConnect`: folds made since the last commit, by key id. */
  readonly pendingFolds = new Map<number, Folded>();
  /** Next position to read (free-running, wraps at 2^32); the shared head follows at each commit. */
  head: number;
  /** Something here awaits a commit (the head moved, drops were taken). */
  dirty = false;
  /** When the worker found the producing thread gone without its exit hook (ms), if it did. */
  diedAt: number | undefined;
  /** Ring-full drops counted so far (committed as the header's `RingSlot.FullTaken`). */
  fullSeen = 0;
  /** The producing thread's `worker_threads` id (0: the main thread). */
  readonly thread: number;
  /** The most records the producer held at once since {@link takePeak} (see there). */
  private peak = 0;
  /** What the producer held at the last {@link takePeak}: the least the next window's peak can be. */
  fillAtPeak = 0;
  /** The producer's drop count (`RingSlot.FullDrops`) at the last {@link takePeak}. */
  private dropsAtPeak: number;
  /** Records the producer may hold at once (the buffer size). */
  readonly limitRecords: number;
  /** Records taken since the worker last began a flush wait (see the pipeline's `flushWait`). */
  takenSinceWait = 0;
  private readonly wakeAt: number;
  private controls: ControlMessage[] = [];
  private next = 0;
  /** The sequence number of the next control message to queue (see `ControlMessage.seq`). */
  private received = 0;
  /** Messages that came before one with a lower sequence number, by sequence number. */
  private early: Map<number, ControlMessage> | undefined;
  /** `pos` of the last control message received, while it is ahead of the head. */
  private lastPos: number | undefined;

  /**
   * @param key the ring's id in the journal: {@link MAIN_RING} for the recorder's own, the ring's
   *   announced id for other threads' (ids of scratch rings, never committed, are below -1)
   * @param known control messages of the ring this worker will not be sent: they went to an
   *   earlier worker, whose state a restart hands over separately
   */
  constructor(
    ring: RingDescriptor,
    private readonly port: MessagePort | undefined,
    known: number,
    readonly key: number,
  ) {
    this.received = known;
    this.views = ringViews(ring.sab);
    this.thread = ring.thread;
    this.limitRecords = ring.limit;
    this.wakeAt = wakeMark(ring.limit);
    this.head = Atomics.load(this.views.header, RingSlot.Head);
    // Not the drop count as it is now: what no worker has counted yet is counted by this one.
    this.fullSeen = Atomics.load(this.views.header, RingSlot.FullTaken);
    this.dropsAtPeak = Atomics.load(this.views.header, RingSlot.FullDrops);
  }

  /**
   * Queues a control message in its sequence: one the worker was handed already is skipped, one
   * that comes before an earlier one waits for it.
   */
  deliver(m: ControlMessage): void {
    const ahead = (m.seq - this.received) | 0;
    if (ahead < 0) return;
    if (ahead > 0) {
      (this.early ??= new Map()).set(m.seq, m);
      return;
    }
    this.queue(m);
    for (let e = this.early?.get(this.received); e !== undefined; e = this.early!.get(this.received)) {
      this.early!.delete(e.seq);
      this.queue(e);
    }
  }

  private queue(m: ControlMessage): void {
    this.controls.push(m);
    this.received = (this.received + 1) | 0;
    if (((m.pos - this.head) | 0) > 0) this.lastPos = m.pos;
  }

  /** Moves the producer's port messages into the local queue. */
  private pull(): void {
    if (this.port === undefined) return;
    for (let m = receiveMessageOnPort(this.port); m !== undefined; m = receiveMessageOnPort(this.port)) {
      this.deliver(m.message as ControlMessage);
    }
  }

  /**
   * Where draining may go up to now: the published tail, unless control messages are still
   * in flight. A missing message was sent after the last one received, so its position is at
   * or after that one's: records before `max(head, lastPos)` are safe, later ones wait.
   * Reads the tail, then the sent count, then pulls: every message sent before a visible
   * record is then either here or counted as missing.
   */
  limit(): number {
    const tail = Atomics.load(this.views.header, RingSlot.Tail);
    const sent = Atomics.load(this.views.header, RingSlot.ControlSent);
    if (this.received === sent) return tail; // nothing to pull: the port is not polled
    this.pull();
    if (this.received === sent) return tail;
    const last = this.lastPos;
    // Positions are compared as distances from head (they wrap at 2^32); `lastPos` is forgotten
    // once the head passes it, so the distance never grows past a round's worth of records.
    if (last === undefined) return this.head;
    return ((last - this.head) | 0) < ((tail - this.head) | 0) ? last : tail;
  }

  /** True when a control message is due at or before ring position `pos`. */
  hasControlDue(pos: number): boolean {
    return this.next < this.controls.length && ((this.controls[this.next]!.pos - pos) | 0) <= 0;
  }

  /**
   * Where the records from `h` stop for a control message: the position of the next one if it
   * comes before `end`, else `end`. (Called after those due at `h` were applied.)
   */
  nextControlBefore(h: number, end: number): number {
    if (this.next === this.controls.length) return end;
    const pos = this.controls[this.next]!.pos;
    return ((pos - h) | 0) < ((end - h) | 0) ? pos : end;
  }

  /** The next control message due at or before ring position `pos`, if any. */
  controlDue(pos: number): ControlMessage | undefined {
    if (!this.hasControlDue(pos)) return undefined;
    const m = this.controls[this.next]!;
    if (++this.next === this.controls.length) {
      this.controls = [];
      this.next = 0;
    }
    return m;
  }

  /** True when records or control messages can be processed now. */
  hasWork(): boolean {
    const limit = this.limit();
    return limit !== this.head || this.hasControlDue(limit);
  }

  /**
   * True when every record published so far is taken and every control message sent so far has
   * come (none is still on its way, so no record waits for one).
   */
  caughtUp(): boolean {
    return !this.hasWork() && this.received === Atomics.load(this.views.header, RingSlot.ControlSent);
  }

  /** True when the ring holds as many records as make its producer wake a waiting worker. */
  backlogged(): boolean {
    return ((Atomics.load(this.views.header, RingSlot.Tail) - this.head) | 0) >= this.wakeAt;
  }

  /** Records up to `head` are taken (in this worker; the producer gets their slots back at the commit). */
  advance(head: number): void {
    this.head = head;
    this.dirty = true;
    if (this.lastPos !== undefined && ((this.lastPos - head) | 0) <= 0) this.lastPos = undefined;
  }

  /**
   * Commits the head and the drops taken (from the journal): hands positions up to `head` back to
   * the producer. Their slots are emptied first (see `Op`); the atomic store of the head orders
   * that before the producer can write them again. Applying it twice is applying it once.
   */
  persist(head: number, fullTaken: number): void {
    const { f64, mask, header } = this.views;
    const from = Atomics.load(header, RingSlot.Head);
    // The ring only empties here: until this store, what the producer holds only grows, so its
    // fill now is the most it held since the last commit (but for records not yet published).
    const fill = (Atomics.load(header, RingSlot.Tail) - from) | 0;
    if (fill > this.peak) this.peak = fill;
    if (((head - from) | 0) > 0) for (let p = from; p !== head; p = (p + 1) | 0) f64[(p & mask) * 2] = 0;
    Atomics.store(header, RingSlot.Head, head);
    Atomics.store(header, RingSlot.FullTaken, fullTaken);
    // A commit a crashed worker left half done moves this reader (made before it was applied) too.
    if (((head - this.head) | 0) > 0) this.advance(head);
    this.fullSeen = fullTaken;
  }

  /** Records the producer dropped (ring full) since the last call, and since any earlier worker counted. */
  takeFullDrops(): number {
    const now = Atomics.load(this.views.header, RingSlot.FullDrops);
    const delta = (now - this.fullSeen) >>> 0;
    if (delta !== 0) {
      this.fullSeen = now;
      this.dirty = true;
    }
    return delta;
  }

  /**
   * The most records the producer held at once since the last call (the ring's peak fill), and
   * starts the next window from what it holds now. Exact but for records written and not yet
   * published (fewer than the producer's publish step, 64 at most) and those written in the
   * instant between a commit's reading of the tail and its store of the head; the buffer size
   * itself when the producer dropped a record meanwhile (the ring was full).
   */
  takePeak(): number {
    const { header } = this.views;
    const drops = Atomics.load(header, RingSlot.FullDrops);
    const now = (Atomics.load(header, RingSlot.Tail) - Atomics.load(header, RingSlot.Head)) | 0;
    const peak = drops !== this.dropsAtPeak ? this.limitRecords : Math.max(this.peak, now);
    this.peak = this.fillAtPeak = now;
    this.dropsAtPeak = drops;
    return peak;
  }

  /** `replayOnConnect`: what has been folded of key `id`'s state (by this round, or as committed). */
  folded(id: number, page: StateViews): Folded {
    const pending = this.pendingFolds.get(id);
    if (pending !== undefined) return pending;
    const { d, w } = stateIndex(id);
    return { counter: page.f64[d + State.FoldedCounter]!, sets: page.i32[w + State.FoldedGaugeSets]!, delta: page.f64[d + State.FoldedGaugeDelta]! };
  }

  /** Writes what was folded of key `id`'s state into its page (from the journal). */
  persistFold(id: number, counter: number, sets: number, delta: number): void {
    const page = this.statePages[Math.floor(id / STATE_PAGE_KEYS)];
    if (page === undefined) return;
    const { d, w } = stateIndex(id);
    page.f64[d + State.FoldedCounter] = counter;
    page.i32[w + State.FoldedGaugeSets] = sets;
    page.f64[d + State.FoldedGaugeDelta] = delta;
  }

  /**
   * For a ring whose thread has died: publishes, on its behalf, the records it wrote but never
   * published (it was in a synchronous loop, or was terminated before it published them). They
   * are the non-empty slots after the published tail. Reading them is safe only because the
   * writer is gone: a thread's exit completes its stores.
   * @returns how many records were adopted
   */
  adoptUnpublished(): number {
    const n = this.unpublished();
    if (n > 0) Atomics.store(this.views.header, RingSlot.Tail, (Atomics.load(this.views.header, RingSlot.Tail) + n) | 0);
    return n;
  }

  /** Records in the ring not taken: published after the head, or written after the tail. */
  untaken(): number {
    return ((Atomics.load(this.views.header, RingSlot.Tail) - this.head) | 0) + this.unpublished();
  }

  /** Records written after the published tail (see `unpublishedRecords`). */
  unpublished(): number {
    return unpublishedRecords(this.views, this.head, this.limitRecords);
  }

  /**
   * For a ring whose thread has died with control messages still on their way that will never
   * come (a terminated thread's last messages can be lost): stops waiting for them. Records of
   * keys never announced are then counted as invalid.
   */
  stopWaitingForControls(): void {
    const later = [...(this.early?.values() ?? [])].sort((a, b) => (a.seq - b.seq) | 0);
    this.early = undefined;
    for (const m of later) this.queue(m);
    this.received = Atomics.load(this.views.header, RingSlot.ControlSent);
  }

  /** Control messages the producer sent that have not arrived. */
  get missingControls(): number {
    return (Atomics.load(this.views.header, RingSlot.ControlSent) - this.received) | 0;
  }

  /** The producing thread's OS thread id, or 0 if unknown. */
  get tid(): number {
    return Atomics.load(this.views.header, RingSlot.Tid);
  }

  markClosed(): void {
    Atomics.store(this.views.header, RingSlot.Closed, 1);
  }

  /** Its thread is gone and everything it sent has been taken: the ring can be forgotten. */
  finished(): boolean {
    return (
      Atomics.load(this.views.header, RingSlot.Closed) === 1 &&
      Atomics.load(this.views.header, RingSlot.Tail) === this.head &&
      Atomics.load(this.views.header, RingSlot.ControlSent) === this.received &&
      this.next === this.controls.length
    );
  }

  close(): void {
    this.port?.close();
  }
}

/** Where key `id`'s slots start in its state page: as doubles (`d`) and as int32s (`w`). */
export function stateIndex(id: number): { d: number; w: number } {
  const index = id % STATE_PAGE_KEYS;
  return { d: index * (STATE_BYTES / 8), w: index * (STATE_BYTES / 4) };
}

import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import {
  RING_CLOSED,
  RING_CONTROL_SENT,
  RING_FULL_DROPS,
  RING_FULL_TAKEN,
  RING_HEAD,
  RING_TAIL,
  RING_TID,
  ringViews,
  wakeMark,
  type RingDescriptor,
  type RingViews,
  type StateViews,
} from '../shared/layout.js';
import type { ControlMessage } from '../shared/messages.js';
import type { KeyEntry } from './keys.js';

/**
 * The consumer end of one producer's ring, with that producer's control messages and its
 * local key ids. Only the transport worker touches it.
 *
 * Control messages reach it either synchronously from a MessagePort ({@link pull}) or
 * asynchronously from the BroadcastChannel ({@link deliver}). Either way the producer counts
 * what it sent in the ring header, so the reader knows when some are still in flight and
 * stops before the records that may follow them.
 */
export class RingReader {
  readonly views: RingViews;
  /** Local key id → entry, filled by the producer's `key` messages. */
  readonly keys: KeyEntry[] = [];
  /** `replayOnConnect`: the producer's state pages (see `State`), by key id / `STATE_PAGE_KEYS`. */
  readonly statePages: StateViews[] = [];
  /** Next position to read (free-running, wraps at 2^32). */
  head: number;
  /** When the worker found the producing thread gone without its exit hook (ms), if it did. */
  diedAt: number | undefined;
  private fullSeen = 0;
  private readonly limitRecords: number;
  private readonly wakeAt: number;
  private controls: ControlMessage[] = [];
  private next = 0;
  private received = 0;
  /** `pos` of the last control message received. */
  private lastPos: number | undefined;

  /**
   * @param sentBase control messages the producer had sent before this reader existed (they
   *   went to an earlier worker, whose state a restart replays separately)
   */
  constructor(
    ring: RingDescriptor,
    private readonly port: MessagePort | undefined,
    sentBase: number,
  ) {
    this.received = sentBase;
    this.views = ringViews(ring.sab);
    this.limitRecords = ring.limit;
    this.wakeAt = wakeMark(ring.limit);
    this.head = Atomics.load(this.views.header, RING_HEAD);
    // Not the drop count as it is now: what no worker has counted yet is counted by this one.
    this.fullSeen = Atomics.load(this.views.header, RING_FULL_TAKEN);
  }

  /** Queues a control message that arrived on the channel. */
  deliver(m: ControlMessage): void {
    this.controls.push(m);
    this.received++;
    this.lastPos = m.pos;
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
    const tail = Atomics.load(this.views.header, RING_TAIL);
    const sent = Atomics.load(this.views.header, RING_CONTROL_SENT);
    if (this.received === sent) return tail; // nothing to pull: the port is not polled
    this.pull();
    if (this.received === sent) return tail;
    const last = this.lastPos;
    // Positions are compared as distances from head (they wrap at 2^32).
    if (last === undefined || ((last - this.head) | 0) <= 0) return this.head;
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

  /** True when the ring holds as many records as make its producer wake a waiting worker. */
  backlogged(): boolean {
    return ((Atomics.load(this.views.header, RING_TAIL) - this.head) | 0) >= this.wakeAt;
  }

  /**
   * Hands positions up to `head` back to the producer. Their slots are emptied first (see `Op`);
   * the atomic store of the head orders that before the producer can write them again.
   */
  commit(head: number): void {
    const { f64, mask } = this.views;
    for (let p = this.head; p !== head; p = (p + 1) | 0) f64[(p & mask) * 2] = 0;
    Atomics.store(this.views.header, RING_HEAD, head);
    this.head = head;
  }

  /** Records the producer dropped (ring full) since the last call, and since any earlier worker counted. */
  takeFullDrops(): number {
    const now = Atomics.load(this.views.header, RING_FULL_DROPS);
    const delta = (now - this.fullSeen) >>> 0;
    if (delta !== 0) {
      this.fullSeen = now;
      Atomics.store(this.views.header, RING_FULL_TAKEN, now);
    }
    return delta;
  }

  /**
   * For a ring whose thread has died: publishes, on its behalf, the records it wrote but never
   * published (it was in a synchronous loop, or was terminated before it published them). They
   * are the non-empty slots after the published tail. Reading them is safe only because the
   * writer is gone: a thread's exit completes its stores.
   * @returns how many records were adopted
   */
  adoptUnpublished(): number {
    const { header, f64, mask } = this.views;
    const tail = Atomics.load(header, RING_TAIL);
    const room = this.limitRecords - ((tail - this.head) | 0);
    let end = tail;
    for (let n = 0; n < room && f64[(end & mask) * 2] !== 0; n++) end = (end + 1) | 0;
    if (end !== tail) Atomics.store(header, RING_TAIL, end);
    return (end - tail) | 0;
  }

  /**
   * For a ring whose thread has died with control messages still on their way that will never
   * come (a terminated thread's last messages can be lost): stops waiting for them. Records of
   * keys never announced are then counted as invalid.
   */
  stopWaitingForControls(): void {
    this.received = Atomics.load(this.views.header, RING_CONTROL_SENT);
  }

  /** Control messages the producer sent that have not arrived. */
  get missingControls(): number {
    return (Atomics.load(this.views.header, RING_CONTROL_SENT) - this.received) | 0;
  }

  /** The producing thread's OS thread id, or 0 if unknown. */
  get tid(): number {
    return Atomics.load(this.views.header, RING_TID);
  }

  markClosed(): void {
    Atomics.store(this.views.header, RING_CLOSED, 1);
  }

  /** Its thread is gone and everything it sent has been taken: the ring can be forgotten. */
  finished(): boolean {
    return (
      Atomics.load(this.views.header, RING_CLOSED) === 1 &&
      Atomics.load(this.views.header, RING_TAIL) === this.head &&
      Atomics.load(this.views.header, RING_CONTROL_SENT) === this.received &&
      this.next === this.controls.length
    );
  }

  close(): void {
    this.port?.close();
  }
}

import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { RING_FULL_DROPS, RING_HEAD, RING_TAIL, ringViews, type RingDescriptor, type RingViews } from '../shared/layout.js';
import type { ControlMessage } from '../shared/messages.js';
import type { KeyEntry } from './keys.js';

/**
 * The consumer end of one producer's ring, with that producer's control messages and its
 * local key ids. Only the transport worker touches it.
 */
export class RingReader {
  readonly views: RingViews;
  /** Local key id → entry, filled by the producer's `key` messages. */
  readonly keys: KeyEntry[] = [];
  /** Next position to read (free-running, wraps at 2^32). */
  head: number;
  private fullSeen = 0;
  private controls: ControlMessage[] = [];
  private next = 0;

  constructor(
    ring: RingDescriptor,
    private readonly port: MessagePort,
  ) {
    this.views = ringViews(ring.sab);
    this.head = Atomics.load(this.views.header, RING_HEAD);
    this.fullSeen = Atomics.load(this.views.header, RING_FULL_DROPS);
  }

  /** The producer's published tail (an acquire: the records before it are readable). */
  tail(): number {
    return Atomics.load(this.views.header, RING_TAIL);
  }

  /**
   * Moves the producer's control messages into the local queue. Call after reading the tail:
   * every message sent before a record at or below that tail is then here.
   */
  pull(): void {
    for (let m = receiveMessageOnPort(this.port); m !== undefined; m = receiveMessageOnPort(this.port)) {
      this.controls.push(m.message as ControlMessage);
    }
  }

  /** The next control message due at or before ring position `pos`, if any. */
  controlDue(pos: number): ControlMessage | undefined {
    if (this.next === this.controls.length) return undefined;
    const m = this.controls[this.next]!;
    if (((m.pos - pos) | 0) > 0) return undefined;
    if (++this.next === this.controls.length) {
      this.controls = [];
      this.next = 0;
    }
    return m;
  }

  /** True when records or control messages are waiting. */
  hasWork(): boolean {
    this.pull();
    return this.next < this.controls.length || this.tail() !== this.head;
  }

  /** Hands positions up to `head` back to the producer. */
  commit(head: number): void {
    Atomics.store(this.views.header, RING_HEAD, head);
    this.head = head;
  }

  /** Records the producer dropped (ring full) since the last call. */
  takeFullDrops(): number {
    const now = Atomics.load(this.views.header, RING_FULL_DROPS);
    const delta = (now - this.fullSeen) >>> 0;
    this.fullSeen = now;
    return delta;
  }

  close(): void {
    this.port.close();
  }
}

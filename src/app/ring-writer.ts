import { isMainThread } from 'node:worker_threads';
import { Ctl, Op, Park, RingSlot, recordHeader, ringViews, wakeMark, type RingDescriptor } from '../shared/layout.js';
import type { ControlMessage } from '../shared/messages.js';

const U64_MAX = (1n << 64n) - 1n;
/**
 * Records dropped without reading the worker's head again, once it was read and the ring was
 * full: the head is on a cache line the worker writes at every commit, and reading it for every
 * dropped record made overload cost the app most, exactly when it can least afford it.
 */
const DROPS_PER_CHECK = 64;
/** Schedules a worker thread's end-of-job publish as a microtask. */
const SETTLED = Promise.resolve();

/** A MessagePort, or a BroadcastChannel wrapper that tags messages with the ring's id. */
export interface ControlSink {
  postMessage(msg: ControlMessage): void;
}

/**
 * The producer end of one SPSC ring. Only the thread that created it may call it.
 *
 * Memory ordering: a record's two 8-byte halves are written with plain stores, then the tail is
 * published with `Atomics.store`, which the consumer reads with `Atomics.load`; that pair
 * orders the record before the tail. Publishing with plain stores would not be ordered by
 * the JavaScript memory model even where x86 happens to be, so it is never done. To keep the
 * cost of that store off most records, the tail is published once every `publishEvery`
 * records and, for the last records of a burst, later (see `perTurn`).
 *
 * A record costs one comparison besides its stores: the tail against {@link stop}, the next
 * position at which something must happen (a publish is due, the ring may be full, the job's
 * publish is not scheduled yet). Only there does {@link admit} look at the rest.
 */
export class RingWriter {
  /** The control block; `ctl[Ctl.Clients]` is read racily as a hint on every record. */
  readonly ctl: Int32Array;
  private readonly header: Int32Array;
  private readonly f64: Float64Array;
  private readonly u64: BigUint64Array;
  private readonly mask: number;
  private readonly limit: number;
  private readonly publishEvery: number;
  /** Records in the ring at which a napping worker is woken early. */
  private readonly wakeAt: number;
  /** Where control messages go; set before the recorder is handed out. */
  private port: ControlSink | undefined = undefined;
  /** Next position to write (free-running, wraps at 2^32). */
  private tail: number;
  /**
   * The position at which {@link admit} runs before the record is written: the next publish,
   * the end of the room last seen, or the tail itself (the job's publish is to be scheduled, or
   * the ring is dropping). Never past either of the first two.
   */
  private stop: number;
  private published: number;
  /** Last head seen; reloaded with Atomics only when the ring looks full. */
  private headSeen: number;
  /**
   * The ring's drop count (`RingSlot.FullDrops`), which only this thread writes: kept here too, so
   * that a drop is one store to shared memory, not a load and a store. Each is in the ring at
   * once: a thread terminated in the middle of a job leaves none of its drops uncounted.
   */
  private drops: number;
  /**
   * The drop count at which the head is read again; while `drops` is below it the ring is taken
   * for full without a look. Equal to `drops` when not dropping; the next publish makes it so.
   */
  private recheckAt: number;
  private scheduled = false;
  /**
   * The last records of a burst are published once per turn of the event loop (an immediate)
   * if true, else at the end of each job (a microtask). A server's main thread runs one job per
   * request, and a microtask after each (a promise reaction, its run, and the publish's atomics)
   * cost it about 0.7 µs per request; one turn serves every request that was ready. Other
   * threads publish per job: pools such as piscina's block in `Atomics.wait` between tasks and
   * run microtasks, but do not turn their event loop.
   */
  private readonly perTurn: boolean;
  private readonly publishLater = (): void => {
    this.scheduled = false;
    this.publish();
    // The next record schedules the next publish.
    this.stop = this.tail;
  };

  constructor(ring: RingDescriptor, ctl: SharedArrayBuffer, perTurn = isMainThread) {
    this.perTurn = perTurn;
    const v = ringViews(ring.sab);
    this.header = v.header;
    this.f64 = v.f64;
    this.u64 = v.u64;
    this.mask = v.mask;
    this.limit = ring.limit;
    // Publish at least every quarter of the ring so a small ring never fills with records the
    // consumer cannot see yet; at most every 64 records (the measured sweet spot).
    let every = 64;
    while (every > 1 && every * 4 > ring.limit) every >>= 1;
    this.publishEvery = every;
    this.wakeAt = wakeMark(ring.limit);
    this.ctl = new Int32Array(ctl);
    this.tail = Atomics.load(this.header, RingSlot.Tail);
    this.stop = this.tail;
    this.published = this.tail;
    this.headSeen = Atomics.load(this.header, RingSlot.Head);
    this.drops = Atomics.load(this.header, RingSlot.FullDrops);
    this.recheckAt = this.drops;
  }

  /**
   * Writes one record, its header made by `recordHeader` (the handle keeps it made). Drops and
   * counts it if the ring is full.
   */
  push(header: number, value: number): void {
    const t = this.tail;
    if (t === this.stop && !this.admit(t)) return;
    const i = (t & this.mask) << 1;
    const f64 = this.f64;
    // Value first, header last: a non-empty header means a whole record (see Op).
    f64[i + 1] = value;
    f64[i] = header;
    this.tail = (t + 1) | 0;
  }

  /** Writes a counter increment given as a bigint: exact up to 2^64-1, anything else invalid. */
  pushBigint(id: number, value: bigint): void {
    if (value < 0n || value > U64_MAX) {
      this.push(recordHeader(id, Op.Invalid), 0);
      return;
    }
    const t = this.tail;
    if (t === this.stop && !this.admit(t)) return;
    const i = (t & this.mask) << 1;
    this.u64[i + 1] = value;
    this.f64[i] = recordHeader(id, Op.CounterU64);
    this.tail = (t + 1) | 0;
  }

  /**
   * Whether the record at `t` (the {@link stop}) may be written; if not, it is counted as a drop.
   * Small, so that a record dropped by a ring known to be full costs no call: a comparison and
   * the drop count's stores.
   */
  private admit(t: number): boolean {
    const d = this.drops;
    if (d === this.recheckAt) return this.admitSlow(t);
    // Single writer: the worker reads it atomically; it is on the header's producer line.
    this.header[RingSlot.FullDrops] = this.drops = (d + 1) | 0;
    return false;
  }

  /**
   * Publishes if due, schedules the job's publish, and re-reads the head of a full-looking ring.
   * A ring found full stays full for the next {@link DROPS_PER_CHECK} records, or until the end
   * of the job or turn (the next publish), whichever comes first: they are dropped and counted
   * without reading the head, which is on a cache line the worker writes at every commit. So at
   * most 63 records are dropped after the worker made room, and none of a later job.
   */
  private admitSlow(t: number): boolean {
    if (((t - this.published) | 0) >= this.publishEvery) this.publish();
    if (!this.scheduled) this.schedulePublish();
    if (((t - this.headSeen) | 0) >= this.limit) {
      this.publish();
      this.headSeen = Atomics.load(this.header, RingSlot.Head);
      if (((t - this.headSeen) | 0) >= this.limit) {
        // Full: this drop and the next DROPS_PER_CHECK - 1 are counted by `admit` without a look.
        this.recheckAt = (this.drops + DROPS_PER_CHECK) | 0;
        return this.admit(t);
      }
    }
    const toPublish = (this.published + this.publishEvery - t) | 0;
    const toFull = (this.headSeen + this.limit - t) | 0;
    this.stop = (t + (toPublish < toFull ? toPublish : toFull)) | 0;
    return true;
  }

  /** Publishes at the end of this job (or turn: see `perTurn`), once. */
  private schedulePublish(): void {
    this.scheduled = true;
    // Per job: a reaction on a settled promise, not queueMicrotask, which creates an
    // AsyncResource and a bound function for each job.
    if (this.perTurn) setImmediate(this.publishLater);
    else void SETTLED.then(this.publishLater);
  }

  /** Makes every written record visible to the worker and wakes it if it is parked. */
  publish(): void {
    this.recheckAt = this.drops;
    if (this.published === this.tail) return;
    this.published = this.tail;
    Atomics.store(this.header, RingSlot.Tail, this.tail);
    // Sequentially consistent load after the store: either the worker sees our tail before it
    // sleeps, or we see its flag here and ring the doorbell. A worker waiting out a flush
    // interval comes back by itself, so it is woken early only when the ring is filling up.
    const park = Atomics.load(this.ctl, Ctl.Parked);
    if (park === Park.Running) return;
    if (park === Park.Flush) {
      // The head seen last is at most the head now: a fill below the mark by it needs no look.
      if (((this.tail - this.headSeen) | 0) < this.wakeAt) return;
      this.headSeen = Atomics.load(this.header, RingSlot.Head);
      if (((this.tail - this.headSeen) | 0) < this.wakeAt) return;
    }
    this.wake(park);
  }

  /** Records written but not yet published (they are published soon: see `perTurn`). */
  unpublished(): number {
    return (this.tail - this.published) | 0;
  }

  /**
   * Sends a control message ordered with the records: the tail is published first and the
   * message carries it, so the worker applies it after every record written before it.
   */
  control(msg: ControlMessage): void {
    this.publish();
    msg.pos = this.published;
    msg.seq = Atomics.load(this.header, RingSlot.ControlSent); // only this thread changes it
    this.port?.postMessage(msg);
    // Counted after it is sent: a worker that sees the count also has (or awaits) the message.
    Atomics.add(this.header, RingSlot.ControlSent, 1);
    // Then, as for records: an idle worker is woken; one waiting out a flush interval applies
    // it when that ends.
    if (Atomics.load(this.ctl, Ctl.Parked) === Park.Idle) this.wake(Park.Idle);
  }

  /** Points control messages at a (new) worker's port or channel. */
  rebind(port: ControlSink): void {
    this.port = port;
  }

  /** The ring's header. */
  get ringHeader(): Int32Array {
    return this.header;
  }

  /**
   * The thread is ending: publishes what it wrote and marks the ring closed, so that the worker
   * drains it and forgets it; an idle worker is woken to do so now.
   */
  close(): void {
    this.publish();
    Atomics.store(this.header, RingSlot.Closed, 1);
    if (Atomics.load(this.ctl, Ctl.Parked) === Park.Idle) this.wake(Park.Idle);
  }

  /**
   * Rings the doorbell of a worker parked as `park`, unless another publish (of this thread or
   * another) rang since it parked: the first to change the flag to running rings, once. A ring
   * costs the app's thread a system call (measured here 2 to 80 µs, in a virtual machine), and
   * until the worker woke, each publish would ring again.
   */
  private wake(park: Park): void {
    if (Atomics.compareExchange(this.ctl, Ctl.Parked, park, Park.Running) !== park) return;
    Atomics.add(this.ctl, Ctl.Doorbell, 1);
    Atomics.notify(this.ctl, Ctl.Doorbell);
  }
}

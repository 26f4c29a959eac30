import { Ctl, Park } from '../shared/layout.js';
import type { Counters } from './stats.js';

/**
 * How the worker waits between rounds (see {@link Park}), at the lowest cost a wait can have:
 * - the flush interval is one reusable timer on the worker's own event loop (`refresh()`),
 *   not an `Atomics.waitAsync` timeout, which V8 runs as a delayed task on a platform thread:
 *   every timed wake-up then woke two threads;
 * - the doorbell is one `Atomics.waitAsync` without a timeout, armed while the worker waits
 *   and re-armed only after a producer actually rang, so steady waiting allocates nothing.
 * The worker says how it waits before it takes its last look at the rings; producers publish,
 * then read it and ring if it says so: a record is never missed.
 */
export class Waiter {
  private parked: Park = Park.Running;
  private bellArmed = false;
  private flushTimer: NodeJS.Timeout | undefined;
  /** The delay `flushTimer` was made with. */
  private flushMs = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly bell = (): void => {
    this.bellArmed = false;
    if (this.parked !== Park.Running && this.urgent()) this.resume(); // the process is exiting
    else if (this.parked === Park.Idle) this.flush(); // the first record of a batch: let the rest gather
    else if (this.parked === Park.Flush) this.resume(); // a ring is half full
  };
  private readonly flushDue = (): void => {
    if (this.parked === Park.Flush) this.resume();
  };
  private readonly idleDue = (): void => {
    if (this.parked === Park.Idle) this.resume();
  };

  /**
   * @param ready whether to skip a wait of this kind: for `Flush`, a ring is half full;
   *   for `Idle`, anything can be done at all
   * @param wake runs the next round
   * @param urgent whether a ring of the doorbell must be answered at once, whatever the wait
   */
  constructor(
    private readonly ctl: Int32Array,
    private readonly flushIntervalMs: number,
    private readonly counters: Counters,
    private readonly ready: (how: Park.Flush | Park.Idle) => boolean,
    private readonly wake: () => void,
    private readonly urgent: () => boolean,
  ) {}

  /** Runs the next round after the event loop has served I/O. */
  soon(): void {
    setImmediate(this.wake);
  }

  /**
   * Waits `ms` (at most a flush interval), or until a producer rings because a ring is half full.
   * The timer is made again only when `ms` changes (the pipeline halves the interval, so there
   * are few values).
   */
  flush(ms = this.flushIntervalMs): void {
    this.clearIdleTimer();
    if (this.park(Park.Flush)) return;
    if (this.flushTimer !== undefined && this.flushMs === ms) return void this.flushTimer.refresh();
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = setTimeout(this.flushDue, ms).unref();
    this.flushMs = ms;
  }

  /** Sleeps until a producer rings, then lets its batch gather for a flush interval; `checkMs` at most. */
  idle(checkMs: number): void {
    if (this.flushTimer !== undefined) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    if (this.park(Park.Idle)) return;
    this.idleTimer = setTimeout(this.idleDue, checkMs).unref();
  }

  /** The worker's own event loop has something for an idle worker (e.g. a channel message). */
  poke(): void {
    if (this.parked === Park.Idle) this.flush();
  }

  /** Stops waiting for good (the worker is closing). */
  stop(): void {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.clearIdleTimer();
    this.parked = Park.Running;
    Atomics.store(this.ctl, Ctl.Parked, Park.Running);
  }

  /**
   * Says how the worker waits, reads the doorbell, takes the last look at the rings, and arms
   * the doorbell with the value read before that look (a ring in between is then not missed).
   * @returns true if it need not wait (it has arranged what comes next)
   */
  private park(how: Park.Flush | Park.Idle): boolean {
    this.parked = how;
    Atomics.store(this.ctl, Ctl.Parked, how);
    const rung = Atomics.load(this.ctl, Ctl.Doorbell);
    let ready = this.ready(how);
    if (!ready && !this.bellArmed) {
      const wait = Atomics.waitAsync(this.ctl, Ctl.Doorbell, rung);
      if (wait.async) {
        this.bellArmed = true;
        void wait.value.then(this.bell);
      } else {
        ready = true; // rung since the doorbell was read
      }
    }
    if (!ready) return false;
    if (how === Park.Idle) {
      this.flush();
    } else {
      this.parked = Park.Running;
      Atomics.store(this.ctl, Ctl.Parked, Park.Running);
      this.soon();
    }
    return true;
  }

  private resume(): void {
    this.parked = Park.Running;
    Atomics.store(this.ctl, Ctl.Parked, Park.Running);
    this.counters.hold();
    this.counters.wakeups++;
    this.counters.changed();
    this.wake();
    this.counters.release();
  }

  private clearIdleTimer(): void {
    if (this.idleTimer === undefined) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}

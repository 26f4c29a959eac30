import { CTL_CLIENTS, Op, REFUSED_KEY_ID, State } from '../shared/layout.js';
import type { RingWriter } from './ring-writer.js';

/** A counter bound to one key. `increment` costs a few nanoseconds and never throws. */
export interface Counter {
  /**
   * Adds `value` (default 1): a safe integer >= 0, or a bigint below 2^64 for exact large
   * values. Anything else is dropped and counted in `stats().dropped.invalid`.
   */
  increment(value?: number | bigint): void;
}

/** A gauge bound to one key. NaN is dropped and counted in `stats().dropped.invalid`. */
export interface Gauge {
  set(value: number): void;
  increment(value: number): void;
  decrement(value: number): void;
}

/** A histogram bound to one key. NaN is dropped and counted in `stats().dropped.invalid`. */
export interface Histogram {
  record(value: number): void;
}

// Each method first reads the "clients connected" flag with a plain load: with nobody
// listening a record costs one memory read and is not recorded at all. Handles keep their own
// reference to the control block so that this check is one load less than through the writer.

/** What every handle holds: its ring, its key's id, and the control block (for the flag). */
abstract class BoundHandle {
  protected readonly ctl: Int32Array;
  constructor(
    protected readonly w: RingWriter,
    protected readonly id: number,
  ) {
    this.ctl = w.ctl;
  }
}

export class CounterHandle extends BoundHandle implements Counter {
  increment(value: number | bigint = 1): void {
    if (this.ctl[CTL_CLIENTS] === 0) return;
    if (typeof value === 'number') this.w.push(this.id, Op.Counter, value);
    else if (typeof value === 'bigint') this.w.pushBigint(this.id, value);
    else this.w.push(this.id, Op.Invalid, 0);
  }
}

export class GaugeHandle extends BoundHandle implements Gauge {
  set(value: number): void {
    if (this.ctl[CTL_CLIENTS] !== 0) this.w.push(this.id, Op.GaugeSet, value);
  }

  increment(value: number): void {
    if (this.ctl[CTL_CLIENTS] !== 0) this.w.push(this.id, Op.GaugeIncrement, value);
  }

  decrement(value: number): void {
    if (this.ctl[CTL_CLIENTS] !== 0) this.w.push(this.id, Op.GaugeDecrement, value);
  }
}

export class HistogramHandle extends BoundHandle implements Histogram {
  record(value: number): void {
    if (this.ctl[CTL_CLIENTS] !== 0) this.w.push(this.id, Op.Histogram, value);
  }
}

const U64_MAX = (1n << 64n) - 1n;

// With `replayOnConnect`, a record made while no client is connected is not sent, but adds to
// its thread's state (a few plain stores into shared memory, about 1 ns), which the worker folds
// into the totals it replays when a client connects. Invalid values are dropped, as records
// made with no client always are. With a client connected they record exactly as above.

export class ReplayCounterHandle extends CounterHandle {
  constructor(
    w: RingWriter,
    id: number,
    private readonly st: Float64Array,
    private readonly at: number,
  ) {
    super(w, id);
  }

  override increment(value: number | bigint = 1): void {
    if (this.ctl[CTL_CLIENTS] !== 0) return super.increment(value);
    if (typeof value === 'number') {
      if (value >= 0 && value <= Number.MAX_SAFE_INTEGER && value % 1 === 0) this.st[this.at + State.CounterSum] += value;
    } else if (typeof value === 'bigint' && value >= 0n && value <= U64_MAX) {
      this.st[this.at + State.CounterSum] += Number(value); // exact up to 2^53
    }
  }
}

export class ReplayGaugeHandle extends GaugeHandle {
  constructor(
    w: RingWriter,
    id: number,
    private readonly st: Float64Array,
    private readonly at: number,
  ) {
    super(w, id);
  }

  override set(value: number): void {
    if (this.ctl[CTL_CLIENTS] !== 0) return super.set(value);
    if (value !== value) return;
    const st = this.st;
    st[this.at + State.GaugeSetValue] = value;
    st[this.at + State.GaugeDelta] = 0;
    st[this.at + State.GaugeSets]++;
  }

  override increment(value: number): void {
    if (this.ctl[CTL_CLIENTS] !== 0) return super.increment(value);
    if (value === value) this.st[this.at + State.GaugeDelta] += value;
  }

  override decrement(value: number): void {
    if (this.ctl[CTL_CLIENTS] !== 0) return super.decrement(value);
    if (value === value) this.st[this.at + State.GaugeDelta] -= value;
  }
}

/**
 * Stands in for every kind of handle when its key was refused (the `maxKeys` cap): each record
 * is still counted as a drop, through the ring, so `stats()` stays exact.
 */
export class RefusedHandle implements Counter, Gauge, Histogram {
  constructor(private readonly w: RingWriter) {}

  increment(): void {
    this.drop();
  }
  decrement(): void {
    this.drop();
  }
  set(): void {
    this.drop();
  }
  record(): void {
    this.drop();
  }
  private drop(): void {
    if (this.w.ctl[CTL_CLIENTS] !== 0) this.w.push(REFUSED_KEY_ID, Op.Invalid, 0);
  }
}

/** What the global functions hand out before `install()`: does nothing, like the crate's noop recorder. */
export const noopHandle: Counter & Gauge & Histogram = {
  increment() {},
  decrement() {},
  set() {},
  record() {},
};

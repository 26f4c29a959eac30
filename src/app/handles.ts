import { Ctl, Op, REFUSED_KEY_ID, State, recordHeader, type StateViews } from '../shared/layout.js';
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
// reference to the control block so that this check is one load less than through the writer,
// and the headers of their records made, so that a record is the writer's stores and no more.

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

/** A counter increment that is not a number: a bigint (exact to 2^64), or invalid. */
function pushOtherCounter(w: RingWriter, id: number, value: unknown): void {
  if (typeof value === 'bigint') w.pushBigint(id, value);
  else w.push(recordHeader(id, Op.Invalid), 0);
}

export class CounterHandle extends BoundHandle implements Counter {
  private readonly add = recordHeader(this.id, Op.Counter);

  increment(value: number | bigint = 1): void {
    if (this.ctl[Ctl.Clients] !== 0) this.send(value);
  }

  /** Writes the increment; the worker checks a number (a safe integer >= 0). */
  protected send(value: number | bigint): void {
    if (typeof value === 'number') this.w.push(this.add, value);
    else pushOtherCounter(this.w, this.id, value);
  }
}

/** The headers of a gauge's three records. */
abstract class GaugeRecords extends BoundHandle {
  protected readonly setTo = recordHeader(this.id, Op.GaugeSet);
  protected readonly up = recordHeader(this.id, Op.GaugeIncrement);
  protected readonly down = recordHeader(this.id, Op.GaugeDecrement);
}

export class GaugeHandle extends GaugeRecords implements Gauge {
  set(value: number): void {
    if (this.ctl[Ctl.Clients] !== 0) this.w.push(this.setTo, value);
  }

  increment(value: number): void {
    if (this.ctl[Ctl.Clients] !== 0) this.w.push(this.up, value);
  }

  decrement(value: number): void {
    if (this.ctl[Ctl.Clients] !== 0) this.w.push(this.down, value);
  }
}

export class HistogramHandle extends BoundHandle implements Histogram {
  protected readonly observe = recordHeader(this.id, Op.Histogram);

  record(value: number): void {
    if (this.ctl[Ctl.Clients] !== 0) this.w.push(this.observe, value);
  }
}

/**
 * With the Prometheus endpoint, a histogram's observations are bucketed by the worker, which
 * sees every one: they go to the ring whether or not a TCP client is connected (a histogram's
 * shape cannot be folded into a few slots of state, as a total can).
 */
export class EndpointHistogramHandle extends HistogramHandle {
  override record(value: number): void {
    this.w.push(this.observe, value);
  }
}

/**
 * Under `captureMetrics()`: every change of a gauge goes to the ring, as with a client connected.
 * A thread's state (see {@link ReplayGaugeHandle}) keeps only the net change since the last set,
 * in which a gauge raised and lowered back (a count of jobs running) leaves no trace: a test must
 * read such a gauge as 0, not as never changed.
 */
export class CaptureGaugeHandle extends GaugeRecords implements Gauge {
  set(value: number): void {
    this.w.push(this.setTo, value);
  }

  increment(value: number): void {
    this.w.push(this.up, value);
  }

  decrement(value: number): void {
    this.w.push(this.down, value);
  }
}

// With `replayOnConnect`, a record made while no client is connected is not sent, but adds to
// its thread's state (a few plain stores into shared memory, about 1 ns), which the worker folds
// into the totals it replays when a client connects. Invalid values are dropped, as records
// made with no client always are. With a client connected they record exactly as above.

export class ReplayCounterHandle extends CounterHandle {
  private readonly f64: Float64Array;
  private readonly i32: Int32Array;

  constructor(w: RingWriter, id: number, state: StateViews) {
    super(w, id);
    this.f64 = state.f64;
    this.i32 = state.i32;
  }

  override increment(value: number | bigint = 1): void {
    if (this.ctl[Ctl.Clients] !== 0) return this.send(value);
    // A bigint goes to the ring even so: the worker adds it to the total exactly (to 2^64), where
    // this thread's state holds a double (exact to 2^53).
    if (typeof value === 'bigint') return this.w.pushBigint(this.id, value);
    if (typeof value === 'number' && (value | 0) === value && value >= 0) {
      const sum = this.i32[State.CounterFast]! + value;
      if (sum <= 0x7fffffff) {
        this.i32[State.CounterFast] = sum;
        return;
      }
    }
    this.spill(value);
  }

  /**
   * What the int32 cannot take (its sum would pass 2^31, or the value is not an int32) adds to
   * the double. Nothing ever moves from one to the other, so a worker folding meanwhile reads
   * two sums that only grow: it can see too little (the next fold gets the rest), never too much.
   */
  private spill(value: unknown): void {
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) this.f64[State.CounterSpill] += value;
  }
}

export class ReplayGaugeHandle extends GaugeRecords implements Gauge {
  private readonly f64: Float64Array;
  private readonly i32: Int32Array;

  constructor(w: RingWriter, id: number, state: StateViews) {
    super(w, id);
    this.f64 = state.f64;
    this.i32 = state.i32;
  }

  set(value: number): void {
    if (this.ctl[Ctl.Clients] !== 0) return this.w.push(this.setTo, value);
    if (value !== value) return;
    // A seqlock: the worker may fold this state at any time, and a set changes two slots. The
    // count is odd while they change; the worker retries a read that saw an odd count, or a
    // count that changed under it. (Plain stores: they are not reordered on the platforms Node
    // runs on, and the count is what the worker compares.)
    const sets = this.i32[State.GaugeSets]!;
    this.i32[State.GaugeSets] = (sets + 1) | 0;
    this.f64[State.GaugeSetValue] = value;
    this.f64[State.GaugeDelta] = 0;
    this.i32[State.GaugeSets] = (sets + 2) | 0;
  }

  increment(value: number): void {
    if (this.ctl[Ctl.Clients] !== 0) return this.w.push(this.up, value);
    if (value === value) this.f64[State.GaugeDelta] += value;
  }

  decrement(value: number): void {
    if (this.ctl[Ctl.Clients] !== 0) return this.w.push(this.down, value);
    if (value === value) this.f64[State.GaugeDelta] -= value;
  }
}

/**
 * Stands in for every kind of handle when its key was refused (the `maxKeys` cap): each record
 * is still counted as a drop, through the ring, so `stats()` stays exact.
 */
const REFUSED = recordHeader(REFUSED_KEY_ID, Op.Invalid);

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
    if (this.w.ctl[Ctl.Clients] !== 0) this.w.push(REFUSED, 0);
  }
}

/** What the global functions hand out before `install()`: does nothing, like the crate's noop recorder. */
export const noopHandle: Counter & Gauge & Histogram = {
  increment() {},
  decrement() {},
  set() {},
  record() {},
};

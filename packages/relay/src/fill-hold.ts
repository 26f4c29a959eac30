// An exporter's fill levels (its in-band `metrics_exporter_tcp_ring_peak{thread}`,
// `_client_queue_peak` and `_buffer_size` gauges) as the relay exposes them: one value per
// exporter, each the largest reported over the last `--peak-hold`. The exporter reports a peak
// per 100 ms window, and only when it changed, so the latest value alone would be 0 at almost
// every scrape after a burst; held, a burst is seen by every scrape within the hold.
import { BUFFER_SIZE_METRIC, QUEUE_PEAK_METRIC, RING_PEAK_METRIC, type MetricKind } from 'metrics-exporter-tcp/client';

/** What the relay exposes of an exporter's fill levels. */
export interface HeldFill {
  /** The exporter's `bufferSize`: records per ring, frames per client queue. */
  readonly bufferSize: number;
  /** The fullest any of its rings got over the hold, in records. */
  readonly ringPeak: number;
  /** The most frames its queue for this relay held at once over the hold. */
  readonly queuePeak: number;
}

/** Which fill level a gauge is, if it is one: a ring's (its thread's label), the queue's, or the size. */
export type FillGauge = { readonly which: 'ring'; readonly thread: string } | { readonly which: 'queue' | 'size' };

/** The threads whose current ring peak is kept per exporter; further ones are refused as series. */
export const MAX_FILL_THREADS = 256;

/**
 * Keys (and bytes of keys) a reader of one exporter holds for its self metrics, besides its
 * series: the loss counter's 3 reasons, the queue and the size, the ring of each live thread,
 * and as many of threads that are gone (see `ExporterSeries.threadGone`).
 */
export const SELF_KEYS = 5 + 2 * MAX_FILL_THREADS;
export const SELF_KEY_BYTES = 64 * SELF_KEYS;

/**
 * `name` + `labels` as a fill level the exporter reports, or undefined: anything else (another
 * label, a thread label that no exporter writes) is an ordinary series, held against the caps.
 */
export function fillGauge(kind: MetricKind, name: string, labels: Readonly<Record<string, string>>): FillGauge | undefined {
  if (kind !== 'gauge') return undefined;
  const keys = Object.keys(labels);
  if (name === RING_PEAK_METRIC) {
    const thread = labels.thread;
    return keys.length === 1 && thread !== undefined && /^(?:main|[1-9][0-9]{0,9})$/.test(thread) ? { which: 'ring', thread } : undefined;
  }
  if (keys.length !== 0) return undefined;
  return name === QUEUE_PEAK_METRIC ? { which: 'queue' } : name === BUFFER_SIZE_METRIC ? { which: 'size' } : undefined;
}

/** The hold is kept as this many slots, each the largest value of its share of the hold. */
const SLOTS = 6;

/** The largest of values over a moving window, in {@link SLOTS} slots (a value stays for the hold, and at most a slot more). */
class MovingMax {
  private readonly slots = new Float64Array(SLOTS);
  /** The slot number (time / slot length) of the newest slot. */
  private newest = 0;

  constructor(private readonly slotMs: number) {}

  note(value: number, nowMs: number): void {
    this.advance(nowMs);
    const i = this.newest % SLOTS;
    if (value > this.slots[i]!) this.slots[i] = value;
  }

  max(nowMs: number): number {
    this.advance(nowMs);
    let m = 0;
    for (let i = 0; i < SLOTS; i++) if (this.slots[i]! > m) m = this.slots[i]!;
    return m;
  }

  private advance(nowMs: number): void {
    const slot = Math.floor(nowMs / this.slotMs);
    if (slot <= this.newest) return;
    for (let s = Math.max(this.newest + 1, slot - SLOTS + 1); s <= slot; s++) this.slots[s % SLOTS] = 0;
    this.newest = slot;
  }
}

/** One exporter's fill levels: the current value of each, and the largest over the hold. */
export class FillHold {
  private bufferSize: number | undefined;
  /** Each thread's current ring peak, but those at 0 (a thread whose ring is gone is last reported at 0). */
  private readonly rings = new Map<string, number>();
  private queue = 0;
  private readonly ringHold: MovingMax;
  private readonly queueHold: MovingMax;

  constructor(holdMs: number) {
    this.ringHold = new MovingMax(holdMs / SLOTS);
    this.queueHold = new MovingMax(holdMs / SLOTS);
  }

  /**
   * A fill level was set to `value` at `nowMs`.
   * @returns 'refused' for a ring of a thread past {@link MAX_FILL_THREADS} (not kept), 'gone'
   *   when a thread's ring is reported empty (the last report of a thread that exits), else 'kept'
   */
  set(g: FillGauge, value: number, nowMs: number): 'kept' | 'gone' | 'refused' {
    if (!(value >= 0 && value <= Number.MAX_SAFE_INTEGER)) return 'kept'; // no exporter sends it: ignored
    if (g.which === 'ring') {
      if (value === 0) return this.rings.delete(g.thread) ? 'gone' : 'kept';
      if (this.rings.size >= MAX_FILL_THREADS && !this.rings.has(g.thread)) return 'refused';
      this.rings.set(g.thread, value);
      this.ringHold.note(value, nowMs);
    } else if (g.which === 'queue') {
      this.queue = value;
      this.queueHold.note(value, nowMs);
    } else {
      this.bufferSize = value;
    }
    return 'kept';
  }

  /** The connection began afresh: nothing is current (what was seen stays held). */
  reset(): void {
    this.rings.clear();
    this.queue = 0;
  }

  /** What to expose at `nowMs`, once the exporter has said its buffer size. */
  held(nowMs: number): HeldFill | undefined {
    if (this.bufferSize === undefined) return undefined;
    let ring = this.ringHold.max(nowMs);
    for (const v of this.rings.values()) if (v > ring) ring = v;
    return { bufferSize: this.bufferSize, ringPeak: ring, queuePeak: Math.max(this.queue, this.queueHold.max(nowMs)) };
  }
}

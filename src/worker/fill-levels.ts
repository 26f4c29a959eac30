import type { RingReader } from './ring-reader.js';
import type { RingPeak } from './transport/fill-report.js';
import { REPORT_EVERY_MS } from './transport/loss-report.js';
import type { Transport } from './transport/server.js';

/**
 * Ends a fill-level window every report interval while fill levels move: takes every ring's
 * peak (see `RingReader.takePeak`) and hands them to the clients, who report what changed.
 * Nothing runs while nothing moves: once a window's peaks are those of the window before, each
 * ring still holds its peak (the next window's cannot differ), and every client's queue has been
 * reported empty, the timer stops until a round takes a record.
 */
export class FillLevels {
  private timer: NodeJS.Timeout | undefined;
  private last = Number.NEGATIVE_INFINITY;
  /** The pipeline is shutting down: the rounds of its last drain end no more windows. */
  private stopped = false;
  /** Each ring's peak in the last window. */
  private readonly previous = new Map<RingReader, number>();
  /** Rings whose thread is gone: reported until a window finds them empty (they are), then forgotten. */
  private retired: RingReader[] = [];
  private readonly tick = (): void => {
    this.timer = undefined;
    this.last = performance.now();
    const peaks: RingPeak[] = [];
    let moving = false;
    const take = (ring: RingReader): number => {
      const peak = ring.takePeak();
      peaks.push({ thread: ring.thread, peak });
      // The next window's peak differs too if the ring holds another amount now.
      moving ||= peak !== (this.previous.get(ring) ?? 0) || ring.fillAtPeak !== peak;
      this.previous.set(ring, peak);
      return peak;
    };
    const rings = this.rings();
    for (let i = 0; i < rings.length; i++) take(rings[i]!);
    // A retired ring is empty: once a window reports it so, it is forgotten.
    this.retired = this.retired.filter((ring) => take(ring) !== 0 || (this.previous.delete(ring), false));
    const unsettled = this.transport.noteFill(peaks);
    if (unsettled || moving) this.moved();
  };

  constructor(
    private readonly rings: () => readonly RingReader[],
    private readonly transport: Transport,
  ) {}

  /** Records moved (taken, or dropped by a full ring): a window ends within the report interval. */
  moved(): void {
    if (this.timer !== undefined || this.stopped || this.transport.clientCount === 0) return;
    this.timer = setTimeout(this.tick, Math.max(0, this.last + REPORT_EVERY_MS - performance.now()));
    this.timer.unref();
  }

  /** A ring's thread is gone and the ring is drained: its last windows are still reported. */
  retire(ring: RingReader): void {
    this.retired.push(ring);
    this.moved();
  }

  /** For good: called before the shutdown's drain, whose rounds would start the timer again. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

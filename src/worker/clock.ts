/** How often the clock is compared with the wall clock, in ms. */
export const ANCHOR_EVERY_MS = 1000;
/** A difference from the wall clock beyond this many ms moves the anchor. */
const MAX_DRIFT_MS = 2;

/**
 * The time frames are stamped with, in ms since the Unix epoch: the wall clock, as the seed's
 * `SystemTime::now()`, read with sub-millisecond resolution.
 *
 * `performance.now()` is monotonic and precise but drifts from the wall clock (after a clock
 * step, an NTP slew or a suspend); `Date.now()` follows the wall clock in whole milliseconds.
 * So the time is `performance.now()` plus an offset, and once a second the offset is checked
 * against `Date.now()` and moved when they differ by more than a couple of milliseconds (not
 * for less: `Date.now()` is floored to the ms, so small differences are its own rounding).
 */
export class WallClock {
  private offset: number;
  private checkedAt: number;

  constructor(
    private readonly wall: () => number = Date.now,
    private readonly mono: () => number = () => performance.now(),
  ) {
    const m = this.mono();
    this.offset = this.wall() - m;
    this.checkedAt = m;
  }

  now(): number {
    const m = this.mono();
    if (m - this.checkedAt >= ANCHOR_EVERY_MS) {
      this.checkedAt = m;
      const offset = this.wall() - m;
      if (Math.abs(offset - this.offset) > MAX_DRIFT_MS) this.offset = offset;
    }
    return m + this.offset;
  }
}

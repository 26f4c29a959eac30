// Which buffer size to choose: one rule for the observer's recommendation (from the fill levels
// an exporter reports under real traffic) and for `npm run bench -- tune` (from a synthetic load).

/**
 * The smallest buffer size worth recommending. A ring below 256 records publishes more often
 * than every 64 records (see the ring's writer), and the few KiB saved are not worth it.
 */
export const MIN_RECOMMENDED_BUFFER = 256;

/**
 * The buffer size that would have held `peak` records (or frames) with 2× headroom: the smallest
 * power of two at least `2 × peak`, and at least {@link MIN_RECOMMENDED_BUFFER}. A peak that
 * reached the buffer size itself (the ring or a queue was full and dropped) says only that more
 * was needed: the rule then gives twice the size at least, and the next peaks tell more.
 * @throws RangeError if `peak` is not a finite number >= 0
 */
export function recommendBufferSize(peak: number): number {
  if (!(Number.isFinite(peak) && peak >= 0)) throw new RangeError(`recommendBufferSize: the peak must be a finite number >= 0, got ${String(peak)}`);
  let size = MIN_RECOMMENDED_BUFFER;
  while (size < 2 * peak) size *= 2;
  return size;
}
